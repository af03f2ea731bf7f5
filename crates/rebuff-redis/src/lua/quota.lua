-- Check and increment a usage counter atomically.
--
-- key     the counter of one organisation in one period
-- amount  amount to add
-- limit   the quota
-- ttl     seconds the counter is kept after its last change
--
-- Returns {granted (0/1), usage after this request}.
local function consume(key, amount, limit, ttl)
  local used = 0
  local stored = redis.call('GET', key)
  if stored then
    used = tonumber(stored)
    if used == nil then
      return redis.error_reply('stored usage is not a number')
    end
  end
  amount = tonumber(amount)
  if used + amount > tonumber(limit) then
    return {0, used}
  end
  if amount == 0 then
    return {1, used}
  end
  local after = redis.call('INCRBY', key, amount)
  redis.call('EXPIRE', key, ttl)
  return {1, after}
end
