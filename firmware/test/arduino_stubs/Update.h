/* Update.h (stand-in) - UpdateClass as arduino-esp32 declares it; see
 * Arduino.h in this folder. */
#pragma once
#include "Arduino.h"

#define U_FLASH 0

class UpdateClass {
public:
    bool begin(size_t size = 0xFFFFFFFF, int command = U_FLASH, int ledPin = -1, uint8_t ledOn = LOW,
               const char *label = NULL);
    size_t write(uint8_t *data, size_t len);
    bool end(bool evenIfRemaining = false);
    void abort();
    const char *errorString();
};
extern UpdateClass Update;
