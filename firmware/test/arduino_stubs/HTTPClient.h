/* HTTPClient.h (stand-in) - the HTTPClient methods OtaFleet.cpp calls, with
 * arduino-esp32's signatures; see Arduino.h in this folder. */
#pragma once
#include "WiFi.h"

class HTTPClient {
public:
    bool begin(WiFiClient &client, String url);
    void end(void);
    void setTimeout(uint16_t timeout);
    void useHTTP10(bool usehttp10 = true);
    void addHeader(const String &name, const String &value, bool first = false, bool replace = true);
    int GET();
    int POST(uint8_t *payload, size_t size);
    int getSize(void);
    int writeToStream(Stream *stream);
};
