-- GCRA: one decision, read and written atomically. Times are whole microseconds, which a Lua
-- number (a double) holds exactly until the year 2255.
--
-- gcra(key, limit, period, now)
--   key     the key's theoretical arrival time (TAT)
--   limit   requests per period (> 0)
--   period  microseconds (> 0)
--   now     microseconds since the Unix epoch; empty: take the Redis server's clock
--
-- Returns {allowed (0/1), remaining, reset_after_us, retry_after_us (-1: none)}, or an error
-- reply (a table with `err`).
local function gcra(key, limit, period, now)
  limit = tonumber(limit)
  period = tonumber(period)
  if now == '' then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  else
    now = tonumber(now)
  end
  local interval = math.max(math.floor(period / limit), 1)
  local stored = redis.call('GET', key)
  local tat = now
  if stored then
    local t = tonumber(stored)
    if t == nil then
      return redis.error_reply('stored rate-limit state is not a number')
    end
    if t > now then tat = t end
  end
  local horizon = now + period
  local new_tat = tat + interval
  local function remaining(t)
    return math.max(math.min(math.floor((horizon - t) / interval), limit), 0)
  end
  if new_tat <= horizon then
    -- Kept only while it limits anything: once the TAT has passed, no state is the same state.
    local ttl_ms = math.ceil((new_tat - now) / 1000)
    redis.call('SET', key, string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
    return {1, remaining(new_tat), new_tat - now, -1}
  end
  return {0, remaining(tat), tat - now, new_tat - horizon}
end
