-- wrk script: authenticated native check-ins, cycling over the devices bench-tool enrolled
-- (DEVICES_LUA names the file with `devices = { {mac, token}, ... }`).
dofile(os.getenv("DEVICES_LUA"))
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  i = (tid or 0) * 7919
end
function request()
  i = i + 1
  local d = devices[(i % #devices) + 1]
  local body = '{"mac":"' .. d[1] .. '","chip":"esp32","project":"bench","version":"1.0.0","rssi":-60,"uptime_s":' .. i .. '}'
  return wrk.format("POST", "/api/v1/device/checkin",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. d[2] }, body)
end
