//! A test CA and a server certificate for `localhost` / 127.0.0.1 (rcgen), as the embedded
//! broker's TLS configuration (ring, as otafleet's server uses).

use std::path::PathBuf;
use std::sync::Arc;

/// The test CA's PEM file is written to `dir`.
pub fn tls_config(
    dir: &std::path::Path,
) -> (
    Arc<rustls::ServerConfig>,
    PathBuf,
    rustls::pki_types::CertificateDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "otafleet test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).unwrap();

    let cafile = dir.join("ca.pem");
    std::fs::write(&cafile, ca_cert.pem()).unwrap();

    // ring, as otafleet's server uses (deprecated only for lacking post-quantum key exchange,
    // which no ESP32 client offers).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .unwrap();
    (Arc::new(config), cafile, ca_cert.der().clone())
}
