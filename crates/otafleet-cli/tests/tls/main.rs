//! HTTPS on the shared port, as real clients see it: the actual `otafleet serve` binary, and
//! rustls, curl, `openssl s_client`, Python's `ssl` and an mbedTLS 2.28 program (the TLS stack of
//! the ESP32's Arduino core and ESP-IDF 4.x) each trusting only the CA in DATA_DIR/tls/ca.pem.
//! Each client connects by address (`127.0.0.1`, for mbedTLS through the `DNS:<address>` SAN) and
//! by name (`localhost`), and is refused when it trusts another server's CA or expects a name the
//! certificate does not carry, so a certificate that verified for the wrong reason would fail.
//!
//! In network namespaces (root; `OTAFLEET_SKIP_NETNS=1` skips them, as the mDNS tests): an
//! address added while the server runs gets into a re-issued certificate under the same CA, and
//! `--tls require` refuses the LAN's plain HTTP. `--tls off` serves no TLS at all.

// The same test LAN as the mDNS tests (two namespaces and a veth pair); its python-zeroconf
// helpers are unused here.
#[path = "../mdns_lan/netns.rs"]
#[allow(dead_code)]
mod netns;
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

/// The names a client verifies: an address and a name.
const NAMES: [&str; 2] = ["127.0.0.1", "localhost"];
/// A name the certificate does not carry.
const STRANGER: &str = "ota.example.invalid";

/// Start a server and a second one for its foreign CA; `client(name, port, ca)` must get
/// `200` for both [`NAMES`] with the server's CA, and be refused (with `refusal` in its error)
/// with the foreign CA or an unknown name.
fn matrix(client: impl Fn(&str, u16, &Path) -> Got, refusal: &str) {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(Place::Here, "127.0.0.1:0", dir.path(), &[]);
    let foreign = foreign_ca(other.path());
    let ca = server.ca_file();
    for name in NAMES {
        match client(name, server.port, &ca) {
            Ok(status) => assert_eq!(status, "HTTP/1.1 200 OK", "by {name}"),
            Err(e) => panic!("by {name}, trusting the server's CA: {e}"),
        }
        let e = client(name, server.port, &foreign).expect_err(&format!(
            "by {name}, trusting a foreign CA: must be refused"
        ));
        assert!(e.contains(refusal), "by {name}, foreign CA: {e}");
    }
    let e = client(STRANGER, server.port, &ca).expect_err("a name not in the certificate");
    assert!(e.contains(refusal), "by {STRANGER}: {e}");
}

#[tokio::test]
async fn rustls_verifies_by_address_and_name_with_alpn_and_plain_http_shares_the_port() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(Place::Here, "127.0.0.1:0", dir.path(), &[]);
    let foreign = foreign_ca(other.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    for name in NAMES {
        let (status, alpn) = rustls_https(addr, &server.ca_file(), name, "/api/v1/health")
            .await
            .unwrap_or_else(|e| panic!("by {name}: {e}"));
        assert_eq!(status, "HTTP/1.1 200 OK", "by {name}");
        assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "ALPN, by {name}");
        let e = rustls_https(addr, &foreign, name, "/api/v1/health")
            .await
            .expect_err("a foreign CA must be refused");
        assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    }
    let e = rustls_https(addr, &server.ca_file(), STRANGER, "/api/v1/health")
        .await
        .expect_err("a name not in the certificate");
    assert!(e.contains("invalid peer certificate"), "{e}");

    // Plain HTTP on the same port, before and after the TLS connections.
    let (code, body) = curl_plain(Place::Here, "127.0.0.1", server.port, "/api/v1/health");
    assert_eq!(code, 200, "{body}");
}

#[test]
fn curl_verifies_by_address_and_name_and_the_api_gives_the_ca_it_printed() {
    matrix(
        |name, port, ca| curl_https(Place::Here, "127.0.0.1", name, port, ca, "/api/v1/health"),
        "curl: (60)",
    );

    // What the startup line, the data directory and GET /api/v1/tls say about the CA agree.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Place::Here, "127.0.0.1:0", dir.path(), &[]);
    let info = tls_info(Place::Here, server.port);
    assert_eq!(info["mode"], "auto");
    let printed = server
        .printed_ca
        .as_deref()
        .expect("a CA fingerprint printed");
    assert_eq!(info["ca_sha256"], printed, "{info}");
    let pem = std::fs::read_to_string(server.ca_file()).unwrap();
    assert_eq!(info["ca_pem"], pem.as_str());
    let (code, body) = curl_plain(Place::Here, "127.0.0.1", server.port, "/api/v1/tls/ca.pem");
    assert_eq!((code, body.as_str()), (200, pem.as_str()));
    let names = names(&info);
    for n in ["IP:127.0.0.1", "DNS:127.0.0.1", "DNS:localhost"] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
}

#[test]
fn openssl_s_client_verifies_by_address_and_name() {
    matrix(
        |name, port, ca| openssl_https(Place::Here, "127.0.0.1", port, ca, name, "/api/v1/health"),
        "verify error",
    );
}

#[test]
fn python_ssl_verifies_by_address_and_name() {
    matrix(
        |name, port, ca| python_https(Place::Here, "127.0.0.1", port, ca, name, "/api/v1/health"),
        "CERTIFICATE_VERIFY_FAILED",
    );
}

#[test]
fn mbedtls_2_verifies_by_address_through_the_dns_san_and_by_name() {
    let Some(client) =
        mbedtls_client("mbedtls_2_verifies_by_address_through_the_dns_san_and_by_name")
    else {
        return;
    };
    matrix(
        |name, port, ca| {
            mbedtls_https(
                &client,
                Place::Here,
                "127.0.0.1",
                port,
                ca,
                name,
                "/api/v1/health",
            )
        },
        "certificate verification failed",
    );
}

#[test]
fn netns_an_address_added_while_serving_is_in_the_reissued_certificate_under_the_same_ca() {
    let test = "an_address_added_while_serving_is_in_the_reissued_certificate_under_the_same_ca";
    let Some(lan) = netns::lan(test) else { return };
    let mbedtls = mbedtls_client(test);
    let (a, b) = (Place::In(&lan, &lan.a), Place::In(&lan, &lan.b));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(a, "0.0.0.0:0", dir.path(), &[]);
    let ca = server.ca_file();
    let ca_pem = std::fs::read(&ca).unwrap();
    let before = tls_info(a, server.port);
    let first = names(&before);
    for n in [format!("IP:{}", lan.ip_a), format!("DNS:{}", lan.ip_a)] {
        assert!(first.contains(&n), "{n} missing from {first:?}");
    }
    const NEW: &str = "10.77.0.9";
    assert!(!first.iter().any(|n| n.ends_with(NEW)), "{first:?}");

    netns::ip(&[
        "-n",
        &lan.a,
        "addr",
        "add",
        &format!("{NEW}/24"),
        "dev",
        &lan.dev_a,
    ]);
    // The LAN client reaches the new address over the same link.
    netns::ip(&[
        "-n",
        &lan.b,
        "route",
        "add",
        "10.77.0.0/24",
        "dev",
        &lan.dev_b,
    ]);
    let want = [format!("IP:{NEW}"), format!("DNS:{NEW}")];
    // The server looks every 10 s (tls::REFRESH_EVERY); a generous bound for a loaded machine.
    let after = wait_for(
        "the re-issued certificate to name 10.77.0.9",
        Duration::from_secs(60),
        || {
            let info = tls_info(a, server.port);
            let n = names(&info);
            want.iter().all(|w| n.contains(w)).then_some(info)
        },
    );
    assert_eq!(after["ca_sha256"], before["ca_sha256"], "the CA stays");
    assert_eq!(after["ca_sha256"], server.printed_ca.as_deref().unwrap());
    assert_eq!(std::fs::read(&ca).unwrap(), ca_pem, "ca.pem unchanged");
    let still = names(&after);
    for n in &first {
        assert!(still.contains(n), "{n} dropped: {still:?}");
    }

    // The next handshakes present it: by the new address as the name, from the server's own
    // namespace and from the LAN.
    for place in [a, b] {
        let got = curl_https(place, NEW, NEW, server.port, &ca, "/api/v1/health");
        assert_eq!(got.as_deref(), Ok("HTTP/1.1 200 OK"), "curl");
        if let Some(client) = &mbedtls {
            let got = mbedtls_https(client, place, NEW, server.port, &ca, NEW, "/api/v1/health");
            assert_eq!(got.as_deref(), Ok("HTTP/1.1 200 OK"), "mbedTLS");
        }
    }
}

#[test]
fn netns_require_refuses_plain_http_from_the_lan_but_hands_out_the_ca() {
    let test = "require_refuses_plain_http_from_the_lan_but_hands_out_the_ca";
    let Some(lan) = netns::lan(test) else { return };
    let mbedtls = mbedtls_client(test);
    let (a, b) = (Place::In(&lan, &lan.a), Place::In(&lan, &lan.b));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(a, "0.0.0.0:0", dir.path(), &["--tls", "require"]);
    let (ca, port, ip) = (server.ca_file(), server.port, lan.ip_a.as_str());

    let (code, body) = curl_plain(b, ip, port, "/api/v1/devices");
    assert_eq!(code, 426, "{body}");
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "tls_required", "{body}");

    let (code, body) = curl_plain(b, ip, port, "/api/v1/tls");
    assert_eq!(code, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["mode"], "require");
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert_eq!(
        curl_plain(b, ip, port, "/api/v1/tls/ca.pem"),
        (200, pem.clone())
    );

    let got = curl_https(b, ip, ip, port, &ca, "/api/v1/devices");
    assert_eq!(got.as_deref(), Ok("HTTP/1.1 200 OK"), "HTTPS from the LAN");
    let got = python_https(b, ip, port, &ca, ip, "/api/v1/devices");
    assert_eq!(got.as_deref(), Ok("HTTP/1.1 200 OK"), "Python from the LAN");
    if let Some(client) = &mbedtls {
        let got = mbedtls_https(client, b, ip, port, &ca, ip, "/api/v1/health");
        assert_eq!(
            got.as_deref(),
            Ok("HTTP/1.1 200 OK"),
            "mbedTLS from the LAN"
        );
    }

    let (code, body) = curl_plain(a, "127.0.0.1", port, "/api/v1/devices");
    assert_eq!(code, 200, "plain HTTP from loopback: {body}");
}

#[tokio::test]
async fn off_serves_plain_http_only() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Server::start(Place::Here, "127.0.0.1:0", dir.path(), &["--tls", "off"]);
    assert_eq!(server.printed_ca, None);
    // Any CA: there is no handshake to verify.
    let ca = foreign_ca(other.path());

    let e = curl_https(
        Place::Here,
        "127.0.0.1",
        "localhost",
        server.port,
        &ca,
        "/api/v1/health",
    )
    .expect_err("no HTTPS under --tls off");
    assert!(!e.contains("HTTP/1.1 200"), "{e}");
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let e = rustls_https(addr, &ca, "localhost", "/api/v1/health")
        .await
        .expect_err("no HTTPS under --tls off");
    assert!(e.contains("rustls handshake"), "{e}");

    let (code, body) = curl_plain(Place::Here, "127.0.0.1", server.port, "/api/v1/health");
    assert_eq!(code, 200, "{body}");
    let info = tls_info(Place::Here, server.port);
    assert_eq!(info["mode"], "off", "{info}");
    assert!(
        info["ca_pem"].is_null() && info["certificate"].is_null(),
        "{info}"
    );
    assert_eq!(info["urls"], serde_json::json!([]), "{info}");
}

/// Why the generated certificate names each address also as `DNS:<address>`: mbedTLS 2.x (an
/// ESP32's TLS) matches the expected name against DNS SANs only. With a certificate (the
/// admin's own, `--tls-cert`) that names `127.0.0.1` as an IP SAN alone, Python verifies it by
/// address and mbedTLS refuses it; this also shows the mbedTLS test above checks that SAN.
#[test]
fn mbedtls_2_ignores_ip_sans_so_an_address_needs_its_dns_san() {
    let test = "mbedtls_2_ignores_ip_sans_so_an_address_needs_its_dns_san";
    let Some(client) = mbedtls_client(test) else {
        return;
    };
    let (dir, keys) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cert, key) = ip_san_only_certificate(keys.path());
    let server = Server::start(
        Place::Here,
        "127.0.0.1:0",
        dir.path(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let info = tls_info(Place::Here, server.port);
    assert_eq!(info["certificate"]["origin"], "user", "{info}");
    assert_eq!(names(&info), ["IP:127.0.0.1"], "{info}");

    let ip = "127.0.0.1";
    let got = python_https(Place::Here, ip, server.port, &ca, ip, "/api/v1/health");
    assert_eq!(
        got.as_deref(),
        Ok("HTTP/1.1 200 OK"),
        "Python honours IP SANs"
    );
    let e = mbedtls_https(
        &client,
        Place::Here,
        ip,
        server.port,
        &ca,
        ip,
        "/api/v1/health",
    )
    .expect_err("mbedTLS 2.x must not match an address against an IP SAN");
    assert!(e.contains("certificate verification failed"), "{e}");
}

/// A CA and a server certificate, made with `openssl`, whose only SAN is `IP:127.0.0.1`.
fn ip_san_only_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=otafleet test CA"],
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=otafleet test server"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}
