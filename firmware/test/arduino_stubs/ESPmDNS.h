/* ESPmDNS.h (stand-in) - MDNSResponder as in arduino-esp32 (3.x has
 * address(); 2.x has IP()); see Arduino.h in this folder. */
#pragma once
#include "Arduino.h"

class MDNSResponder {
public:
    bool begin(const char *hostName);
    int queryService(const char *service, const char *proto);
    IPAddress address(int idx);
    IPAddress IP(int idx);
    uint16_t port(int idx);
    String hostname(int idx);
    bool hasTxt(int idx, const char *key);
    String txt(int idx, const char *key);
};
extern MDNSResponder MDNS;
