//! `otafleet serve`: open the data directory, bind, print the one listening line, serve until
//! SIGINT or SIGTERM, then shut down cleanly (running requests finish, the database closes).

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
    #[arg(long)]
    pub no_mdns: bool,

    /// Largest firmware image accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = otafleet_core::settings::DEFAULT_MAX_IMAGE_SIZE)]
    pub max_image_size: u64,

    /// Check-in interval handed to native devices, in seconds; a device missing three is offline.
    #[arg(long, value_name = "SECONDS", default_value_t = otafleet_core::settings::DEFAULT_CHECKIN_INTERVAL_S,
          value_parser = clap::value_parser!(u32).range(1..=86400))]
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

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
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
    settings.legacy_device_secret = args.legacy_device_secret.filter(|s| !s.is_empty());
    if settings.legacy_device_secret.is_some() {
        tracing::warn!(
            "legacy device API on: its shared-secret tokens can be forged from one sniffed request"
        );
    }
    let fleet = Fleet::open(settings)
        .await
        .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
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
    otafleet_watch::spawn(fleet.clone(), otafleet_watch::WatchOptions::default())
        .context("cannot start the folder watcher (inotify)")?;
    if !args.no_mdns {
        tracing::warn!("mDNS advertising is not built yet; devices need the server's URL (pass --no-mdns to silence this)");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(data_dir = %data_dir.display(), "admin token: {}", data_dir.join("admin-token").display());
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "otafleet listening on http://{addr}")?;
        out.flush()?;
    }
    otafleet_server::serve(listener, AppState::new(fleet, token), shutdown_signal()).await?;
    tracing::info!("otafleet stopped");
    Ok(())
}

async fn shutdown_signal() {
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
