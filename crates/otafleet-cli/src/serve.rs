//! `otafleet serve`: open the data directory, bind, print the one listening line, serve until
//! SIGINT or SIGTERM, then shut down cleanly (running requests finish, the database closes).
//!
//! The desktop shell (`src-tauri`) runs the very same server in-process, so the settings, the
//! data-directory and admin-token rules live here once: [`ServeArgs`] (flags and env vars),
//! [`prepare`] (open the data directory and bind, synchronously known port) and
//! [`serve_prepared`] (run until a shutdown future resolves). [`start_mdns`] is the one hook
//! where mDNS advertising starts for both front ends.

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
    /// multicast must not leave the host). The env var takes 1/0, true/false, yes/no, on/off.
    #[arg(long, env = "OTAFLEET_NO_MDNS", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_mdns: bool,

    /// Largest firmware image accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = otafleet_core::settings::DEFAULT_MAX_IMAGE_SIZE)]
    pub max_image_size: u64,

    /// Check-in interval handed to native devices, in seconds; a device missing three is offline.
    #[arg(long, value_name = "SECONDS", default_value_t = otafleet_core::settings::DEFAULT_CHECKIN_INTERVAL_S,
          value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub checkin_interval: u32,
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
}

/// Open (create) the data directory, settle the admin token, open the fleet and bind the listener.
pub async fn prepare(args: ServeArgs) -> anyhow::Result<Prepared> {
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let token = admin_token(args.admin_token, &data_dir)?;
    let mut settings = Settings::new(&data_dir);
    settings.max_image_size = args.max_image_size;
    settings.checkin_interval_s = args.checkin_interval;
    let fleet = Fleet::open(settings)
        .await
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %data_dir.display(), "admin token: {}", data_dir.join("admin-token").display());
    Ok(Prepared {
        data_dir,
        admin_token: token,
        fleet,
        listener,
        addr,
        mdns: !args.no_mdns,
    })
}

/// The mDNS hook: advertise `_otafleet._tcp` on `addr` and browse for devices. Both the CLI and the
/// desktop shell call this, once, after [`prepare`]; the returned value must live as long as the
/// server (dropping it will stop advertising once mDNS exists).
pub fn start_mdns(prepared: &Prepared) -> MdnsHandle {
    if prepared.mdns {
        tracing::warn!("mDNS advertising is not built yet; devices need the server's URL (pass --no-mdns to silence this)");
    }
    MdnsHandle(())
}

/// Keeps mDNS advertising alive while held (see [`start_mdns`]).
pub struct MdnsHandle(());

/// Serve a [`Prepared`] server until `shutdown` resolves; must run inside a tokio runtime.
pub async fn serve_prepared(
    prepared: Prepared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::from_std(prepared.listener)?;
    otafleet_server::serve(
        listener,
        AppState::new(prepared.fleet, prepared.admin_token),
        shutdown,
    )
    .await?;
    Ok(())
}

/// `otafleet serve`: prepare, print the one listening line, serve until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let prepared = prepare(args).await?;
    let _mdns = start_mdns(&prepared);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "otafleet listening on http://{}", prepared.addr)?;
        out.flush()?;
    }
    serve_prepared(prepared, shutdown_signal()).await?;
    tracing::info!("otafleet stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (the headless server's way to stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}
