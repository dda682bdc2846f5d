-- wrk script: the "ESP32 OTA Update Server" device check (`GET /api/firmware`), as the
-- PanicButton sketch sends it (stock HTTPClient, HTTP/1.1, `X-Device-Auth`, `hardware` encoded
-- with `+`, `mac` not encoded; http.end() after each check: a connection per check), from the
-- devices `bench-tool legacy-setup` added (DEVICES_LUA: `devices = { {mac, token, id}, ... }`),
-- all running VERSION, their target: every answer must be 200 with update_available false.
dofile("bench/expect.lua")
dofile(os.getenv("DEVICES_LUA"))
local version = os.getenv("VERSION") or "1.3.8"

function init(args)
  i = (tid or 0) * 7919
  host = wrk.host .. ":" .. tostring(wrk.port)
end

function request()
  i = i + 1
  local d = devices[(i % #devices) + 1]
  return "GET /api/firmware?device_id=" .. d[3] .. "&hardware=FireBeetle+2+ESP32-E&version=" ..
    version .. "&mac=" .. d[1] .. " HTTP/1.1\r\nHost: " .. host ..
    "\r\nUser-Agent: ESP32HTTPClient\r\nConnection: close\r\n" ..
    "Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0\r\nX-Device-Auth: " .. d[2] .. "\r\n\r\n"
end

function response(status, headers, body)
  expect(status == 200 and string.find(body, '"update_available":false', 1, true) ~= nil,
    status, body)
end
