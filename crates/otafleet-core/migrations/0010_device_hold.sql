-- Why a device that asked for an update was not offered one (free space too small, filesystem
-- images not served, chip unknown, …), so the UI can show it. Written by the field protocols
-- (Arduino HTTPUpdate, ESP8266httpUpdate, esp32FOTA, legacy), cleared when an image is offered.
-- Numbered 0010 so it cannot collide with another branch's 0002.
ALTER TABLE devices ADD COLUMN hold TEXT;
