-- Check and increment a usage counter atomically.
--
-- KEYS[1]  the counter of one organisation in one period
-- ARGV[1]  amount to add
-- ARGV[2]  limit
-- ARGV[3]  seconds the counter is kept after its last change
-- ARGV[4]  the caller's deadline (see deadline.lua)
--
-- Returns {granted (0/1), usage after this request}, or 'LATE' past the deadline.
if late(ARGV[4]) then
  return 'LATE'
end
local used = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  used = tonumber(stored)
  if used == nil then
    return redis.error_reply('stored usage is not a number')
  end
end
local amount = tonumber(ARGV[1])
if used + amount > tonumber(ARGV[2]) then
  return {0, used}
end
if amount == 0 then
  return {1, used}
end
local after = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, after}
