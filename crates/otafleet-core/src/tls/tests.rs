use super::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::RootCertStore;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn names(addresses: &[&str]) -> Names {
    Names {
        addresses: addresses.iter().map(|a| ip(a)).collect(),
        host: Some("Workshop".into()),
        extra: vec!["ota.example.lan".into()],
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Verifies the server chain against the CA for `name` (a DNS name or an IP literal).
fn verify(material: &Material, name: &str) -> std::result::Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(material.ca_der().unwrap().clone()).unwrap();
    // Deprecated only for lacking post-quantum key exchange, which verifying a chain never uses;
    // ring is the crypto backend already in the lock (no aws-lc-rs).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let chain = material.server_chain();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
}

#[test]
fn san_list_names_addresses_twice_host_local_and_extras() {
    let sans = san_list(
        &[
            ip("192.168.1.50"),
            ip("fe80::1"),
            ip("0.0.0.0"),
            ip("::ffff:10.0.0.7"),
        ],
        Some("Workshop."),
        &[
            "OTA.example.lan".into(),
            "10.1.2.3".into(),
            "*.fleet.lan".into(),
        ],
    )
    .unwrap();
    for want in [
        San::Ip(ip("192.168.1.50")),
        San::Dns("192.168.1.50".into()),
        San::Ip(ip("fe80::1")),
        San::Dns("fe80::1".into()),
        San::Ip(ip("10.0.0.7")),
        San::Dns("10.0.0.7".into()),
        San::Ip(ip("10.1.2.3")),
        San::Dns("10.1.2.3".into()),
        San::Dns("workshop".into()),
        San::Dns("workshop.local".into()),
        San::Dns("localhost".into()),
        San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        San::Dns("ota.example.lan".into()),
        San::Dns("*.fleet.lan".into()),
    ] {
        assert!(sans.contains(&want), "{want} missing from {sans:?}");
    }
    assert!(!sans.iter().any(|s| s.to_string().contains("0.0.0.0")));
    assert_eq!(sans.len(), 15, "{sans:?}");
    let mut sorted = sans.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, sans);
}

#[test]
fn san_list_takes_a_local_host_name_once_and_skips_an_invalid_one() {
    let sans = san_list(&[], Some("box.local"), &[]).unwrap();
    assert!(sans.contains(&San::Dns("box".into())));
    assert!(sans.contains(&San::Dns("box.local".into())));
    assert!(!sans.contains(&San::Dns("box.local.local".into())));

    let sans = san_list(&[], Some("my_pc (2)"), &[]).unwrap();
    assert_eq!(sans.len(), 3, "only localhost and loopback: {sans:?}");
}

#[test]
fn san_list_refuses_an_extra_name_a_certificate_cannot_carry() {
    for bad in [
        "bad name",
        "-x.lan",
        "a..b",
        "ümlaut.lan",
        "*",
        "*.lan",
        &"a".repeat(64),
    ] {
        let e = san_list(&[], None, &[bad.to_string()]).unwrap_err();
        assert_eq!(e.code(), "tls_name", "{bad}");
        assert!(e.to_string().contains("host name"), "{e}");
    }
}

#[test]
fn first_use_creates_the_ca_and_server_files_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let m = Material::load_or_create(dir.path(), &names(&["192.168.1.50"])).unwrap();
    assert_eq!(m.origin(), Origin::Created);
    let tls = dir.path().join(DIR);
    for file in [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY] {
        assert!(tls.join(file).is_file(), "{file}");
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&tls.join(CA_KEY)), 0o600);
        assert_eq!(mode(&tls.join(SERVER_KEY)), 0o600);
        assert_eq!(mode(&tls), 0o700);
    }
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&tls).unwrap().count(), 4);

    let ca_pem = m.ca_pem().unwrap();
    assert_eq!(ca_pem, fs::read_to_string(tls.join(CA_CERT)).unwrap());
    let fp = m.ca_fingerprint().unwrap();
    let der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    assert_eq!(fp.hex(), hex::encode(Sha256::digest(&der)));
    assert_eq!(fp.hex().len(), 64);
    assert_eq!(fp.colon().len(), 95);
    assert_eq!(fp.colon().replace(':', "").to_lowercase(), fp.hex());

    let ca = parse(&der).unwrap();
    assert!(ca.is_ca());
    let cn = ca.subject().to_string();
    assert!(cn.contains("otafleet LAN CA on workshop"), "{cn}");
    let years = (ca.validity().not_after.to_datetime() - OffsetDateTime::now_utc()).whole_days();
    assert!(years > 19 * 365, "{years}");

    let server = parse(&m.server_chain()[0]).unwrap();
    let days = (m.not_after() - OffsetDateTime::now_utc()).whole_days();
    assert!((360..=366).contains(&days), "{days}");
    assert_eq!(sans_of(&server), m.sans());
    assert!(m.sans().contains(&San::Dns("192.168.1.50".into())));
    assert!(m.sans().contains(&San::Ip(ip("192.168.1.50"))));
    keys_match(m.server_chain(), &m.server_key()).unwrap();
    assert!(!format!("{m:?}").contains("PRIVATE"));
}

#[test]
fn second_use_loads_the_same_ca_and_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let n = names(&["192.168.1.50", "fd00::5"]);
    let first = Material::load_or_create(dir.path(), &n).unwrap();
    let second = Material::load_or_create(dir.path(), &n).unwrap();
    assert_eq!(second.origin(), Origin::Loaded);
    assert_eq!(second.ca_fingerprint(), first.ca_fingerprint());
    assert_eq!(second.ca_pem(), first.ca_pem());
    assert_eq!(second.server_chain(), first.server_chain());
    assert_eq!(
        second.server_key().secret_der(),
        first.server_key().secret_der()
    );
    assert_eq!(second.sans(), first.sans());
}

#[test]
fn changed_addresses_reissue_the_server_certificate_and_keep_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let first = Material::load_or_create(dir.path(), &names(&["192.168.1.50"])).unwrap();
    let second = Material::load_or_create(dir.path(), &names(&["192.168.1.77"])).unwrap();
    assert_eq!(second.origin(), Origin::Reissued);
    assert_eq!(second.ca_fingerprint(), first.ca_fingerprint());
    assert_ne!(second.server_chain(), first.server_chain());
    let sans = sans_of(&parse(&second.server_chain()[0]).unwrap());
    assert!(sans.contains(&San::Ip(ip("192.168.1.77"))));
    assert!(sans.contains(&San::Dns("192.168.1.77".into())));
    assert!(!sans.contains(&San::Ip(ip("192.168.1.50"))));
    assert!(!sans.contains(&San::Dns("192.168.1.50".into())));
    // The server key is kept; only the certificate changed.
    assert_eq!(
        second.server_key().secret_der(),
        first.server_key().secret_der()
    );
    // And what was written is what is loaded next.
    let third = Material::load_or_create(dir.path(), &names(&["192.168.1.77"])).unwrap();
    assert_eq!(third.origin(), Origin::Loaded);
    assert_eq!(third.server_chain(), second.server_chain());
}

#[test]
fn a_server_certificate_near_its_end_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let n = names(&["192.168.1.50"]);
    let now = OffsetDateTime::now_utc();
    let first = Material::load_or_create_at(dir.path(), &n, now).unwrap();
    let later = Material::load_or_create_at(dir.path(), &n, now + Duration::days(300)).unwrap();
    assert_eq!(later.origin(), Origin::Loaded);
    let near = now + SERVER_VALIDITY - RENEW_BEFORE + Duration::days(1);
    let renewed = Material::load_or_create_at(dir.path(), &n, near).unwrap();
    assert_eq!(renewed.origin(), Origin::Reissued);
    assert_eq!(renewed.ca_fingerprint(), first.ca_fingerprint());
    assert!(renewed.not_after() > first.not_after() + Duration::days(300));
}

#[test]
fn the_server_certificate_verifies_against_the_ca_by_name_and_by_address() {
    let dir = tempfile::tempdir().unwrap();
    let m = Material::load_or_create(dir.path(), &names(&["192.168.1.50", "fd00::5"])).unwrap();
    for name in [
        "workshop.local",
        "workshop",
        "localhost",
        "ota.example.lan",
        "192.168.1.50",
        "fd00::5",
        "127.0.0.1",
    ] {
        verify(&m, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(verify(&m, "elsewhere.lan").is_err());
    assert!(verify(&m, "192.168.1.51").is_err());
}

#[test]
fn a_broken_server_certificate_is_reissued_and_a_broken_ca_refused() {
    let dir = tempfile::tempdir().unwrap();
    let n = names(&["192.168.1.50"]);
    let first = Material::load_or_create(dir.path(), &n).unwrap();
    let tls = dir.path().join(DIR);
    fs::write(tls.join(SERVER_CERT), "garbage").unwrap();
    let again = Material::load_or_create(dir.path(), &n).unwrap();
    assert_eq!(again.origin(), Origin::Reissued);
    assert_eq!(again.ca_fingerprint(), first.ca_fingerprint());
    verify(&again, "192.168.1.50").unwrap();

    fs::write(tls.join(CA_KEY), "garbage").unwrap();
    let e = Material::load_or_create(dir.path(), &n).unwrap_err();
    assert_eq!(e.code(), "tls_stored_invalid");
    assert!(e.to_string().contains("ca.key"), "{e}");
    // Nothing was replaced.
    assert_eq!(fs::read_to_string(tls.join(CA_KEY)).unwrap(), "garbage");
}

#[test]
fn a_ca_key_without_its_certificate_makes_a_new_ca_and_the_reverse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let n = names(&["192.168.1.50"]);
    let first = Material::load_or_create(dir.path(), &n).unwrap();
    let tls = dir.path().join(DIR);

    // A crash while the CA was made leaves the key (written first) without its certificate.
    fs::remove_file(tls.join(CA_CERT)).unwrap();
    let again = Material::load_or_create(dir.path(), &n).unwrap();
    assert_eq!(again.origin(), Origin::Created);
    assert_ne!(again.ca_fingerprint(), first.ca_fingerprint());
    verify(&again, "workshop.local").unwrap();

    fs::remove_file(tls.join(CA_KEY)).unwrap();
    let e = Material::load_or_create(dir.path(), &n).unwrap_err();
    assert_eq!(e.code(), "tls_ca_key_missing");
    assert!(e.to_string().contains("ca.key"), "{e}");
}

/// A CA and a server certificate made the way an admin's own tools would.
fn user_pair(dir: &Path) -> (PathBuf, PathBuf, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["ota.corp.example".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.pem())
}

#[test]
fn a_user_supplied_pair_is_used_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, leaf_pem) = user_pair(dir.path());
    let m = Material::load_user(&cert, &key).unwrap();
    assert_eq!(m.origin(), Origin::User);
    assert!(m.ca_pem().is_none());
    assert!(m.ca_fingerprint().is_none());
    assert_eq!(m.server_chain().len(), 2);
    assert_eq!(
        m.server_chain()[0],
        CertificateDer::from_pem_slice(leaf_pem.as_bytes()).unwrap()
    );
    assert_eq!(m.sans(), [San::Dns("ota.corp.example".into())]);
    let key_der = PrivateKeyDer::from_pem_file(&key).unwrap();
    assert_eq!(m.server_key().secret_der(), key_der.secret_der());
    // Nothing was generated or written.
    assert!(!dir.path().join(DIR).exists());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn a_mismatched_or_unreadable_user_pair_is_refused_with_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key, _) = user_pair(dir.path());
    let other = dir.path().join("other.key");
    fs::write(&other, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let e = Material::load_user(&cert, &other).unwrap_err();
    assert_eq!(e.code(), "tls_key_mismatch");
    assert!(e.to_string().contains("does not match"), "{e}");

    let junk = dir.path().join("junk.pem");
    fs::write(&junk, "not a certificate").unwrap();
    let e = Material::load_user(&junk, &other).unwrap_err();
    assert_eq!(e.code(), "tls_cert_invalid");
    assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");

    let e = Material::load_user(&cert, &junk).unwrap_err();
    assert_eq!(e.code(), "tls_key_invalid");
    assert!(e.to_string().contains("PRIVATE KEY"), "{e}");

    let e = Material::load_user(&cert, &dir.path().join("missing.key")).unwrap_err();
    assert_eq!(e.code(), "tls_key_invalid");
}
