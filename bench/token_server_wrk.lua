-- wrk script for bench_token_server.py: every request carries a fresh, pre-built PoP.
-- wrk ... -s token_server_wrk.lua URL -- POPS_FILE THREADS AUTHORIZATION PATH [DELAY_MS]
-- Each wrk thread takes its own slice of the file, so no PoP is sent twice.
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local file, threads = args[1], tonumber(args[2])
  auth, path = args[3], args[4]
  pause = tonumber(args[5] or "0")
  pops, index = {}, 0
  local i = 0
  for line in io.lines(file) do
    if i % threads == id then
      pops[#pops + 1] = line
    end
    i = i + 1
  end
end

function request()
  index = index + 1
  -- past the end the PoPs repeat: the server answers 401 pop_replayed, counted as non-2xx
  local pop = pops[((index - 1) % #pops) + 1]
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = auth,
    ["X-Authorization"] = pop,
  }, "")
end

function delay()
  return pause
end
