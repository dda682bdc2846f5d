/* esp_idf_version.h (stand-in) - pretends to be ESP-IDF 5.x; see Arduino.h in this folder. */
#pragma once
#ifndef ESP_IDF_VERSION_MAJOR
#define ESP_IDF_VERSION_MAJOR 5
#endif
