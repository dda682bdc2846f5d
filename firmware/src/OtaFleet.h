/* OtaFleet.h - Arduino-ESP32 front end of the otafleet reference client.
 *
 * Why it exists: sketches get the whole native v1 client (mDNS discovery,
 * check-in, streamed and verified OTA with progress, confirmation and
 * rollback) from two calls: begin() in setup() and loop() in loop(). All the
 * logic is in the portable core (src/core, plain C, host-tested); this class
 * only binds it to WiFi, HTTPClient, ESPmDNS, Preferences, Update and the
 * esp_ota_* API.
 */
#ifndef OTAFLEET_H
#define OTAFLEET_H

#include <Arduino.h>

#include "core/ofc_client.h"

struct OtaFleetConfig {
    /* Server to use when mDNS (_otafleet._tcp) finds none, e.g.
     * "http://192.168.1.10:8080"; nullptr to rely on mDNS alone. */
    const char *serverUrl = nullptr;
    bool useMdns = true;
    /* mDNS host name of this device; nullptr: "esp32-" + last 6 MAC digits. */
    const char *hostname = nullptr;
    /* Shown in otafleet's device table; optional. */
    const char *name = nullptr;
    /* Version and project reported at check-in. nullptr: from the running
     * app's esp_app_desc_t. Arduino builds should set both: their
     * descriptor describes the prebuilt core ("arduino-lib-builder"). */
    const char *version = nullptr;
    const char *project = nullptr;
    uint32_t defaultIntervalS = 60;  /* until the server sends checkin_interval_s */
    uint32_t confirmAttempts = 5;    /* failed check-ins before a trial image rolls back */
    bool refuseDowngrade = false;
    const char *nvsNamespace = "otafleet";
    Print *log = nullptr;            /* e.g. &Serial */
};

class OtaFleet {
public:
    typedef void (*EventHandler)(const ofc_event &ev);

    /* Call once, after WiFi.mode()/WiFi.begin(). The strings in `config`
     * must stay valid (string literals are fine). */
    bool begin(const OtaFleetConfig &config);
    /* Call from loop(). Returns at once when nothing is due; blocks while a
     * check-in or a download runs. Works offline too: failed check-ins back
     * off, and count towards rolling back an unconfirmed new image. */
    void loop();
    void onEvent(EventHandler handler) { handler_ = handler; }
    /* Check in on the next loop() instead of waiting for the interval. */
    void checkInNow() { ofc_client_checkin_now(&client_); }
    /* True once the server has given this device a token. */
    bool enrolled() const { return client_.token[0] != '\0'; }

private:
    static uint32_t nowMs(void *ctx);
    static uint32_t random32(void *ctx);
    static void logLine(void *ctx, int level, const char *msg);
    static int httpPost(void *ctx, const char *url, const char *bearer, const char *body, size_t len,
                        char *resp, size_t cap, size_t *resp_len);
    static int httpGet(void *ctx, const char *url, const char *bearer, const ofc_body_sink *sink);
    static int discover(void *ctx, char *base_url, size_t cap);
    static int kvGet(void *ctx, const char *key, char *out, size_t cap);
    static int kvSet(void *ctx, const char *key, const char *value);
    static int kvErase(void *ctx, const char *key);
    static int deviceInfo(void *ctx, ofc_device_info *info);
    static int isTrial(void *ctx);
    static int markValid(void *ctx);
    static void rollback(void *ctx);
    static int otaBegin(void *ctx, uint32_t size);
    static int otaWrite(void *ctx, const uint8_t *buf, size_t len);
    static int otaFinish(void *ctx);
    static void otaAbort(void *ctx);
    static void reboot(void *ctx);
    static void forwardEvent(void *user, const ofc_event *ev);

    static const ofc_platform kPlatform;

    OtaFleetConfig config_;
    EventHandler handler_ = nullptr;
    bool started_ = false;
    bool mdnsStarted_ = false;
    char runningSha256_[65] = {0};
    ofc_client client_;
};

#endif /* OTAFLEET_H */
