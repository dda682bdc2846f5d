//! `otafleet discover`: what is on the LAN right now, for a person debugging their network —
//! otafleet servers (`_otafleet._tcp`) and devices (`_arduino._tcp`, `_esphomelib._tcp`) with
//! instance, host, addresses, port and TXT. A table by default, `--json` for scripts.
//!
//! It joins the mDNS multicast group on every interface for the length of the scan.

use std::io::Write;
use std::time::Duration;

use clap::Args;

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// How long to listen for answers, in seconds. Devices answer within a second or two; a
    /// device that announces only every few minutes needs longer.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,

    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DiscoverArgs) -> anyhow::Result<()> {
    let seen = otafleet_mdns::scan::scan(Duration::from_secs(args.seconds)).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &seen)?;
        writeln!(out)?;
    } else if seen.is_empty() {
        writeln!(
            out,
            "nothing found in {} s (no otafleet server, ArduinoOTA or ESPHome device answered)",
            args.seconds
        )?;
    } else {
        write!(out, "{}", otafleet_mdns::scan::table(&seen))?;
    }
    out.flush()?;
    Ok(())
}
