-- wrk script for bench_gateway.py's paced rows: every request waits on its connection first
-- (wrk's delay hook), DELAY_MS on average, drawn uniformly from half to one and a half times it
-- so that the connections do not fire in step; 16 connections then send at a chosen rate.
-- wrk ... -s gateway_wrk.lua URL -- POPS_FILE BEARER_FILE DELAY_MS   ("-" "-": no PoPs)
local pops = {}
local bearer = nil
local pause = 0
local i = 0

init = function(args)
  math.randomseed(os.time())
  if args[1] ~= "-" then
    for line in io.lines(args[1]) do
      pops[#pops + 1] = line
    end
    for line in io.lines(args[2]) do
      bearer = line
    end
  end
  pause = tonumber(args[3])
end

delay = function()
  return pause * (0.5 + math.random())
end

request = function()
  if bearer == nil then
    return wrk.format("GET")
  end
  i = i + 1
  -- Past the prepared PoPs the last one repeats and is refused: counted as non-2xx.
  local pop = pops[i] or pops[#pops]
  return wrk.format("GET", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = bearer,
    ["X-Authorization"] = pop,
  })
end
