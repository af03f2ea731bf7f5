-- A charge at most once per charge id (see QuotaStore::consume_once).
--
-- KEYS[1]  the counter of one organisation in one period
-- KEYS[2]  the charge id's marker
-- ARGV[1..3]  as quota: amount, limit, counter lifetime in seconds
-- ARGV[4]  milliseconds the charge id is remembered
-- ARGV[5]  the caller's deadline (see deadline.lua)
--
-- Returns {granted (0/1), usage}, or 'LATE' past the deadline. A remembered charge id
-- records nothing and is granted; a refused charge leaves no marker.
if late(ARGV[5]) then
  return 'LATE'
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {1, tonumber(redis.call('GET', KEYS[1]) or '0') or 0}
end
local result = consume(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if type(result) == 'table' and result[1] == 1 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
end
return result
