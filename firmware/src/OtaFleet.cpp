/* OtaFleet.cpp - binds the portable client (src/core) to Arduino-ESP32.
 *
 * Why it exists: each ofc_platform function below is a few lines over an
 * Arduino or IDF API, and nothing more: no update logic lives here, so the
 * behaviour tested on the host (make -C firmware test) is the behaviour on
 * the device. Written against arduino-esp32 2.x (IDF 4.4) and 3.x (IDF 5.x).
 */
#include "OtaFleet.h"

#include <ESPmDNS.h>
#include <HTTPClient.h>
#include <Preferences.h>
#include <Update.h>
#include <WiFi.h>
#include <WiFiClientSecure.h>

#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"
#if ESP_IDF_VERSION_MAJOR >= 5
#include "esp_app_desc.h"
#include "esp_random.h"
#endif

static Preferences s_prefs;
static OtaFleet *s_espLogTarget = nullptr; /* forwardEspLog(true) */
static vprintf_like_t s_espLogPrevious = nullptr;

static const uint16_t kHttpTimeoutMs = 15000;

/* A Stream that hands what HTTPClient::writeToStream() reads (identity or
 * chunked) to the core's body sink; returning 0 from write() stops it. */
class SinkStream : public Stream {
public:
    explicit SinkStream(const ofc_body_sink *sink) : sink_(sink) {}
    size_t write(const uint8_t *buf, size_t len) override
    {
        if (aborted_ || sink_->data(sink_->sink_ctx, buf, len) != 0) {
            aborted_ = true;
            return 0;
        }
        return len;
    }
    size_t write(uint8_t b) override { return write(&b, 1); }
    int available() override { return 0; }
    int read() override { return -1; }
    int peek() override { return -1; }
    void flush() {}
    bool aborted() const { return aborted_; }

private:
    const ofc_body_sink *sink_;
    bool aborted_ = false;
};

/* Collects a (small) JSON reply into the core's buffer, refusing more. */
static int collectBegin(void *, int, long) { return 0; }
struct Collected {
    char *buf;
    size_t cap, len;
};
static int collectData(void *ctx, const uint8_t *buf, size_t len)
{
    Collected *c = static_cast<Collected *>(ctx);
    if (c->len + len >= c->cap) return 1;
    memcpy(c->buf + c->len, buf, len);
    c->len += len;
    c->buf[c->len] = '\0';
    return 0;
}

static OtaFleet *self(void *ctx) { return static_cast<OtaFleet *>(ctx); }

/* The connection for `url`: https:// verified against the otafleet CA only
 * (the core gave it through set_ca), else plain. nullptr: https:// without a CA. */
static WiFiClient *connectionFor(const char *url, WiFiClient &plain, WiFiClientSecure &secure, const char *ca)
{
    if (strncmp(url, "https://", 8) != 0) return &plain;
    if (ca == nullptr) return nullptr;
    secure.setCACert(ca);
    return &secure;
}

uint32_t OtaFleet::nowMs(void *) { return millis(); }
uint32_t OtaFleet::random32(void *) { return esp_random(); }

void OtaFleet::logLine(void *ctx, int level, const char *msg)
{
    static const char *const kLevel[] = {"E", "W", "I", "D"};
    Print *out = self(ctx)->config_.log;
    if (out) out->printf("[otafleet] %s %s\n", kLevel[level & 3], msg);
}

int OtaFleet::httpPost(void *ctx, const char *url, const char *bearer, const char *body, size_t len, char *resp,
                       size_t cap, size_t *resp_len)
{
    *resp_len = 0;
    if (WiFi.status() != WL_CONNECTED) return OFC_HTTP_ETRANSPORT;
    WiFiClient plain;
    WiFiClientSecure secure;
    WiFiClient *net = connectionFor(url, plain, secure, self(ctx)->ca_);
    if (net == nullptr) return OFC_HTTP_ETRANSPORT;
    HTTPClient http;
    http.setTimeout(kHttpTimeoutMs);
    http.useHTTP10(true); /* no chunked replies; one request per connection */
    if (!http.begin(*net, url)) return OFC_HTTP_ETRANSPORT;
    http.addHeader("Content-Type", "application/json");
    if (bearer) http.addHeader("Authorization", String("Bearer ") + bearer);
    int status = http.POST(reinterpret_cast<uint8_t *>(const_cast<char *>(body)), len);
    Collected c = {resp, cap, 0};
    resp[0] = '\0';
    if (status > 0) {
        ofc_body_sink sink = {collectBegin, collectData, &c};
        SinkStream s(&sink);
        int r = http.writeToStream(&s);
        if (r < 0 && status == 200) status = s.aborted() ? OFC_HTTP_ETRANSPORT : r;
    }
    http.end();
    *resp_len = c.len;
    return status;
}

int OtaFleet::httpGet(void *ctx, const char *url, const char *bearer, const ofc_body_sink *sink)
{
    if (WiFi.status() != WL_CONNECTED) return OFC_HTTP_ETRANSPORT;
    WiFiClient plain;
    WiFiClientSecure secure;
    WiFiClient *net = connectionFor(url, plain, secure, self(ctx)->ca_);
    if (net == nullptr) return OFC_HTTP_ETRANSPORT;
    HTTPClient http;
    http.setTimeout(kHttpTimeoutMs);
    http.useHTTP10(true);
    if (!http.begin(*net, url)) return OFC_HTTP_ETRANSPORT;
    if (bearer) http.addHeader("Authorization", String("Bearer ") + bearer);
    int status = http.GET();
    if (status <= 0) {
        http.end();
        return status < 0 ? status : OFC_HTTP_ETRANSPORT;
    }
    if (sink->begin(sink->sink_ctx, status, http.getSize()) != 0) {
        http.end();
        return OFC_HTTP_EABORTED;
    }
    SinkStream s(sink);
    int r = http.writeToStream(&s);
    http.end();
    if (s.aborted()) return OFC_HTTP_EABORTED;
    return r < 0 ? r : status; /* a short body is caught by the core's byte count */
}

int OtaFleet::setCa(void *ctx, const char *pem)
{
    self(ctx)->ca_ = pem;
    return 0;
}

int OtaFleet::discover(void *ctx, ofc_discovered *out)
{
    OtaFleet *f = self(ctx);
    if (!f->config_.useMdns || WiFi.status() != WL_CONNECTED) return -1;
    if (!f->mdnsStarted_) {
        String host = f->config_.hostname ? String(f->config_.hostname) : String("esp32-");
        if (!f->config_.hostname) {
            String mac = WiFi.macAddress();
            mac.replace(":", "");
            host += mac.substring(6);
        }
        f->mdnsStarted_ = MDNS.begin(host.c_str());
        if (!f->mdnsStarted_) return -1;
    }
    int n = MDNS.queryService("otafleet", "tcp"); /* blocks up to ~3 s */
    for (int i = 0; i < n; i++) {
#if defined(ESP_ARDUINO_VERSION_MAJOR) && ESP_ARDUINO_VERSION_MAJOR >= 3
        IPAddress ip = MDNS.address(i);
#else
        IPAddress ip = MDNS.IP(i);
#endif
        uint16_t port = MDNS.port(i);
        if (port == 0 || ip == IPAddress(0, 0, 0, 0)) continue;
        snprintf(out->base_url, sizeof out->base_url, "http://%s:%u", ip.toString().c_str(), (unsigned)port);
        snprintf(out->host, sizeof out->host, "%s", MDNS.hostname(i).c_str());
        /* tls=1 and ca=<sha256 of the CA>: the core trusts that CA on first use */
        out->tls = MDNS.hasTxt(i, "tls") && MDNS.txt(i, "tls") == "1";
        if (MDNS.hasTxt(i, "ca"))
            snprintf(out->ca_sha256, sizeof out->ca_sha256, "%s", MDNS.txt(i, "ca").c_str());
        return 0;
    }
    return -1;
}

int OtaFleet::kvGet(void *, const char *key, char *out, size_t cap)
{
    /* Preferences returns 0 for a missing key and for a value that does not fit. */
    return s_prefs.getString(key, out, cap) > 0 ? 0 : -1;
}

int OtaFleet::kvSet(void *, const char *key, const char *value)
{
    return s_prefs.putString(key, value) == strlen(value) ? 0 : -1;
}

int OtaFleet::kvErase(void *, const char *key)
{
    if (s_prefs.isKey(key)) s_prefs.remove(key);
    return 0;
}

int OtaFleet::deviceInfo(void *ctx, ofc_device_info *info)
{
    OtaFleet *f = self(ctx);
#if ESP_IDF_VERSION_MAJOR >= 5
    const esp_app_desc_t *app = esp_app_get_description();
#else
    const esp_app_desc_t *app = esp_ota_get_app_description();
#endif
    const esp_partition_t *next = esp_ota_get_next_update_partition(nullptr);
    snprintf(info->mac, sizeof info->mac, "%s", WiFi.macAddress().c_str());
    snprintf(info->chip, sizeof info->chip, "%s", CONFIG_IDF_TARGET);
    snprintf(info->project, sizeof info->project, "%s", f->config_.project ? f->config_.project : app->project_name);
    snprintf(info->version, sizeof info->version, "%s", f->config_.version ? f->config_.version : app->version);
    memcpy(info->sha256, f->runningSha256_, sizeof info->sha256);
    snprintf(info->ip, sizeof info->ip, "%s", WiFi.localIP().toString().c_str());
    info->free_space = next ? next->size : 0;
    info->rssi = WiFi.RSSI();
    info->has_rssi = WiFi.status() == WL_CONNECTED;
    info->uptime_s = (uint32_t)(esp_timer_get_time() / 1000000);
    return 0;
}

int OtaFleet::isTrial(void *)
{
    esp_ota_img_states_t state;
    return esp_ota_get_state_partition(esp_ota_get_running_partition(), &state) == ESP_OK &&
           state == ESP_OTA_IMG_PENDING_VERIFY;
}

int OtaFleet::markValid(void *) { return esp_ota_mark_app_valid_cancel_rollback() == ESP_OK ? 0 : -1; }
void OtaFleet::rollback(void *) { esp_ota_mark_app_invalid_rollback_and_reboot(); }

int OtaFleet::otaBegin(void *, uint32_t size) { return Update.begin(size, U_FLASH) ? 0 : -1; }

int OtaFleet::otaWrite(void *, const uint8_t *buf, size_t len)
{
    return Update.write(const_cast<uint8_t *>(buf), len) == len ? 0 : -1;
}

int OtaFleet::otaFinish(void *ctx)
{
    if (Update.end()) return 0; /* verifies the image and sets the boot partition */
    logLine(ctx, 0, Update.errorString());
    return -1;
}

void OtaFleet::otaAbort(void *) { Update.abort(); }

void OtaFleet::reboot(void *)
{
    delay(200); /* let the last progress report leave */
    ESP.restart();
}

void OtaFleet::forwardEvent(void *user, const ofc_event *ev)
{
    OtaFleet *f = self(user);
    if (f->handler_) {
        f->inEvent_ = true;
        f->handler_(*ev);
        f->inEvent_ = false;
    }
}

int OtaFleet::forwardCommand(void *user, const char *key, const char *payload, char *result, size_t cap)
{
    OtaFleet *f = self(user);
    if (f->commandHandler_) return f->commandHandler_(key, payload, result, cap);
    snprintf(result, cap, "no handler");
    return OFC_CMD_REJECTED;
}

void OtaFleet::forwardConfig(void *user, const char *values)
{
    OtaFleet *f = self(user);
    if (f->configHandler_) f->configHandler_(values);
}

const ofc_platform OtaFleet::kPlatform = {
    nowMs,    random32,   logLine, httpPost,  httpGet,   discover,  kvGet,     kvSet,    kvErase,
    deviceInfo, isTrial, markValid, rollback, otaBegin, otaWrite, otaFinish, otaAbort, reboot, setCa,
};

bool OtaFleet::begin(const OtaFleetConfig &config)
{
    config_ = config;
    if (!s_prefs.begin(config_.nvsNamespace, false)) return false;
    uint8_t sha[32];
    if (esp_partition_get_sha256(esp_ota_get_running_partition(), sha) == ESP_OK)
        ofc_hex(sha, sizeof sha, runningSha256_);

    ofc_config cfg;
    ofc_config_defaults(&cfg);
    cfg.server_url = config_.serverUrl;
    cfg.ca_pem = caCert_ ? caCert_ : config_.caCert;
    cfg.ca_sha256 = caSha256_ ? caSha256_ : config_.caSha256;
    cfg.name = config_.name;
    cfg.default_interval_s = config_.defaultIntervalS;
    cfg.confirm_attempts = config_.confirmAttempts;
    cfg.refuse_downgrade = config_.refuseDowngrade;
    cfg.on_event = forwardEvent;
    cfg.on_command = forwardCommand;
    cfg.on_config = forwardConfig;
    cfg.user = this;
    ofc_client_init(&client_, &cfg, &kPlatform, this);
    started_ = true;
    return true;
}

void OtaFleet::loop()
{
    if (!started_) return;
    loopTask_ = xTaskGetCurrentTaskHandle();
    polling_ = true;
    ofc_client_poll(&client_);
    polling_ = false;
}

int OtaFleet::report(const char *type, const char *subject, const char *body)
{
    if (!started_ || inEvent_) return OFC_HTTP_ETRANSPORT;
    return ofc_client_report(&client_, type, subject, body);
}

bool OtaFleet::log(ofc_log_level level, const char *scope, const char *fmt, ...)
{
    char line[OFC_LOG_TEXT];
    va_list args;
    if (!started_ || !ofc_client_logs_on(&client_)) return false;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    return ofc_client_log(&client_, level, scope, line) == 1;
}

/* "E (1234) wifi: text" -> level E, scope "wifi", text; colour codes and the
 * newline dropped. Anything else is forwarded whole at info level. */
int OtaFleet::espLogHook(const char *fmt, va_list args)
{
    char line[OFC_LOG_TEXT + 40], scope[OFC_LOG_SCOPE] = "esp_log";
    va_list copy;
    va_copy(copy, args);
    int n = s_espLogPrevious ? s_espLogPrevious(fmt, copy) : vprintf(fmt, copy);
    va_end(copy);
    OtaFleet *f = s_espLogTarget;
    if (f == nullptr || f->polling_ || xTaskGetCurrentTaskHandle() != f->loopTask_ ||
        !ofc_client_logs_on(&f->client_))
        return n;
    vsnprintf(line, sizeof line, fmt, args);
    char *p = line;
    if (p[0] == '\033') { /* "\033[0;31m" */
        char *m = strchr(p, 'm');
        if (m) p = m + 1;
    }
    ofc_log_level level = OFC_LOG_INFO;
    switch (p[0]) {
    case 'E': level = OFC_LOG_ERROR; break;
    case 'W': level = OFC_LOG_WARN; break;
    case 'D': level = OFC_LOG_DEBUG; break;
    case 'V': level = OFC_LOG_VERBOSE; break;
    default: break;
    }
    char *close = (p[1] == ' ' && p[2] == '(') ? strstr(p, ") ") : nullptr;
    char *colon = close ? strstr(close + 2, ": ") : nullptr;
    if (colon && (size_t)(colon - (close + 2)) < sizeof scope) {
        memcpy(scope, close + 2, colon - (close + 2));
        scope[colon - (close + 2)] = '\0';
        p = colon + 2;
    }
    char *end = p + strlen(p);
    while (end > p && (end[-1] == '\n' || end[-1] == '\r')) *--end = '\0';
    char *reset = strstr(p, "\033[0m");
    if (reset) *reset = '\0';
    if (*p) ofc_client_log(&f->client_, level, scope, p);
    return n;
}

void OtaFleet::forwardEspLog(bool on)
{
    if (on && s_espLogTarget == nullptr) {
        s_espLogTarget = this;
        s_espLogPrevious = esp_log_set_vprintf(espLogHook);
    } else if (!on && s_espLogTarget == this) {
        esp_log_set_vprintf(s_espLogPrevious ? s_espLogPrevious : vprintf);
        s_espLogTarget = nullptr;
        s_espLogPrevious = nullptr;
    }
}

String OtaFleet::configString(const char *key, const char *fallback) const
{
    char value[256];
    return ofc_client_config_str(&client_, key, value, sizeof value) == 0 ? String(value) : String(fallback);
}

int64_t OtaFleet::configInt(const char *key, int64_t fallback) const
{
    int64_t value;
    return ofc_client_config_int(&client_, key, &value) == 0 ? value : fallback;
}

bool OtaFleet::configBool(const char *key, bool fallback) const
{
    int value;
    return ofc_client_config_bool(&client_, key, &value) == 0 ? value != 0 : fallback;
}
