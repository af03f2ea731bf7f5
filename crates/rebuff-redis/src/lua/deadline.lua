-- Whether a script starts after its caller's deadline: by then the caller has answered its
-- request (a 503), so the script must change nothing, neither take a lock nor charge a limit.
-- A Redis that was paused (SIGSTOP, a long fork, a stalled disk) runs the scripts queued
-- meanwhile when it wakes up; this is what keeps them from acting for requests long gone.
--
-- late(deadline)
--   deadline  microseconds since the Unix epoch on this server's clock (`TIME`); empty: none
local function late(deadline)
  if deadline == nil or deadline == '' then
    return false
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) > tonumber(deadline)
end
