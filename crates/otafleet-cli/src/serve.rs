//! `otafleet serve`: open the data directory, bind, print the listening line(s), serve until
//! SIGINT or SIGTERM, then shut down cleanly (mDNS goodbyes first, running requests finish, the
//! database closes).
//!
//! The desktop shell (`src-tauri`) runs the very same server in-process, so the settings, the
//! data-directory and admin-token rules live here once: [`ServeArgs`] (flags and env vars),
//! [`prepare`] (open the data directory, start the folder watcher, bind: the port is known at
//! once), [`start_mdns`] (advertise and browse, unless `--no-mdns`) and [`serve_prepared`] (run
//! until a shutdown future resolves).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use otafleet_core::{Fleet, Settings};
use otafleet_server::AppState;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on. Devices on the LAN must reach it, so the default listens on
    /// every interface. Use 127.0.0.1:0 for a private server on a free port.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        default_value = "0.0.0.0:8470",
        env = "OTAFLEET_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Where the database, firmware blobs and the generated admin token live. Default: the
    /// platform's data directory + otafleet (e.g. ~/.local/share/otafleet).
    #[arg(long, value_name = "DIR", env = "OTAFLEET_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Admin API token (Bearer). When not given, one is generated at first start and kept in
    /// DATA_DIR/admin-token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "OTAFLEET_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Do not advertise the server or browse for devices over mDNS (required on machines where
    /// multicast must not leave the host).
    #[arg(long, env = "OTAFLEET_NO_MDNS", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_mdns: bool,

    /// mDNS instance name the server is advertised under (`<NAME>._otafleet._tcp.local`).
    /// Default: this machine's host name.
    #[arg(long, value_name = "NAME", env = "OTAFLEET_MDNS_NAME")]
    pub mdns_name: Option<String>,

    /// Keep firmware images in an S3-compatible bucket instead of DATA_DIR/blobs:
    /// s3://BUCKET?endpoint=http://HOST:PORT&region=REGION (endpoint and region optional: AWS,
    /// region from AWS_REGION or us-east-1). Credentials from AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). Uploads are stored with their SHA-256 for
    /// the store to check; devices still download from this server, out of a local cache in
    /// DATA_DIR/cache (docs/storage.md).
    #[arg(long, value_name = "URL", env = "OTAFLEET_BLOB_URL", value_parser = parse_blob_url)]
    pub blob_url: Option<String>,

    /// Keep the fleet's state in this PostgreSQL database (`postgres://user@host:port/db`)
    /// instead of DATA_DIR/otafleet.db; several instances may share it (docs/deployment.md).
    /// The schema is created or brought up to date at start.
    #[arg(long, value_name = "URL", env = "OTAFLEET_DATABASE_URL", value_parser = parse_database_url)]
    pub database_url: Option<String>,

    /// With --database-url: what this instance runs besides serving. Exactly one instance of a
    /// cluster should be `primary`: it alone advertises and browses mDNS, watches folders
    /// (--watch), runs the MQTT broker and bridge, and sends notifications. A `worker` serves
    /// devices, the API and the UI only. Default with --database-url: worker.
    #[arg(
        long,
        value_name = "primary|worker",
        env = "OTAFLEET_CLUSTER_ROLE",
        requires = "database_url",
        value_enum
    )]
    pub cluster_role: Option<ClusterRole>,

    /// A load balancer's network (CIDR, e.g. 10.0.0.5/32; repeat for several): requests whose
    /// connection comes from it are recorded with the client address its X-Forwarded-For or
    /// Forwarded header names. Those headers are ignored from every other peer.
    #[arg(long = "trusted-proxy", value_name = "CIDR", env = "OTAFLEET_TRUSTED_PROXY",
          value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// People sign in through this OpenID Connect provider (its issuer URL, e.g.
    /// https://accounts.google.com, or a Keycloak realm's URL); who may is the Team page.
    /// Without it, only tokens open the UI and API, as before.
    #[arg(
        long,
        value_name = "URL",
        env = "OTAFLEET_OIDC_ISSUER",
        requires = "oidc_client_id"
    )]
    pub oidc_issuer: Option<String>,
    /// The client id otafleet is registered under at the provider.
    #[arg(
        long,
        value_name = "ID",
        env = "OTAFLEET_OIDC_CLIENT_ID",
        requires = "oidc_issuer"
    )]
    pub oidc_client_id: Option<String>,
    /// The client secret (better given in the environment than on the command line).
    #[arg(
        long,
        value_name = "SECRET",
        env = "OTAFLEET_OIDC_CLIENT_SECRET",
        requires = "oidc_issuer",
        hide_env_values = true
    )]
    pub oidc_client_secret: Option<String>,
    /// What the sign-in button names: "Sign in with <LABEL>".
    #[arg(
        long,
        value_name = "LABEL",
        env = "OTAFLEET_OIDC_LABEL",
        default_value = "your organisation"
    )]
    pub oidc_label: String,
    /// The redirect URI registered at the provider; by default the address the browser used,
    /// <scheme>://<host>/api/v1/auth/oidc/callback.
    #[arg(
        long,
        value_name = "URL",
        env = "OTAFLEET_OIDC_REDIRECT_URL",
        requires = "oidc_issuer"
    )]
    pub oidc_redirect_url: Option<String>,
    /// People sign in with GitHub: the client id of a GitHub OAuth app whose callback URL is
    /// <scheme>://<host>/api/v1/auth/github/callback. Who signed in is the account's primary
    /// verified e-mail; who may is the Team page.
    #[arg(
        long,
        value_name = "ID",
        env = "OTAFLEET_GITHUB_CLIENT_ID",
        requires = "github_client_secret"
    )]
    pub github_client_id: Option<String>,
    /// The OAuth app's client secret (better given in the environment).
    #[arg(
        long,
        value_name = "SECRET",
        env = "OTAFLEET_GITHUB_CLIENT_SECRET",
        requires = "github_client_id",
        hide_env_values = true
    )]
    pub github_client_secret: Option<String>,
    /// GitHub's address: a GitHub Enterprise Server's instead of github.com.
    #[arg(
        long,
        value_name = "URL",
        env = "OTAFLEET_GITHUB_URL",
        default_value = "https://github.com"
    )]
    pub github_url: String,
    /// GitHub's API: a GitHub Enterprise Server's is <its address>/api/v3.
    #[arg(
        long,
        value_name = "URL",
        env = "OTAFLEET_GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,
    /// The callback URL registered with the OAuth app; by default the address the browser used.
    #[arg(
        long,
        value_name = "URL",
        env = "OTAFLEET_GITHUB_REDIRECT_URL",
        requires = "github_client_id"
    )]
    pub github_redirect_url: Option<String>,
    /// Members may also sign in with a password an admin sets on the Team page (argon2id;
    /// 5 wrong ones lock an address for 15 minutes).
    #[arg(long, env = "OTAFLEET_LOCAL_ACCOUNTS")]
    pub local_accounts: bool,

    /// With --blob-url: the most the local cache of images (DATA_DIR/cache) may hold, in MiB;
    /// least recently used images are deleted beyond it (an image being sent finishes).
    #[arg(long, value_name = "MIB", default_value_t = otafleet_core::blobs::DEFAULT_CACHE_BYTES >> 20,
          env = "OTAFLEET_BLOB_CACHE_MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub blob_cache_mb: u64,

    /// With --blob-url: an object in the bucket that no library image refers to (a deleted
    /// image, an upload killed before its entry was written) is deleted once it was last
    /// modified longer ago than this many seconds. It must exceed the longest upload and the
    /// clock difference between the instances and the store.
    #[arg(long, value_name = "SECONDS", default_value_t = otafleet_core::blobs::DEFAULT_GRACE.as_secs(),
          env = "OTAFLEET_BLOB_GC_GRACE")]
    pub blob_gc_grace: u64,

    /// Largest firmware image accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = otafleet_core::settings::DEFAULT_MAX_IMAGE_SIZE)]
    pub max_image_size: u64,

    // Its help states the offline rule from the core's one definition (`checkin_interval_help`).
    #[arg(long, value_name = "SECONDS", default_value_t = otafleet_core::settings::DEFAULT_CHECKIN_INTERVAL_S,
          value_parser = clap::value_parser!(u32).range(1..=86400), help = checkin_interval_help())]
    pub checkin_interval: u32,

    /// Watch a build output folder (repeatable): every new or rewritten .bin in it is imported
    /// once completely written. The folder is remembered in the data directory.
    #[arg(long, value_name = "DIR")]
    pub watch: Vec<PathBuf>,

    /// Deploy images imported from the --watch folders to every device of their project and chip.
    #[arg(long, requires = "watch")]
    pub watch_deploy: bool,

    /// Shared secret of devices built for the older "ESP32 OTA Update Server" (their
    /// OTA_UPDATE_KEY). Turns on GET /api/firmware for them; their token scheme is forgeable, so
    /// it stays off unless set, and the UI marks devices that use it.
    #[arg(
        long,
        value_name = "SECRET",
        env = "OTAFLEET_LEGACY_DEVICE_SECRET",
        hide_env_values = true
    )]
    pub legacy_device_secret: Option<String>,

    /// A certificate authority (PEM file) trusted for notifications besides the Mozilla roots
    /// (repeatable): the private CA that signed an SMTP relay's or a webhook's certificate.
    #[arg(long = "notify-ca", value_name = "PEM_FILE")]
    pub notify_ca: Vec<PathBuf>,

    /// Directory of the built web UI (`npm --prefix ui run build` writes `ui/dist`), served at
    /// `/`. Default: the `ui/dist` of the source tree this binary was built from, when it exists.
    /// Without a UI, `/` shows a short page that links the API docs.
    #[arg(long, value_name = "DIR", env = "OTAFLEET_UI_DIR")]
    pub ui_dir: Option<PathBuf>,

    /// A host name devices or browsers use to reach this server (repeatable). Requests are
    /// answered only when their Host header is an IP address, localhost, this machine's host
    /// name (or <host>.local), the mDNS name (.local), or a name given here; others get 421
    /// (a guard against DNS rebinding). Requests without a Host header (HTTP/1.0) are answered.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,

    /// Most connections open at once. When full, the oldest idle connection is closed to make
    /// room; when every connection is busy, new ones get 503 at once. Default: the open-files
    /// limit (raised to its hard limit at start) minus 256 kept for the database and images, at
    /// most 16384.
    #[arg(long, value_name = "N", env = "OTAFLEET_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Seconds a connection may take to send a complete request head, counted from accept and
    /// again after each response (so also how long an idle keep-alive connection is kept).
    /// Downloads and the event stream in progress are never cut by it.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, env = "OTAFLEET_HEADER_TIMEOUT",
          value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub header_timeout: u32,

    /// HTTPS on the same port as HTTP (a connection's first byte tells which it speaks): `auto`
    /// serves both, so stock updaters that cannot do TLS keep working; `require` refuses plain
    /// HTTP (426) except from this machine; `off` serves plain HTTP only. The certificate is made
    /// by a local CA kept in DATA_DIR/tls (its SHA-256 fingerprint is in the log, the UI, and the
    /// mDNS record) and issued again by itself when this machine's addresses change.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "auto",
        env = "OTAFLEET_TLS"
    )]
    pub tls: otafleet_server::tls::Mode,

    /// A name the HTTPS certificate must carry besides this machine's addresses, its host name
    /// and <host>.local (repeatable): a DNS name devices use for this server, or an address
    /// behind a NAT. Also answered as an --allowed-host.
    #[arg(long = "tls-name", value_name = "NAME")]
    pub tls_names: Vec<String>,

    /// Your own certificate chain (PEM, the server's certificate first) to serve instead of the
    /// generated one; needs --tls-key. Nothing is generated then, and there is no CA to show.
    #[arg(
        long,
        value_name = "PEM_FILE",
        requires = "tls_key",
        env = "OTAFLEET_TLS_CERT"
    )]
    pub tls_cert: Option<PathBuf>,

    /// An extra HTTPS listener on the --listen address, served like the main port: ESP Admin SDK
    /// devices always use port 443 (their httpHost has no port). Default 443 while HTTPS is on;
    /// `0` picks a free port; `off` opens none. If the port cannot be bound (below 1024 as
    /// non-root, or taken), the reason and how to allow it are logged and the main port serves.
    #[arg(long, value_name = "PORT|off", env = "OTAFLEET_HTTPS_PORT", value_parser = parse_https_port)]
    pub https_port: Option<HttpsPort>,

    /// MQTT for devices that speak it (ESP Admin SDK devices; docs/mqtt.md): `embedded` runs a
    /// broker inside otafleet on --mqtt-port (TLS with otafleet's certificate while HTTPS is
    /// on; each device logs in with its own id and key and may only use its own topics); a URL
    /// (`mqtts://otafleet@broker.lan:8883`, password in OTAFLEET_MQTT_PASSWORD) uses your
    /// broker instead; `off` runs none.
    #[arg(long, value_name = "embedded|off|URL", default_value = "embedded", env = "OTAFLEET_MQTT", value_parser = crate::mqtt::parse_mqtt_mode)]
    pub mqtt: crate::mqtt::MqttMode,

    /// The embedded broker's port, on the --listen address. If it cannot be bound, the reason is
    /// logged and otafleet serves without MQTT.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 8883,
        env = "OTAFLEET_MQTT_PORT"
    )]
    pub mqtt_port: u16,

    /// The CA (PEM) that signed your broker's certificate (with an mqtts:// --mqtt); it is also
    /// the `mqttCert` of the credentials.h otafleet writes. Default: the system's trusted roots.
    #[arg(long, value_name = "PEM_FILE", env = "OTAFLEET_MQTT_CA")]
    pub mqtt_ca: Option<PathBuf>,

    /// The broker URI devices are told (with a URL --mqtt): default that URL without its user
    /// name, for when devices reach your broker by another name than otafleet does. On a
    /// cluster's worker (which runs no MQTT), the primary's embedded broker as devices reach it
    /// (`mqtts://primary.lan:8883`, with the primary's CA as --mqtt-ca).
    #[arg(long, value_name = "URI", env = "OTAFLEET_MQTT_DEVICE_URI")]
    pub mqtt_device_uri: Option<String>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        value_name = "PEM_FILE",
        requires = "tls_cert",
        env = "OTAFLEET_TLS_KEY"
    )]
    pub tls_key: Option<PathBuf>,
}

/// The help of `--checkin-interval`: the offline rule as the server applies it
/// (`otafleet_core::settings::offline_after_s_for`, also `offline_after_s` in
/// `GET /api/v1/settings`), with its figure at the default interval.
fn checkin_interval_help() -> String {
    use otafleet_core::settings::{
        offline_after_s_for, DEFAULT_CHECKIN_INTERVAL_S, OFFLINE_SLACK_S,
    };
    format!(
        "Default check-in interval handed to native devices, in seconds: in effect until the admin \
         sets one in Settings (PATCH /api/v1/settings), which is kept in the data directory and wins \
         over this flag until it is reset. A device not seen for 3 intervals + {OFFLINE_SLACK_S} s is \
         shown offline ({} s at the default interval of {DEFAULT_CHECKIN_INTERVAL_S} s) unless the \
         admin set an offline threshold",
        offline_after_s_for(DEFAULT_CHECKIN_INTERVAL_S)
    )
}

/// `ui/dist` in the source tree this binary was compiled from (a developer's checkout): good
/// enough for `cargo run -- serve`; packaged installs pass `--ui-dir`.
fn default_ui_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/dist");
    dir.join("index.html").is_file().then_some(dir)
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "otafleet")
        .map(|d| d.data_dir().to_path_buf())
        .context("no home directory to put the data in; pass --data-dir")
}

/// The admin token: given, or read from / written to DATA_DIR/admin-token (mode 0600).
fn admin_token(given: Option<String>, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(t) = given.filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_string());
    }
    let path = data_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            return Ok(existing.trim().to_string());
        }
    }
    let token: String = {
        let bytes: [u8; 24] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let tmp = data_dir.join("admin-token.tmp");
    {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        writeln!(f, "{token}")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    tracing::info!(path = %path.display(), "generated an admin token");
    Ok(token)
}

/// `--https-port`: a port, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpsPort {
    Off,
    Port(u16),
}

/// `--database-url`: only PostgreSQL URLs (SQLite is the data directory's own file).
fn parse_database_url(s: &str) -> Result<String, String> {
    if s.is_empty() || s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_string())
    } else {
        Err(
            "expected postgres://user@host:port/database (without it, the data directory's \
             SQLite file is used)"
                .into(),
        )
    }
}

/// `--blob-url`: checked when the command line is read, so a typo fails at once with the reason.
/// What an instance of a cluster runs besides serving (`--cluster-role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterRole {
    /// mDNS, watch folders, MQTT, notifications: the one instance that owns them.
    Primary,
    /// Serves devices, the API and the UI only.
    Worker,
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not a network (CIDR such as 10.0.0.0/24) or an address"))
}

fn parse_blob_url(s: &str) -> Result<String, String> {
    otafleet_core::blobs::S3Location::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn parse_https_port(s: &str) -> Result<HttpsPort, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(HttpsPort::Off);
    }
    s.parse::<u16>()
        .map(HttpsPort::Port)
        .map_err(|_| format!("'{s}' is not a port: use a number (0 for any free port) or off"))
}

/// Bind the extra HTTPS listener (`--https-port`), or say why not and how to allow it.
fn bind_extra(listen: SocketAddr, port: u16) -> Option<std::net::TcpListener> {
    let addr = SocketAddr::new(listen.ip(), port);
    match bind(addr) {
        Ok(l) => Some(l),
        Err(e) => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "<path of the otafleet binary>".into());
            let how = if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "allow it with one of: sudo setcap 'cap_net_bind_service=+ep' {exe}  |  \
                     sudo sysctl net.ipv4.ip_unprivileged_port_start={port}  |  \
                     sudo iptables -t nat -A PREROUTING -p tcp --dport {port} -j REDIRECT --to-ports {main} \
                     (nft: nft add rule ip nat prerouting tcp dport {port} redirect to :{main}); \
                     or pass --https-port off",
                    main = listen.port()
                )
            } else {
                "free the port or pass --https-port off".to_string()
            };
            tracing::warn!(%addr, error = %e, "cannot listen for HTTPS on {addr} (ESP Admin devices need port 443): {how}; serving on the main port only");
            eprintln!("otafleet: cannot listen on {addr}: {e}; {how}");
            None
        }
    }
}

/// Everything `serve` opens before it answers requests. The listener is a bound
/// `std::net::TcpListener` (non-blocking), so a caller outside an async context (the desktop
/// shell's `setup`) knows the port at once and can hand the listener to any tokio runtime.
pub struct Prepared {
    pub data_dir: PathBuf,
    pub admin_token: String,
    pub fleet: Fleet,
    pub listener: std::net::TcpListener,
    pub addr: SocketAddr,
    /// False when `--no-mdns` / `OTAFLEET_NO_MDNS` asked for no multicast at all.
    pub mdns: bool,
    /// The instance name to advertise (`--mdns-name`), default the host name.
    pub mdns_name: Option<String>,
    /// The built web UI served at `/`, if any.
    pub ui_dir: Option<PathBuf>,
    /// `--allowed-host` names.
    pub allowed_hosts: Vec<String>,
    /// Header-read timeout and connection cap.
    pub limits: otafleet_server::conn::ConnLimits,
    /// HTTPS on the same port; `None` when off (or, under `auto`, when it could not be set up).
    pub tls: Option<std::sync::Arc<otafleet_server::tls::Tls>>,
    /// The extra HTTPS listener (`--https-port`, 443 by default) and its address, when bound.
    pub extra: Option<(std::net::TcpListener, SocketAddr)>,
    /// The MQTT side (`--mqtt`), when on.
    pub mqtt: Option<crate::mqtt::Mqtt>,
    /// `--trusted-proxy`: load balancers whose forwarded headers name the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `--oidc-*`: sign-in through an OpenID Connect provider.
    pub oidc: Option<std::sync::Arc<otafleet_server::oidc::Oidc>>,
    /// `--github-*`: sign-in with GitHub.
    pub github: Option<std::sync::Arc<otafleet_server::github::GitHub>>,
    /// `--local-accounts`.
    pub local_accounts: bool,
}

/// Open (create) the data directory, settle the admin token, open the fleet, start watching the
/// watch folders and bind the listener; first raise the open-files soft limit to the hard limit.
/// Must run inside a tokio runtime.
pub async fn prepare(mut args: ServeArgs) -> anyhow::Result<Prepared> {
    match otafleet_server::conn::raise_open_files_limit() {
        Ok((before, after, hard)) if before != after => {
            tracing::info!(before, after, hard, "raised the open-files limit")
        }
        Ok((_, after, hard)) => tracing::info!(soft = after, hard, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
    // Checked before anything is opened: a typo in the issuer should stop the start, not the
    // first person's sign-in.
    let oidc = match (args.oidc_issuer.take(), args.oidc_client_id.take()) {
        (Some(issuer), Some(client_id)) => {
            let o = otafleet_server::oidc::Oidc::new(otafleet_server::oidc::OidcConfig {
                issuer: issuer.clone(),
                client_id,
                client_secret: args.oidc_client_secret.take(),
                label: args.oidc_label.clone(),
                redirect_url: args.oidc_redirect_url.take(),
            })
            .map_err(anyhow::Error::msg)?;
            tracing::info!(%issuer, "sign-in through OpenID Connect on");
            Some(std::sync::Arc::new(o))
        }
        _ => None,
    };
    let github = match (
        args.github_client_id.take(),
        args.github_client_secret.take(),
    ) {
        (Some(client_id), Some(client_secret)) => {
            let g = otafleet_server::github::GitHub::new(otafleet_server::github::GitHubConfig {
                client_id,
                client_secret,
                url: args.github_url.clone(),
                api_url: args.github_api_url.clone(),
                redirect_url: args.github_redirect_url.take(),
            })
            .map_err(anyhow::Error::msg)?;
            tracing::info!(url = %args.github_url, "sign-in with GitHub on");
            Some(std::sync::Arc::new(g))
        }
        _ => None,
    };
    let limits = otafleet_server::conn::ConnLimits {
        header_timeout: std::time::Duration::from_secs(args.header_timeout.into()),
        max_connections: args
            .max_connections
            .map_or_else(otafleet_server::conn::default_max_connections, |n| {
                n as usize
            }),
    };
    tracing::info!(
        max_connections = limits.max_connections,
        header_timeout_s = args.header_timeout,
        "connection limits"
    );
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let token = admin_token(args.admin_token.take(), &data_dir)?;
    // One instance of a cluster owns what must not run twice (docs/deployment.md).
    let clustered = args.database_url.as_deref().is_some_and(|u| !u.is_empty());
    let role = args.cluster_role.unwrap_or(if clustered {
        ClusterRole::Worker
    } else {
        ClusterRole::Primary
    });
    let owner = role == ClusterRole::Primary;
    if clustered {
        tracing::info!(
            role = ?role,
            "cluster role: {}",
            if owner {
                "this instance runs mDNS, watch folders, MQTT and notifications"
            } else {
                "serving only; mDNS, watch folders, MQTT and notifications run on the primary (--cluster-role primary)"
            }
        );
    }
    if !owner && !args.watch.is_empty() {
        anyhow::bail!(
            "--watch needs --cluster-role primary: watch folders run on the primary instance only"
        );
    }
    let mut settings = Settings::new(&data_dir);
    settings.send_notifications = owner;
    settings.max_image_size = args.max_image_size;
    settings.checkin_interval_s = args.checkin_interval;
    settings.blob_url = args.blob_url.filter(|u| !u.is_empty());
    settings.database_url = args.database_url.filter(|u| !u.is_empty());
    settings.blob_cache_bytes = args.blob_cache_mb.saturating_mul(1024 * 1024);
    settings.blob_grace = std::time::Duration::from_secs(args.blob_gc_grace);
    settings.legacy_device_secret = args.legacy_device_secret.filter(|s| !s.is_empty());
    if settings.legacy_device_secret.is_some() {
        tracing::warn!(
            "legacy device API on: its shared-secret tokens can be forged from one sniffed request"
        );
    }
    for file in &args.notify_ca {
        let pem = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read --notify-ca {}", file.display()))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            anyhow::bail!(
                "--notify-ca {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                file.display()
            );
        }
        settings.notify_extra_roots.push(pem);
    }
    let mut allowed_hosts = args.allowed_hosts;
    allowed_hosts.extend(args.tls_names.iter().cloned());
    let fleet = Fleet::open(settings)
        .await
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
    tracing::info!(blobs = %fleet.blobs().describe(), "firmware images are kept here");
    let organisations = fleet.open_organisations().await?;
    if organisations > 0 {
        tracing::info!(organisations, "opened the other organisations");
    }
    // After the data directory's lock: a second server on the same directory must never touch
    // its `tls/` folder (it could issue the certificate the first one serves anew).
    let tls = start_tls(
        args.tls,
        &data_dir,
        &args.tls_names,
        args.tls_cert,
        args.tls_key,
    )
    .await?;
    for dir in &args.watch {
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        fleet
            .watch_folder_add(otafleet_core::watch_folders::NewWatchFolder {
                path: abs.display().to_string(),
                auto_deploy: args.watch_deploy,
            })
            .await
            .with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    if owner {
        otafleet_watch::spawn(fleet.clone(), otafleet_watch::WatchOptions::default())
            .context("cannot start the folder watcher (inotify)")?;
        // Presence recorded by an earlier run says nothing about now; the browser re-learns it,
        // and MQTT presence comes back from the broker (or not at all with --mqtt off). A
        // worker's start must not wipe what the primary knows.
        fleet.mdns_forget_presence().await?;
        fleet.mqtt_presence_reset().await?;
    }
    let listener =
        bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let extra_port = match (args.https_port, &tls) {
        (_, None) | (Some(HttpsPort::Off), _) => None,
        (Some(HttpsPort::Port(p)), Some(_)) => Some(p),
        (None, Some(_)) => Some(443),
    };
    let extra = extra_port
        .filter(|p| *p != addr.port())
        .and_then(|p| bind_extra(addr, p))
        .and_then(|l| {
            let a = l.local_addr().ok()?;
            Some((l, a))
        });
    let mqtt_args = crate::mqtt::MqttArgs {
        mode: args.mqtt,
        port: args.mqtt_port,
        ca: args.mqtt_ca,
        device_uri: args.mqtt_device_uri,
    };
    let mqtt = if owner {
        crate::mqtt::start(mqtt_args, &fleet, addr, tls.as_deref()).await?
    } else {
        crate::mqtt::for_worker(mqtt_args)?
    };
    tracing::info!(data_dir = %data_dir.display(), "admin token: {}", data_dir.join("admin-token").display());
    let ui_dir = args.ui_dir.or_else(default_ui_dir);
    match &ui_dir {
        Some(d) if d.join("index.html").is_file() => {
            tracing::info!(dir = %d.display(), "serving the web UI at /")
        }
        Some(d) => tracing::warn!(dir = %d.display(), "no index.html in the UI directory; / shows a placeholder (build the UI: npm --prefix ui ci && npm --prefix ui run build)"),
        None => tracing::info!("no built web UI found; / shows a placeholder (build it: npm --prefix ui ci && npm --prefix ui run build)"),
    }
    Ok(Prepared {
        data_dir,
        admin_token: token,
        fleet,
        listener,
        addr,
        mdns: !args.no_mdns && owner,
        mdns_name: args.mdns_name,
        ui_dir,
        allowed_hosts,
        limits,
        tls,
        extra,
        mqtt,
        trusted_proxies: args.trusted_proxies,
        oidc,
        github,
        local_accounts: args.local_accounts,
    })
}

/// Load or make the HTTPS certificate (blocking work, off the runtime's threads). Under `auto` a
/// failure (a full disk at first start, an unreadable `tls/` folder) is logged and the server
/// serves plain HTTP alone rather than not at all; under `require`, or with the admin's own
/// certificate, it stops the start with the reason.
async fn start_tls(
    mode: otafleet_server::tls::Mode,
    data_dir: &Path,
    names: &[String],
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> anyhow::Result<Option<std::sync::Arc<otafleet_server::tls::Tls>>> {
    use otafleet_server::tls::{Mode, Source, Tls};
    let user = cert.is_some();
    let source = match (cert, key) {
        (Some(cert), Some(key)) => Source::User { cert, key },
        _ => Source::Generated {
            data_dir: data_dir.to_path_buf(),
            extra: names.to_vec(),
        },
    };
    match tokio::task::spawn_blocking(move || Tls::start(mode, source)).await? {
        Ok(tls) => Ok(tls),
        Err(e) if mode == Mode::Auto && !user => {
            tracing::error!(error = %e, "HTTPS could not be set up: serving plain HTTP only (fix the cause and restart, or pass --tls off to silence this)");
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot set up HTTPS")),
    }
}

/// Bind with a deep accept queue (1024, not std's 128): under a flood of connections a device's
/// SYN then waits in the queue for the accept loop, which refuses or evicts quickly, instead of
/// being dropped and retried a second later.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(1024)?.into_std()?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Advertise `_otafleet._tcp` on the bound address and browse for devices, unless mDNS is off.
/// Both the CLI and the desktop shell call this once after [`prepare`], inside a tokio runtime;
/// keep the handle as long as the server runs and [`MdnsHandle::shutdown`] it to send goodbyes.
pub fn start_mdns(prepared: &Prepared) -> MdnsHandle {
    if !prepared.mdns {
        tracing::info!("mDNS off (--no-mdns): devices need the server's address configured");
        return MdnsHandle(None);
    }
    match otafleet_mdns::Lan::start_for_server(
        &prepared.fleet,
        prepared.addr,
        prepared.mdns_name.clone(),
        prepared
            .tls
            .as_ref()
            .map(|t| otafleet_mdns::advertise::TlsTxt {
                ca_sha256: t.material().ca_fingerprint().map(|f| f.hex()),
            }),
    ) {
        Ok(lan) => MdnsHandle(Some(lan)),
        Err(e) => {
            tracing::warn!(error = %e, "mDNS could not start: serving without discovery");
            MdnsHandle(None)
        }
    }
}

/// Keeps mDNS advertising and browsing alive while held (see [`start_mdns`]).
pub struct MdnsHandle(Option<otafleet_mdns::Lan>);

impl MdnsHandle {
    /// The full name we advertise under, if we advertise.
    pub fn advertised_name(&self) -> Option<String> {
        self.0
            .as_ref()
            .and_then(|l| l.advertised_name())
            .map(str::to_owned)
    }

    /// Unregister (goodbye records) and stop the daemon.
    pub async fn shutdown(self) {
        if let Some(lan) = self.0 {
            lan.shutdown().await;
        }
    }
}

/// Serve a [`Prepared`] server until `shutdown` resolves; must run inside a tokio runtime.
pub async fn serve_prepared(
    prepared: Prepared,
    mdns_name: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(prepared.listener)?;
    // The `.local` name mDNS advertises is the host name made DNS-safe (`Lab_PC` → `lab-pc`),
    // which the server's own `<host>.local` need not match.
    let mut allowed_hosts = prepared.allowed_hosts;
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    allowed_hosts.push(format!(
        "{}.local",
        otafleet_mdns::advertise::host_label(&host)
    ));
    let info = otafleet_server::ServerInfo {
        listen: Some(prepared.addr),
        mdns_name,
        ui_dir: prepared.ui_dir,
        allowed_hosts,
        tls: prepared.tls,
        mqtt: prepared.mqtt.as_ref().map(|m| m.endpoint.clone()),
        trusted_proxies: prepared.trusted_proxies,
        oidc: prepared.oidc,
        github: prepared.github,
        local_accounts: prepared.local_accounts,
    };
    let fleet = prepared.fleet.clone();
    let state = AppState::new(prepared.fleet, prepared.admin_token).with_info(info);
    let mut listeners = vec![listener];
    if let Some((extra, _)) = prepared.extra {
        listeners.push(tokio::net::TcpListener::from_std(extra)?);
    }
    // MQTT stops first, while the database is open: the bridge is gone before the last wills
    // arrive, so presence is forgotten here (the next start rebuilds it from the broker).
    let mqtt = prepared.mqtt;
    let shutdown = async move {
        shutdown.await;
        // A worker's MQTT only names the primary's broker: presence is the primary's.
        if let Some(m) = mqtt.filter(|m| m.runs_bridge()) {
            m.stop().await;
            if let Err(e) = fleet.mqtt_presence_reset().await {
                tracing::warn!(error = %e, "could not forget MQTT presence at shutdown");
            }
        }
    };
    otafleet_server::serve_many(listeners, state, prepared.limits, shutdown).await?;
    Ok(())
}

/// `otafleet serve`: prepare, print the listening line (and the HTTPS one), serve until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let prepared = prepare(args).await?;
    // Listen for the signals before saying we listen: a SIGTERM right after the line must stop
    // the server cleanly, not kill it.
    let signals = shutdown_signal();
    {
        // One write for all lines: a reader that takes the first line and closes the pipe (tests
        // do) must not make the next line fail, and a stdout nobody reads any more must never
        // stop the server — the lines are also in the log.
        let mut lines = format!("otafleet listening on http://{}\n", prepared.addr);
        if let Some(tls) = &prepared.tls {
            lines += &format!(
                "otafleet serving HTTPS on the same port: https://{}",
                prepared.addr
            );
            if let Some(fp) = tls.material().ca_fingerprint() {
                lines += &format!(" (CA SHA-256 {})", fp.colon());
            }
            lines.push('\n');
        }
        if let Some((_, addr)) = &prepared.extra {
            lines +=
                &format!("otafleet serving HTTPS for ESP Admin devices also on: https://{addr}\n");
        }
        if let Some(addr) = prepared.mqtt.as_ref().and_then(|m| m.broker_addr) {
            let scheme = if prepared.tls.is_some() {
                "mqtts"
            } else {
                "mqtt"
            };
            lines += &format!("otafleet MQTT broker on: {scheme}://{addr}\n");
        }
        tracing::info!(addr = %prepared.addr, https = prepared.tls.is_some(), "listening");
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(lines.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write the listening lines to stdout; serving anyway");
        }
    }
    let mdns = start_mdns(&prepared);
    let name = mdns.advertised_name();
    // Goodbyes go out as soon as the signal arrives, before requests drain.
    let shutdown = async move {
        signals.await;
        mdns.shutdown().await;
    };
    serve_prepared(prepared, name, shutdown).await?;
    tracing::info!("otafleet stopped");
    Ok(())
}

/// Installs handlers for SIGINT and SIGTERM at once (the handlers exist from this call on) and
/// returns a future that resolves on either: the headless server's way to stop.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    async move {
        let int = async {
            match int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = int => tracing::info!("SIGINT: shutting down"),
            _ = term => tracing::info!("SIGTERM: shutting down"),
        }
    }
}

/// Ctrl-C, where there are no Unix signals.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    }
}
