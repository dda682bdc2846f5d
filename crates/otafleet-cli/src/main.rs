//! `otafleet`: the headless entry point. `otafleet serve` runs the same server the desktop app
//! embeds; other subcommands are tools for people debugging their bench.

mod discover;

use otafleet_cli::serve;

use clap::{Parser, Subcommand};

/// otafleet: OTA updates and fleet management for ESP32-family devices on a lab LAN.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the OTA server and admin API without a window (and serve the web UI to browsers).
    Serve(Box<serve::ServeArgs>),
    /// List otafleet servers and ESP devices that answer mDNS on this LAN (a debugging aid).
    Discover(discover::DiscoverArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Discover(args) => discover::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otafleet: {}", otafleet_cli::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
