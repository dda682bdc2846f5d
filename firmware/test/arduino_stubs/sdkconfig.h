/* sdkconfig.h (stand-in) - the one sdkconfig value OtaFleet.cpp reads; see Arduino.h in this folder. */
#pragma once
#define CONFIG_IDF_TARGET "esp32"
