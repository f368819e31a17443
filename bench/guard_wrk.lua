-- wrk script for bench_guard.py: every request carries its own pre-built PoP.
-- wrk ... -s guard_wrk.lua URL -- POPS_FILE BEARER_FILE
local pops = {}
local bearer = ""
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    pops[#pops + 1] = line
  end
  for line in io.lines(args[2]) do
    bearer = line
  end
end

request = function()
  i = i + 1
  -- Past the prepared PoPs the last one repeats: the guard answers 401 and wrk counts it
  -- as non-2xx, so an exhausted file shows up in the report instead of inflating it.
  local pop = pops[i] or pops[#pops]
  return wrk.format("GET", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = bearer,
    ["X-Authorization"] = pop,
  })
end
