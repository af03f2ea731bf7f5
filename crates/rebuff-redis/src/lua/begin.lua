-- Look up an idempotency key, taking its lock when there is no record.
--
-- A record is one string: 'L' (locked) or 'D' (done), the payload's 32-byte fingerprint, and
-- for 'D' the encoded response.
--
-- KEYS[1]  the record
-- ARGV[1]  fingerprint (32 bytes)
-- ARGV[2]  lock lifetime, milliseconds
--
-- Returns {0} started, {1} in flight, {2, response} completed, {3} other payload.
local record = redis.call('GET', KEYS[1])
if not record then
  redis.call('SET', KEYS[1], 'L' .. ARGV[1], 'PX', ARGV[2])
  return {0}
end
if string.sub(record, 2, 33) ~= ARGV[1] then
  return {3}
end
if string.sub(record, 1, 1) == 'L' then
  return {1}
end
return {2, string.sub(record, 34)}
