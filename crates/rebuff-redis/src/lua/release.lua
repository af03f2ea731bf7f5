-- Drop an idempotency lock, but never a completed record.
--
-- KEYS[1]  the record
-- ARGV[1]  the caller's deadline (see deadline.lua); 'LATE' past it
if late(ARGV[1]) then
  return 'LATE'
end
local record = redis.call('GET', KEYS[1])
if record and string.sub(record, 1, 1) == 'L' then
  return redis.call('DEL', KEYS[1])
end
return 0
