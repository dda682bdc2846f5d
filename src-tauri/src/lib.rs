//! otafleet's desktop window: a thin Tauri shell around the same server `otafleet serve` runs.
//!
//! At start the shell opens the data directory and binds the listener through
//! [`otafleet_cli::serve::prepare`] (the CLI's own code: same flags, env vars, data directory and
//! admin token), serves it on Tauri's tokio runtime, and opens the window with
//! `window.__OTAFLEET__ = {baseUrl, token}` injected, so the UI talks HTTP + server-sent events
//! to the embedded server exactly as it would from a browser. What only a desktop can do stays
//! here, as adapters over the core: native file drops ([`drop`]), the "Add firmware…" dialog and
//! the import command ([`commands`], [`import`]), desktop notifications and every Tauri event
//! name ([`events`]). No decision about firmware or devices is made in this crate.
//!
//! Without a usable display the binary says so on stderr and runs headless: the same server,
//! no window ([`run`]).

pub mod commands;
pub mod drop;
pub mod error;
pub mod events;
pub mod import;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use otafleet_cli::serve::{self, MdnsHandle, ServeArgs};
use otafleet_core::Fleet;
use serde::Serialize;
use tauri::{Builder, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

pub use error::DesktopError;
pub use import::ImportResult;

/// The desktop app's command line: every `otafleet serve` flag and env var, plus `--headless`.
#[derive(Parser, Debug)]
#[command(name = "otafleet-desktop", version, about)]
pub struct DesktopArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Run the server without a window, like `otafleet serve` (also chosen when there is no display).
    #[arg(long)]
    pub headless: bool,
    /// Added by WebKitWebDriver when it launches the app for a WebDriver session.
    #[arg(long, hide = true)]
    pub automation: bool,
}

/// How the webview reaches the embedded server; injected as `window.__OTAFLEET__`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub base_url: String,
    pub token: String,
}

/// Managed state: the core handle and how to reach (and stop) the embedded server.
pub struct Desktop {
    pub fleet: Fleet,
    pub connection: Connection,
    /// Sending (or dropping) this stops the server: it stops accepting, lets running requests
    /// finish and closes the database. Taken once, at app exit.
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    /// The server task; awaited at exit so the database is closed before the process ends.
    server: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// The mDNS advertisement; withdrawn (goodbye packets) at exit, as `otafleet serve` does, so
    /// devices stop trying a server that is gone instead of waiting out the record's TTL.
    mdns: Mutex<Option<MdnsHandle>>,
}

impl Desktop {
    /// Stop the embedded server and wait (bounded) for it to close the database, then withdraw
    /// the mDNS advertisement.
    pub fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.server.lock().unwrap().take() {
            tauri::async_runtime::block_on(async {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
            });
        }
        if let Some(mdns) = self.mdns.lock().unwrap().take() {
            tauri::async_runtime::block_on(async {
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(3), mdns.shutdown()).await;
            });
        }
    }
}

/// The binary's entry point.
pub fn run() -> ExitCode {
    init_tracing();
    let args = DesktopArgs::parse();
    if let Some(reason) = no_display_reason(args.headless) {
        eprintln!(
            "otafleet-desktop: {reason}; running headless (the same server as `otafleet serve`)"
        );
        return run_headless(args.serve);
    }
    let builder = tauri::Builder::default()
        // First, so that a second launch hands over to the first before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init());
    let app =
        match run_app(builder, args.serve).build(tauri::generate_context!("../tauri.conf.json")) {
            Ok(app) => app,
            Err(e) => {
                eprintln!("otafleet-desktop: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    // SIGINT/SIGTERM close the window the normal way, so the server stops and the database closes.
    let handle = app.handle().clone();
    tauri::async_runtime::spawn(async move {
        serve::shutdown_signal().await;
        handle.exit(0);
    });
    app.run(|app, event| {
        if let tauri::RunEvent::Exit = event {
            if let Some(desktop) = app.try_state::<Desktop>() {
                desktop.shutdown();
            }
        }
    });
    ExitCode::SUCCESS
}

/// Everything but the plugins, generic over the runtime so tests run it on
/// `tauri::test::mock_builder()`: start the server in `setup`, open the window, route drops,
/// register the commands. (`setup` runs when the event loop starts, not in `build`.)
pub fn run_app<R: Runtime>(builder: Builder<R>, args: ServeArgs) -> Builder<R> {
    builder
        .setup(move |app| {
            // Here and not before the builder: the single-instance plugin must hand a second
            // launch over to the first before this one tries to take the first one's port.
            let desktop = match start_server(args) {
                Ok(desktop) => desktop,
                Err(e) => {
                    // A clean message and exit code instead of tauri's "Failed to setup app" panic.
                    eprintln!("otafleet-desktop: {e:#}");
                    app.handle().exit(1);
                    return Ok(());
                }
            };
            events::forward_core_events(app.handle().clone(), &desktop.fleet);
            let init = format!(
                "window.__OTAFLEET__ = Object.freeze({});",
                serde_json::to_string(&desktop.connection)?
            );
            app.manage(desktop);
            WebviewWindowBuilder::new(app, "main", WebviewUrl::default())
                .title("otafleet")
                .inner_size(1200.0, 800.0)
                .min_inner_size(640.0, 400.0)
                .initialization_script(&init)
                .build()?;
            Ok(())
        })
        .on_window_event(drop::on_window_event)
        .invoke_handler(tauri::generate_handler![
            commands::import_paths,
            commands::pick_firmware,
            commands::connection
        ])
}

/// Prepare the server exactly as `otafleet serve` does and serve it on Tauri's runtime.
fn start_server(args: ServeArgs) -> anyhow::Result<Desktop> {
    // Inside the runtime: the folder watcher and the mDNS browser spawn tasks onto it.
    let (prepared, mdns) = tauri::async_runtime::block_on(async {
        let prepared = serve::prepare(args).await?;
        let mdns = serve::start_mdns(&prepared);
        anyhow::Ok((prepared, mdns))
    })?;
    let mdns_name = mdns.advertised_name();
    let connection = Connection {
        base_url: format!("http://{}", loopback_of(prepared.addr)),
        token: prepared.admin_token.clone(),
    };
    let fleet = prepared.fleet.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tauri::async_runtime::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = serve::serve_prepared(prepared, mdns_name, shutdown).await {
            tracing::error!(error = %e, "the embedded server stopped");
        }
    });
    tracing::info!(url = %connection.base_url, "embedded server listening");
    Ok(Desktop {
        fleet,
        connection,
        stop: Mutex::new(Some(stop)),
        server: Mutex::new(Some(task)),
        mdns: Mutex::new(Some(mdns)),
    })
}

/// The address the webview on this machine should use: loopback when listening on all interfaces.
fn loopback_of(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// Why the window cannot open, if it cannot. Checked before Tauri starts, because tao panics
/// (it does not return an error) when GTK cannot open the display.
fn no_display_reason(forced: bool) -> Option<String> {
    if forced {
        return Some("--headless given".into());
    }
    #[cfg(target_os = "linux")]
    {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Some("no display (neither DISPLAY nor WAYLAND_DISPLAY is set)".into());
        }
        if let Err(e) = gtk::init() {
            return Some(format!("cannot open the display ({e})"));
        }
    }
    None
}

/// The headless fallback: literally `otafleet serve` with the same arguments.
fn run_headless(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("otafleet-desktop: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otafleet-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .try_init();
}
