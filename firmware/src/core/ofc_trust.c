/* ofc_trust.c - which CA the client trusts, and trust on first use.
 *
 * Why it exists: otafleet serves HTTPS on its HTTP port with a certificate
 * from its own local CA, so a device needs that CA to verify the server, and
 * must never hand its token to whoever answers on plain http:// once it has
 * it. The CA comes from the sketch (ofc_config.ca_pem), from NVS (stored
 * when it was first trusted), or from the server itself
 * (GET /api/v1/tls/ca.pem, fetched without the token), accepted only when its
 * SHA-256 matches the pinned ofc_config.ca_sha256 or, with no pin, the ca=
 * the server advertised over mDNS (trust on first use). See ofc_client.h.
 */
#include "ofc_client_internal.h"

#include <string.h>

#include "ofc_url.h"

static void use_ca(ofc_client *c, const char *pem)
{
    c->ca = pem;
    if (c->p->set_ca == NULL) {
        ofc__log(c, 0, "this platform cannot verify https:// (no set_ca): the token will not be sent");
    } else if (c->p->set_ca(c->pctx, pem) != 0) {
        ofc__log(c, 0, "the platform could not load the otafleet CA: https:// requests will fail");
    }
}

void ofc__trust_start(ofc_client *c)
{
    char fp[OFC_FP_HEX];
    c->ca = NULL;
    c->pin[0] = '\0';
    if (c->cfg.ca_sha256 && c->cfg.ca_sha256[0] && ofc_fingerprint_normalize(c->cfg.ca_sha256, c->pin) != 0) {
        ofc__log(c, 0, "ca_sha256 is not a SHA-256 fingerprint (64 hex digits): no CA will match it");
        strcpy(c->pin, "!");
    }
    if (c->cfg.ca_pem && c->cfg.ca_pem[0]) {
        if (ofc_pem_cert_sha256_hex(c->cfg.ca_pem, fp) != 0) {
            ofc__log(c, 0, "the configured ca_pem holds no PEM certificate: ignoring it");
        } else if (c->pin[0] && strcmp(fp, c->pin) != 0) {
            ofc__log(c, 0, "the configured ca_pem does not match the pinned ca_sha256: ignoring it");
        } else {
            use_ca(c, c->cfg.ca_pem);
            return;
        }
    }
    if (c->p->kv_get(c->pctx, OFC_KEY_CA, c->ca_pem, sizeof c->ca_pem) != 0) {
        c->ca_pem[0] = '\0';
        return;
    }
    if (ofc_pem_cert_sha256_hex(c->ca_pem, fp) != 0 || (c->pin[0] && strcmp(fp, c->pin) != 0)) {
        ofc__log(c, 1, "the stored otafleet CA is unreadable or does not match the pin: forgetting it");
        c->p->kv_erase(c->pctx, OFC_KEY_CA);
        c->ca_pem[0] = '\0';
        return;
    }
    use_ca(c, c->ca_pem);
}

static void ca_event(ofc_client *c, int trusted, const char *hex)
{
    char colon[OFC_FP_COLON];
    ofc_fingerprint_colon(hex, colon);
    ofc__emit(c, OFC_EV_CA, trusted, colon);
}

/* GET the server's CA without the token and accept it only if it matches `want`. */
static int fetch_ca(ofc_client *c, const char *want, const char *why_trusted)
{
    char fp[OFC_FP_HEX], colon[OFC_FP_COLON];
    size_t len = 0;
    int status;
    if (ofc__api_url(c, "/tls/ca.pem")) return -1;
    status = ofc__get_small(c, c->api_url, NULL, &len);
    if (status != 200) {
        ofc__log(c, 0, "could not fetch the otafleet CA from %s (status %d): not checking in", c->api_url,
                 status);
        return -1;
    }
    if (ofc_pem_cert_sha256_hex(c->resp, fp) != 0) {
        ofc__log(c, 0, "%s did not return a PEM certificate: not checking in", c->api_url);
        return -1;
    }
    ofc_fingerprint_colon(fp, colon);
    if (strcmp(fp, want) != 0) {
        char want_colon[OFC_FP_COLON];
        ofc_fingerprint_colon(want, want_colon);
        ofc__log(c, 0, "refusing the CA served by %s: its SHA-256 %s is not the %s %s; the token is not sent",
                 c->base_url, colon, why_trusted, want_colon);
        ca_event(c, 0, fp);
        return -1;
    }
    memcpy(c->ca_pem, c->resp, len + 1 <= sizeof c->ca_pem ? len + 1 : sizeof c->ca_pem);
    c->ca_pem[sizeof c->ca_pem - 1] = '\0';
    if (c->p->kv_set(c->pctx, OFC_KEY_CA, c->ca_pem) != 0)
        ofc__log(c, 1, "could not store the otafleet CA; it will be fetched again after a restart");
    use_ca(c, c->ca_pem);
    ca_event(c, 1, fp);
    return 0;
}

int ofc__trust_server(ofc_client *c, const ofc_discovered *d)
{
    char adv[OFC_FP_HEX], tmp[OFC_URL_MAX];
    int advertised = d && d->tls && ofc_fingerprint_normalize(d->ca_sha256, adv) == 0;
    if (c->ca == NULL) {
        if (c->pin[0]) {
            if (advertised && strcmp(adv, c->pin) != 0)
                ofc__log(c, 1, "mDNS advertises another CA than the pinned one: the pin wins");
            char colon[OFC_FP_COLON];
            if (fetch_ca(c, c->pin, "pinned") != 0) return -1;
            ofc_fingerprint_colon(c->pin, colon);
            ofc__log(c, 2, "trusting otafleet CA %s: it matches the pinned ca_sha256", colon);
        } else if (advertised) {
            char colon[OFC_FP_COLON];
            ofc_url u;
            const char *who = d->host;
            if (who[0] == '\0') who = ofc_url_parse(c->base_url, &u) == 0 ? u.host : c->base_url;
            if (fetch_ca(c, adv, "advertised") != 0) return -1;
            ofc_fingerprint_colon(adv, colon);
            ofc__log(c, 2, "trusting otafleet CA %s on first use (advertised over mDNS by %.100s)", colon, who);
        }
    }
    if (c->ca == NULL) return 0; /* no CA known: plain http:// as before */
    memcpy(tmp, c->base_url, sizeof tmp);
    if (ofc_url_to_https(tmp, c->base_url, sizeof c->base_url) != 0) {
        memcpy(c->base_url, tmp, sizeof tmp);
        ofc__log(c, 0, "cannot make %s an https:// URL", tmp);
        return -1;
    }
    return 0;
}
