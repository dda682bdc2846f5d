-- wrk script: authenticated native check-ins, cycling over the devices bench-tool enrolled
-- (DEVICES_LUA names the file with `devices = { {mac, token}, ... }`).
-- PROJECT (default bench) and VERSION (default 1.0.0): what the devices report running. The
-- uptime is the clock (monotonic for every device, whichever thread sends its check-in): an
-- uptime that goes back is a restart, which the server records through its database path.
-- EXPECT=offer: every answer must be 200 with an update offer (devices a deployment of a newer
-- image targets; the offer is repeated until the device reports progress). Without EXPECT the
-- answers are not read (wrk still counts non-2xx).
dofile("bench/expect.lua")
dofile(os.getenv("DEVICES_LUA"))
local project = os.getenv("PROJECT") or "bench"
local version = os.getenv("VERSION") or "1.0.0"

function init(args)
  i = (tid or 0) * 7919
end

function request()
  i = i + 1
  local d = devices[(i % #devices) + 1]
  local body = '{"mac":"' .. d[1] .. '","chip":"esp32","project":"' .. project ..
    '","version":"' .. version .. '","rssi":-60,"uptime_s":' .. (os.time() - 1700000000) .. '}'
  return wrk.format("POST", "/api/v1/device/checkin",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. d[2] }, body)
end

if os.getenv("EXPECT") == "offer" then
  function response(status, headers, body)
    expect(status == 200 and string.find(body, '"update":{', 1, true) ~= nil, status, body)
  end
end
