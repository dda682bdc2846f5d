/* OtaFleetBasic.ino - the smallest useful otafleet device.
 *
 * Why it exists: it shows the whole integration of the OtaFleet library in a
 * sketch: join Wi-Fi, let OtaFleet find the server (mDNS _otafleet._tcp,
 * else OTAFLEET_SERVER_URL), check in, take updates with progress, and
 * confirm a new image only after it has checked in; and remote management:
 * a custom "blink" command, a "blink_ms" config variable, a report at boot,
 * and log lines (and ESP_LOGx output) forwarded while someone watches.
 *
 * Before building: copy secrets.h.example to secrets.h and fill it in.
 * Set the version this build reports with -DAPP_VERSION="..." (platformio.ini
 * does), and upload the .bin to otafleet with the same version.
 */
#include <WiFi.h>

#include <OtaFleet.h>

#include "secrets.h"

#ifndef APP_VERSION
#define APP_VERSION "0.1.0"
#endif
#ifndef OTAFLEET_SERVER_URL
#define OTAFLEET_SERVER_URL nullptr
#endif

OtaFleet fleet;
static uint32_t blinkMs = 500;
static uint32_t lastTick = 0;

/* Arduino-ESP32 marks a new image valid during start-up unless this returns
 * true. Returning true leaves that to OtaFleet, which confirms the image
 * after its first good check-in and rolls back after repeated failures
 * (requires a bootloader built with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE). */
extern "C" bool verifyRollbackLater() { return true; }

static void onFleetEvent(const ofc_event &ev)
{
    if (ev.type == OFC_EV_PROGRESS) {
        Serial.printf("otafleet: %s %u%%\n", ev.state, ev.progress);
    } else if (ev.type == OFC_EV_UNAUTHORIZED) {
        Serial.println("otafleet: the server refused this device's token; ask the operator to reset it");
    } else {
        Serial.printf("otafleet: %s (status %d) %s\n", ofc_event_name(ev.type), ev.status, ev.text ? ev.text : "");
    }
}

/* Custom command "blink" with payload {"times": n}; anything else is refused. */
static int onFleetCommand(const char *key, const char *payloadJson, char *result, size_t cap)
{
    if (strcmp(key, "blink") != 0) {
        snprintf(result, cap, "unknown command %s", key);
        return OFC_CMD_REJECTED;
    }
    Serial.printf("otafleet: blink %s\n", payloadJson);
    snprintf(result, cap, "blinked");
    return OFC_CMD_DONE;
}

static void onFleetConfig(const char *valuesJson)
{
    blinkMs = (uint32_t)fleet.configInt("blink_ms", 500);
    Serial.printf("otafleet: config %s\n", valuesJson);
}

void setup()
{
    Serial.begin(115200);
    WiFi.mode(WIFI_STA);
    WiFi.setAutoReconnect(true);
    WiFi.begin(WIFI_SSID, WIFI_PASSWORD);

    OtaFleetConfig config;
    config.serverUrl = OTAFLEET_SERVER_URL;
    config.version = APP_VERSION;
    config.project = "otafleet-basic";
    config.log = &Serial;
    fleet.onEvent(onFleetEvent);
    fleet.onCommand(onFleetCommand);
    fleet.onConfig(onFleetConfig);
    if (!fleet.begin(config)) Serial.println("otafleet: cannot open NVS");
    blinkMs = (uint32_t)fleet.configInt("blink_ms", 500); /* the config stored last time */
    fleet.forwardEspLog(true);
}

void loop()
{
    static bool reported = false;
    fleet.loop(); /* returns at once unless a check-in or download is due */
    if (!reported && fleet.enrolled()) { /* once: reports are best effort */
        reported = true;
        fleet.report("info", "booted", APP_VERSION);
    }
    if (millis() - lastTick >= blinkMs * 20) {
        lastTick = millis();
        fleet.log(OFC_LOG_INFO, "app", "alive, uptime %lu s", millis() / 1000);
    }
    delay(20);
}
