/* secrets.h (stand-in) - values for compiling the example sketch in `make glue-check` only;
 * a real build uses the secrets.h the user makes from examples/OtaFleetBasic/secrets.h.example. */
#pragma once
#define WIFI_SSID "glue-check"
#define WIFI_PASSWORD "glue-check"
#define OTAFLEET_SERVER_URL "http://192.0.2.1:8080"
