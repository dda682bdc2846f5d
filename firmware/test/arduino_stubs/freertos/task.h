/* freertos/task.h (stand-in) - see esp_idf.h in this folder. */
#pragma once
#include "FreeRTOS.h"
