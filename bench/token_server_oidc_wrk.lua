-- wrk script for oidc-provider: client_credentials with Basic auth (bench_token_server.py).
-- wrk ... -s token_server_oidc_wrk.lua URL -- AUTHORIZATION [DELAY_MS]
function init(args)
  auth = args[1]
  pause = tonumber(args[2] or "0")
end

function request()
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=client_credentials&scope=api")
end

function delay()
  return pause
end
