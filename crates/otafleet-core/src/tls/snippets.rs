//! Ready-to-paste code that makes a device trust this server's CA: what `GET /api/v1/tls` gives
//! and the UI shows with copy buttons. One snippet per kind of client otafleet serves; each names
//! the CA's SHA-256 fingerprint so a person can compare it with the one the UI and the server log
//! show.

use serde::Serialize;

/// One snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Snippet {
    /// Stable id: `pem`, `arduino`, `esp_idf`, `esp32fota`, `esp_admin`, `curl`.
    pub id: &'static str,
    /// What it is for, for a person.
    pub title: &'static str,
    /// For syntax colouring: `pem`, `cpp`, `c`, `shell`.
    pub language: &'static str,
    pub text: String,
}

/// The CA PEM as a C string literal, one quoted line per PEM line, each ending in `\n`.
pub fn c_string(pem: &str, indent: &str) -> String {
    pem.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{indent}\"{}\\n\"", l.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A complete `include/credentials.h` for one ESP Admin SDK device: this server's `host` (no
/// port: the SDK always uses 443), the device's id and API key, otafleet's CA as `httpCert`, and
/// the broker's CA as `mqttCert` (`mqtt_ca_pem`; otafleet's own broker uses otafleet's CA, so
/// `None` means that one). `mqtt_uri`, when there is a broker, is named in a comment: the SDK
/// takes it from otafleet's settings answer at every boot. Wi-Fi stays for the user to fill.
pub fn esp_admin_credentials(
    ca_pem: &str,
    mqtt_ca_pem: Option<&str>,
    mqtt_uri: Option<&str>,
    host: &str,
    id: &str,
    api_key: &str,
) -> String {
    let broker = match mqtt_uri {
        Some(u) => format!(
            "// MQTT: {u} (otafleet's settings answer gives it to the device at every boot)\n"
        ),
        None => "// MQTT: none (otafleet runs with --mqtt off)\n".to_string(),
    };
    credentials_h(
        ca_pem.trim_end(),
        mqtt_ca_pem.map(str::trim_end),
        &broker,
        None,
        host,
        id,
        api_key,
    )
}

fn credentials_h(
    pem: &str,
    mqtt_pem: Option<&str>,
    broker: &str,
    fingerprint: Option<&str>,
    host: &str,
    id: &str,
    api_key: &str,
) -> String {
    let c_lit = c_string(pem, "    ");
    let (mqtt_comment, mqtt_lit) = match mqtt_pem {
        Some(m) if m != pem => ("// The MQTT broker's CA\n".to_string(), c_string(m, "    ")),
        _ => (String::new(), c_lit.clone()),
    };
    let fp = fingerprint
        .map(|f| format!(", SHA-256 {f}"))
        .unwrap_or_default();
    let q = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "#ifndef H_CREDENTIALS\n#define H_CREDENTIALS\n\n\
         // ESP Admin devices reach otafleet over HTTPS on port 443 (httpHost has no port).\n\
         const char *httpHost = \"{host}\";\n\
         const char *deviceId = \"{id}\";\n\
         const char *apiKey = \"{api_key}\";\n\
         const char *ssid = \"\";\n\
         const char *password = \"\";\n\
         // otafleet CA{fp}\n\
         const char *httpCert =\n{c_lit};\n\
         {broker}\
         {mqtt_comment}\
         const char *mqttCert =\n{mqtt_lit};\n\n\
         #endif\n",
        host = q(host),
        id = q(id),
        api_key = q(api_key),
    )
}

/// Every snippet for a CA (`ca_pem`, its fingerprint in colon form) and the server's HTTPS base
/// URL (`https://192.168.1.10:8470`). `host` is the base URL's host alone (for ESP Admin's
/// `httpHost`, which has no port).
pub fn all(ca_pem: &str, fingerprint: &str, base: &str, host: &str) -> Vec<Snippet> {
    let pem = ca_pem.trim_end();
    let c_lit = c_string(pem, "    ");
    vec![
        Snippet {
            id: "pem",
            title: "The CA certificate (PEM): import it where a browser or tool asks for a CA",
            language: "pem",
            text: format!("{pem}\n"),
        },
        Snippet {
            id: "arduino",
            title: "Arduino (WiFiClientSecure + HTTPUpdate / HTTPClient)",
            language: "cpp",
            text: format!(
                "// otafleet CA, SHA-256 {fingerprint}\n\
                 static const char OTAFLEET_CA[] =\n{c_lit};\n\n\
                 WiFiClientSecure client;\n\
                 client.setCACert(OTAFLEET_CA);\n\
                 t_httpUpdate_return ret = httpUpdate.update(client, \"{base}/ota/arduino\");\n"
            ),
        },
        Snippet {
            id: "esp_idf",
            title: "ESP-IDF (esp_http_client / esp_https_ota: cert_pem)",
            language: "c",
            text: format!(
                "/* otafleet CA, SHA-256 {fingerprint} */\n\
                 static const char otafleet_ca_pem[] =\n{c_lit};\n\n\
                 esp_http_client_config_t http = {{\n    \
                     .url = \"{base}/api/v1/device/checkin\",\n    \
                     .cert_pem = otafleet_ca_pem,\n\
                 }};\n"
            ),
        },
        Snippet {
            id: "esp32fota",
            title: "esp32FOTA (root CA from program memory)",
            language: "cpp",
            text: format!(
                "// otafleet CA, SHA-256 {fingerprint}\n\
                 static const char otafleet_ca[] =\n{c_lit};\n\n\
                 CryptoMemAsset *otafleetCA = new CryptoMemAsset(\"otafleet CA\", otafleet_ca, strlen(otafleet_ca) + 1);\n\
                 esp32FOTA.setRootCA(otafleetCA);\n\
                 esp32FOTA.setManifestURL(\"{base}/ota/esp32fota.json\");\n"
            ),
        },
        Snippet {
            id: "esp_admin",
            title: "ESP Admin SDK (include/credentials.h; the device id and API key come from \"Add ESP Admin device\")",
            language: "cpp",
            text: credentials_h(
                pem,
                None,
                "",
                Some(fingerprint),
                host,
                "<device id>",
                "<API key>",
            ),
        },
        Snippet {
            id: "curl",
            title: "curl (check the server against the CA; the fingerprint must match)",
            language: "shell",
            text: format!(
                "curl -fsS {base}/api/v1/tls/ca.pem -k -o otafleet-ca.pem\n\
                 openssl x509 -in otafleet-ca.pem -noout -fingerprint -sha256\n\
                 # must print {fingerprint}\n\
                 curl --cacert otafleet-ca.pem {base}/api/v1/health\n"
            ),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n";

    #[test]
    fn c_string_quotes_every_line_with_its_newline() {
        assert_eq!(
            c_string(PEM, "  "),
            "  \"-----BEGIN CERTIFICATE-----\\n\"\n  \"AAAA\\n\"\n  \"BBBB\\n\"\n  \"-----END CERTIFICATE-----\\n\""
        );
    }

    #[test]
    fn every_snippet_names_the_fingerprint_or_carries_the_pem() {
        let s = all(PEM, "AB:CD", "https://10.0.0.5:8470", "10.0.0.5");
        let ids: Vec<_> = s.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "pem",
                "arduino",
                "esp_idf",
                "esp32fota",
                "esp_admin",
                "curl"
            ]
        );
        for snip in &s[1..] {
            assert!(snip.text.contains("AB:CD"), "{}", snip.id);
        }
        assert!(s[1].text.contains("client.setCACert(OTAFLEET_CA);"));
        assert!(s[1].text.contains("\"https://10.0.0.5:8470/ota/arduino\""));
        assert!(s[2].text.contains(".cert_pem = otafleet_ca_pem"));
        assert!(s[4].text.contains("const char *httpHost = \"10.0.0.5\";"));
        assert!(s[4].text.contains("\"AAAA\\n\""));
    }
}
