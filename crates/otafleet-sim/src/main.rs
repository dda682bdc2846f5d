//! `otafleet-sim`: parse the command line, find the server over mDNS if asked (`--mdns`, saying
//! which one it uses), run the fleet, print the summary. Exit code 0 only when every device ended
//! as asked (see `Summary::success`), 1 when not, 2 on a usage or setup error (no server found
//! over mDNS included). With `--duration` / `--forever`, SIGINT or SIGTERM ends the run with its
//! summary; a second one quits at once (exit code 130).

use std::process::ExitCode;

use clap::Parser;
use otafleet_sim::config::Lifetime;
use otafleet_sim::run::shutdown_signal;
use otafleet_sim::{Args, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut cfg = match Config::from_args(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("otafleet-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(find) = &cfg.mdns {
        println!(
            "otafleet-sim: looking for an otafleet server over mDNS (_otafleet._tcp{}), up to {:.1} s",
            find.name
                .as_deref()
                .map(|n| format!(" named \"{n}\""))
                .unwrap_or_default(),
            find.timeout.as_secs_f64()
        );
        match cfg.locate_server().await {
            Ok(found) => {
                for line in found.iter().flat_map(|f| f.report()) {
                    println!("otafleet-sim: {line}");
                }
            }
            Err(e) => {
                eprintln!("otafleet-sim: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mix: Vec<String> = cfg
        .protocols
        .iter()
        .map(|(p, w)| format!("{}={w}", p.name()))
        .collect();
    println!(
        "otafleet-sim: {} devices (project {}, chip {}; protocols {}) against {}",
        cfg.devices,
        cfg.project,
        cfg.chip,
        mix.join(","),
        cfg.server
    );
    match cfg.lifetime {
        Lifetime::FirstOutcome => {}
        Lifetime::For(d) => println!(
            "otafleet-sim: the devices live on for {:.1} s (--duration; Ctrl-C ends it early)",
            d.as_secs_f64()
        ),
        Lifetime::Forever => {
            println!("otafleet-sim: the devices live on until Ctrl-C or SIGTERM (--forever)")
        }
    }
    let stop = async {
        shutdown_signal().await;
        eprintln!(
            "otafleet-sim: stopping: every device stops at its next wait, then the summary \
             (Ctrl-C again quits at once)"
        );
        tokio::spawn(async {
            shutdown_signal().await;
            std::process::exit(130);
        });
    };
    match otafleet_sim::run_until(cfg, stop).await {
        Ok(summary) => {
            println!("{summary}");
            if summary.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("otafleet-sim: {e}");
            ExitCode::from(2)
        }
    }
}
