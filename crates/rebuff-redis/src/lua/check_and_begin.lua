-- A rate-limit decision and, only when the request is admitted, the idempotency lookup: one
-- script, so one round trip and one atomic step. Follows gcra.lua and begin.lua.
--
-- KEYS[1]  the rate-limit TAT       ARGV[1..3]  limit, period, now (as gcra)
-- KEYS[2]  the idempotency record   ARGV[4..5]  fingerprint, lock_ms (as begin)
--                                    ARGV[6]     the caller's deadline (see deadline.lua)
--
-- Returns {decision} when refused, {decision, begin} when admitted, 'LATE' past the deadline.
if late(ARGV[6]) then
  return 'LATE'
end
local decision = gcra(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if decision.err then
  return decision
end
if decision[1] == 0 then
  return {decision}
end
return {decision, begin(KEYS[2], ARGV[4], ARGV[5])}
