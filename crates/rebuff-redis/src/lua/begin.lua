-- Look up an idempotency key, taking its lock when there is no record.
--
-- A record is one string: 'L' (locked) or 'D' (done), the payload's 32-byte fingerprint, and
-- for 'D' the encoded response.
--
-- begin(key, fingerprint, lock_ms)
--   key          the record
--   fingerprint  32 bytes
--   lock_ms      lock lifetime, milliseconds
--
-- Returns {0} started, {1} in flight, {2, response} completed, {3} other payload.
local function begin(key, fingerprint, lock_ms)
  local record = redis.call('GET', key)
  if not record then
    redis.call('SET', key, 'L' .. fingerprint, 'PX', lock_ms)
    return {0}
  end
  if string.sub(record, 2, 33) ~= fingerprint then
    return {3}
  end
  if string.sub(record, 1, 1) == 'L' then
    return {1}
  end
  return {2, string.sub(record, 34)}
end
