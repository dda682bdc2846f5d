/* OtaFleet.h - Arduino-ESP32 front end of the otafleet reference client.
 *
 * Why it exists: sketches get the whole native v1 client (mDNS discovery,
 * check-in, streamed and verified OTA with progress, confirmation and
 * rollback; remote management: commands, config, log forwarding, reports)
 * from two calls: begin() in setup() and loop() in loop(). All the logic is
 * in the portable core (src/core, plain C, host-tested); this class only
 * binds it to WiFi, HTTPClient, ESPmDNS, Preferences, Update, the esp_ota_*
 * API and esp_log.
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
    /* HTTPS (see setCACert/pinCA): the otafleet CA certificate as PEM, and/or
     * its pinned SHA-256 (64 hex digits, ':' allowed). */
    const char *caCert = nullptr;
    const char *caSha256 = nullptr;
    Print *log = nullptr;            /* e.g. &Serial */
};

class OtaFleet {
public:
    typedef void (*EventHandler)(const ofc_event &ev);
    /* A custom command from the server: write an optional result text into
     * result[0..cap) and return OFC_CMD_DONE, OFC_CMD_FAILED or
     * OFC_CMD_REJECTED. Without a handler custom commands are rejected. */
    typedef int (*CommandHandler)(const char *key, const char *payloadJson, char *result, size_t cap);
    /* A new config was stored (values object as JSON); read values with
     * configString/configInt/configBool. */
    typedef void (*ConfigHandler)(const char *valuesJson);

    /* Call once, after WiFi.mode()/WiFi.begin(). The strings in `config`
     * must stay valid (string literals are fine). */
    bool begin(const OtaFleetConfig &config);
    /* Before begin(): trust this otafleet CA (PEM, from Settings -> Secure
     * connection or GET /api/v1/tls; keep the string alive). Every request
     * then goes to https:// (WiFiClientSecure::setCACert), and the token is
     * never sent over plain http://. */
    void setCACert(const char *pem) { caCert_ = pem; }
    /* Before begin(): pin the CA by its SHA-256. The client fetches the CA
     * from the server (without its token), accepts it only if it matches,
     * and keeps it in NVS. Without a CA or pin, a server that advertises
     * tls=1 and ca=<sha256> over mDNS is trusted on first use. */
    void pinCA(const char *sha256hex) { caSha256_ = sha256hex; }
    /* Call from loop(). Returns at once when nothing is due; blocks while a
     * check-in or a download runs. Works offline too: failed check-ins back
     * off, and count towards rolling back an unconfirmed new image. */
    void loop();
    void onEvent(EventHandler handler) { handler_ = handler; }
    void onCommand(CommandHandler handler) { commandHandler_ = handler; }
    void onConfig(ConfigHandler handler) { configHandler_ = handler; }

    /* POST a report: type "info", "warn", "error" or "success". Returns the
     * HTTP status (200: stored) or < 0. Blocks for one request. Allowed in
     * the command and config handlers, not in the event handler (the
     * client's buffers are in use there). */
    int report(const char *type, const char *subject, const char *body = nullptr);
    /* Forward a log line (printf-style, cut at 159 bytes) while the server
     * collects this device's logs; returns false (and keeps nothing) when it
     * does not. Never blocks: the lines go out from loop(). Call it from
     * the task that calls loop() (the line ring has no lock). */
    bool log(ofc_log_level level, const char *scope, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
    bool logsForwarded() const { return ofc_client_logs_on(&client_) != 0; }
    /* Also forward ESP_LOGx output (esp_log_set_vprintf; the previous
     * output, e.g. the serial console, still gets every line). Only lines
     * logged from the task that calls loop(), outside loop() itself, are
     * forwarded: the line ring is not shared between tasks. */
    void forwardEspLog(bool on);

    /* The stored config (from NVS; the newest the server gave). */
    String configString(const char *key, const char *fallback = "") const;
    int64_t configInt(const char *key, int64_t fallback = 0) const;
    bool configBool(const char *key, bool fallback = false) const;
    uint64_t configVersion() const { return ofc_client_config_version(&client_); }
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
    static int discover(void *ctx, ofc_discovered *out);
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
    static int setCa(void *ctx, const char *pem);
    static void forwardEvent(void *user, const ofc_event *ev);
    static int forwardCommand(void *user, const char *key, const char *payload, char *result, size_t cap);
    static void forwardConfig(void *user, const char *values);
    static int espLogHook(const char *fmt, va_list args);

    static const ofc_platform kPlatform;

    OtaFleetConfig config_;
    EventHandler handler_ = nullptr;
    CommandHandler commandHandler_ = nullptr;
    ConfigHandler configHandler_ = nullptr;
    bool polling_ = false;     /* inside loop(): esp_log lines are not queued */
    bool inEvent_ = false;     /* inside the event handler: no report() */
    void *loopTask_ = nullptr; /* the task that calls loop() */
    bool started_ = false;
    bool mdnsStarted_ = false;
    char runningSha256_[65] = {0};
    const char *caCert_ = nullptr;   /* setCACert() */
    const char *caSha256_ = nullptr; /* pinCA() */
    const char *ca_ = nullptr;       /* the CA the core trusts (set_ca) */
    ofc_client client_;
};

#endif /* OTAFLEET_H */
