-- wrk script: Arduino-ESP32 HTTPUpdate checks (`GET /ota/arduino`), byte for byte the request
-- HTTPUpdate::handleUpdate sends (HTTP/1.0, Connection: close: a connection per check, as the
-- library does; tests/api/field_arduino.rs replays the same), from ARD_DEVICES devices (MACs
-- 24:0A:C4:A0:xx:xx) that all run the image with ARD_MD5 / ARD_SHA (upper case) / ARD_SIZE,
-- which is the one deployed to them: nothing to do, so every answer must be 304.
dofile("bench/expect.lua")
local md5, sha, size = os.getenv("ARD_MD5"), os.getenv("ARD_SHA"), os.getenv("ARD_SIZE")
local n = tonumber(os.getenv("ARD_DEVICES") or "1000")

function init(args)
  i = (tid or 0) * 7919
  host = wrk.host .. ":" .. tostring(wrk.port)
end

function request()
  i = i + 1
  local k = i % n
  local hi, lo = math.floor(k / 256), k % 256
  return "GET /ota/arduino HTTP/1.0\r\nHost: " .. host ..
    "\r\nUser-Agent: ESP32-http-Update\r\nConnection: close\r\nCache-Control: no-cache\r\n" ..
    string.format("x-ESP32-STA-MAC: 24:0A:C4:A0:%02X:%02X\r\n", hi, lo) ..
    string.format("x-ESP32-AP-MAC: 26:0A:C4:A0:%02X:%02X\r\n", hi, lo) ..
    "x-ESP32-free-space: 1310720\r\nx-ESP32-sketch-size: " .. size ..
    "\r\nx-ESP32-sketch-md5: " .. md5 .. "\r\nx-ESP32-sketch-sha256: " .. sha ..
    "\r\nx-ESP32-chip-size: 4194304\r\nx-ESP32-sdk-version: v4.4.5\r\nx-ESP32-mode: sketch" ..
    "\r\nx-ESP32-version: 1.0.0\r\n\r\n"
end

function response(status, headers, body)
  expect(status == 304, status, body)
end
