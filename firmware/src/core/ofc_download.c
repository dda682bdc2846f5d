/* ofc_download.c - download, verify and activate an offered image.
 *
 * The image streams from the server straight into the OTA slot while SHA-256
 * and MD5 are computed over the same bytes. Only when the whole offered size
 * arrived and both digests match the offer is the slot made bootable; any
 * failure aborts the slot, so a bad download can never be booted. Progress
 * goes to the server at every 5% step and at every state change.
 */
#include "ofc_client_internal.h"

#include <stdio.h>
#include <string.h>

#include "ofc_url.h"
#include "ofc_version.h"

static int sink_begin(void *ctx, int status, long content_length)
{
    ofc_client *c = (ofc_client *)ctx;
    if (status != 200) {
        snprintf(c->dl.error, sizeof c->dl.error, "download refused: HTTP %d", status);
        return 1;
    }
    if (content_length >= 0 && (unsigned long)content_length != c->offer.size) {
        snprintf(c->dl.error, sizeof c->dl.error, "Content-Length %ld differs from offered size %lu",
                 content_length, (unsigned long)c->offer.size);
        return 1;
    }
    return 0;
}

static int sink_data(void *ctx, const uint8_t *buf, size_t len)
{
    ofc_client *c = (ofc_client *)ctx;
    unsigned step;
    if (len > c->offer.size - c->dl.received) {
        snprintf(c->dl.error, sizeof c->dl.error, "server sent more than the offered %lu bytes",
                 (unsigned long)c->offer.size);
        return 1;
    }
    if (c->p->ota_write(c->pctx, buf, len) != 0) {
        snprintf(c->dl.error, sizeof c->dl.error, "writing the OTA partition failed at byte %lu",
                 (unsigned long)c->dl.received);
        return 1;
    }
    ofc_sha256_update(&c->dl.sha, buf, len);
    ofc_md5_update(&c->dl.md5, buf, len);
    c->dl.received += (uint32_t)len;
    step = (unsigned)((uint64_t)c->dl.received * 100u / c->offer.size) / 5u * 5u;
    if (step > c->dl.last_step) {
        c->dl.last_step = step;
        ofc__report(c, &c->offer.id, "downloading", step, NULL);
    }
    return 0;
}

static void fail(ofc_client *c, const char *error)
{
    ofc__log(c, 0, "update %s failed: %s", c->offer.id.text, error);
    ofc__report(c, &c->offer.id, "failed", c->dl.last_step, error);
    ofc__emit(c, OFC_EV_UPDATE_FAILED, 0, error);
    if (ofc__id_equal(&c->failed_offer, &c->offer.id)) {
        c->failed_offer_count++;
    } else {
        c->failed_offer = c->offer.id;
        c->failed_offer_count = 1;
    }
    c->phase = OFC_PHASE_CHECKIN;
    ofc__schedule_interval(c);
}

/* Checks that need no network: where to fetch from, and whether it fits. */
static int precheck(ofc_client *c, char *err, size_t cap)
{
    const ofc_offer *o = &c->offer;
    ofc_url u;
    int r = ofc_url_resolve(c->base_url, o->url, c->fw_url, sizeof c->fw_url);
    if (r == 0 && c->ca && ofc_url_same_host_port(c->fw_url, c->base_url)) {
        char tmp[OFC_URL_MAX];
        memcpy(tmp, c->fw_url, sizeof tmp); /* the server itself: https:// like every request */
        r = ofc_url_to_https(tmp, c->fw_url, sizeof c->fw_url);
    }
    if (r == OFC_URL_ESCHEME) {
        snprintf(err, cap, "unsupported URL scheme (only http:// and https://)");
        return -1;
    }
    if (r == 0 && c->ca == NULL && ofc_url_parse(c->fw_url, &u) == 0 && u.https) {
        snprintf(err, cap, "unsupported URL scheme: https:// needs the server's CA (ca_pem)");
        return -1;
    }
    if (r != 0) {
        snprintf(err, cap, "unusable update URL");
        return -1;
    }
    if (c->info.free_space && o->size > c->info.free_space) {
        snprintf(err, cap, "image of %lu bytes does not fit the %lu-byte OTA partition",
                 (unsigned long)o->size, (unsigned long)c->info.free_space);
        return -1;
    }
    if (c->cfg.refuse_downgrade && ofc_version_is_older(o->version, c->info.version)) {
        snprintf(err, cap, "downgrade from %.40s to %.40s refused", c->info.version, o->version);
        return -1;
    }
    return 0;
}

static int digests_match(ofc_client *c, char *err, size_t cap)
{
    uint8_t sha[32], md5[16];
    char sha_hex[65], md5_hex[33];
    ofc_sha256_final(&c->dl.sha, sha);
    ofc_md5_final(&c->dl.md5, md5);
    ofc_hex(sha, 32, sha_hex);
    ofc_hex(md5, 16, md5_hex);
    if (strcmp(sha_hex, c->offer.sha256) != 0) {
        snprintf(err, cap, "sha256 mismatch: expected %.16s..., got %.16s...", c->offer.sha256, sha_hex);
        return 0;
    }
    if (c->offer.md5[0] && strcmp(md5_hex, c->offer.md5) != 0) {
        snprintf(err, cap, "md5 mismatch: expected %s, got %s", c->offer.md5, md5_hex);
        return 0;
    }
    return 1;
}

static void save_pending(ofc_client *c)
{
    char *buf = c->body; /* free between progress reports */
    ofc_pending pd;
    memset(&pd, 0, sizeof pd);
    pd.update_id = c->offer.id;
    memcpy(pd.sha256, c->offer.sha256, sizeof pd.sha256);
    memcpy(pd.version, c->offer.version, sizeof pd.version);
    memcpy(pd.prev_sha256, c->info.sha256, sizeof pd.prev_sha256);
    memcpy(pd.prev_version, c->info.version, sizeof pd.prev_version);
    if (ofc_pending_encode(buf, sizeof c->body, &pd) < 0 || c->p->kv_set(c->pctx, OFC_KEY_PENDING, buf) != 0)
        ofc__log(c, 1, "could not store the pending-update record; the server will still see the new image");
}

void ofc__run_update(ofc_client *c)
{
    char err[OFC_ERROR_MAX];
    ofc_body_sink sink;
    const char *bearer;
    int status;

    memset(&c->dl, 0, sizeof c->dl);
    if (precheck(c, err, sizeof err) != 0) {
        fail(c, err);
        return;
    }
    ofc__report(c, &c->offer.id, "downloading", 0, NULL);
    if (c->p->ota_begin(c->pctx, c->offer.size) != 0) {
        fail(c, "cannot start writing the OTA partition");
        return;
    }
    ofc_sha256_init(&c->dl.sha);
    ofc_md5_init(&c->dl.md5);
    sink.begin = sink_begin;
    sink.data = sink_data;
    sink.sink_ctx = c;
    /* The device token goes only to the server it belongs to. */
    bearer = (c->token[0] && ofc_url_same_origin(c->fw_url, c->base_url)) ? c->token : NULL;
    ofc__log(c, 2, "downloading %s", c->fw_url);
    status = ofc__http_get(c, c->fw_url, bearer, &sink);
    if (c->dl.error[0] == '\0' && status != 200)
        snprintf(c->dl.error, sizeof c->dl.error, "download failed (%d) after %lu of %lu bytes", status,
                 (unsigned long)c->dl.received, (unsigned long)c->offer.size);
    if (c->dl.error[0] == '\0' && c->dl.received != c->offer.size)
        snprintf(c->dl.error, sizeof c->dl.error, "download ended after %lu of %lu bytes",
                 (unsigned long)c->dl.received, (unsigned long)c->offer.size);
    if (c->dl.error[0]) {
        ofc_sha256_final(&c->dl.sha, (uint8_t *)err); /* release the context */
        c->p->ota_abort(c->pctx);
        memcpy(err, c->dl.error, sizeof err);
        fail(c, err);
        return;
    }
    ofc__report(c, &c->offer.id, "verifying", 100, NULL);
    if (!digests_match(c, err, sizeof err)) {
        c->p->ota_abort(c->pctx);
        fail(c, err);
        return;
    }
    ofc__report(c, &c->offer.id, "flashing", 100, NULL);
    if (c->p->ota_finish(c->pctx) != 0) {
        fail(c, "the written image was rejected when activating it");
        return;
    }
    save_pending(c);
    ofc__report(c, &c->offer.id, "rebooting", 100, NULL);
    ofc__emit(c, OFC_EV_REBOOT, 0, c->offer.version);
    c->phase = OFC_PHASE_HALTED;
    c->p->reboot(c->pctx);
}
