/* Preferences.h (stand-in) - the NVS wrapper's methods as arduino-esp32
 * declares them; see Arduino.h in this folder. */
#pragma once
#include "Arduino.h"

class Preferences {
public:
    bool begin(const char *name, bool readOnly = false, const char *partition_label = NULL);
    size_t putString(const char *key, const char *value);
    size_t getString(const char *key, char *value, size_t maxLen);
    bool remove(const char *key);
    bool isKey(const char *key);
};
