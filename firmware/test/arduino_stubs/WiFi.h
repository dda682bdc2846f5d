/* WiFi.h (stand-in) - WiFi and WiFiClient as arduino-esp32 declares them;
 * see Arduino.h in this folder for why these stand-ins exist. */
#pragma once
#include "Arduino.h"

typedef enum { WL_IDLE_STATUS = 0, WL_CONNECTED = 3, WL_DISCONNECTED = 6 } wl_status_t;
typedef enum { WIFI_OFF = 0, WIFI_STA = 1 } wifi_mode_t;

class WiFiClient : public Stream {
public:
    size_t write(uint8_t) override;
    int available() override;
    int read() override;
    int peek() override;
};

class WiFiClass {
public:
    wl_status_t begin(const char *ssid, const char *passphrase = NULL);
    bool mode(wifi_mode_t m);
    bool setAutoReconnect(bool autoReconnect);
    wl_status_t status();
    String macAddress();
    IPAddress localIP();
    int8_t RSSI();
};
extern WiFiClass WiFi;
