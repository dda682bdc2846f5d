/* WiFiClientSecure.h (stand-in) - WiFiClientSecure as arduino-esp32
 * declares it (3.x: an alias of NetworkClientSecure, same methods); see
 * Arduino.h in this folder. */
#pragma once
#include "WiFi.h"

class WiFiClientSecure : public WiFiClient {
public:
    WiFiClientSecure();
    void setCACert(const char *rootCA);
};
