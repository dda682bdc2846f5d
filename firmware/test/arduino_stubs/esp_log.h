/* esp_log.h (stand-in) - see esp_idf.h in this folder. */
#pragma once
#include "esp_idf.h"
