-- wrk script: send DEPTH requests back to back on each connection (pipelining).
local depth = tonumber(os.getenv("DEPTH") or "16")
local req
init = function(args)
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format("GET", "/")
  end
  req = table.concat(r)
end
request = function()
  return req
end
