//! What a simulation run is asked to do: the command line ([`Args`], clap) and the checked form
//! the runner uses ([`Config`]). Checking happens here, once, so that a protocol the server cannot
//! speak yet or an impossible percentage is refused before any device starts.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use otafleet_image::Chip;

use crate::error::SimError;

/// A virtual fleet of ESP32-family devices against an otafleet server.
#[derive(Parser, Debug, Clone)]
#[command(name = "otafleet-sim", version, about, args_override_self = true)]
pub struct Args {
    /// Base URL of the otafleet server, e.g. http://127.0.0.1:8470.
    #[arg(long, value_name = "URL", env = "OTAFLEET_SIM_SERVER")]
    pub server: Option<String>,

    /// Find the server over mDNS (`_otafleet._tcp`) instead of --server.
    #[arg(long, conflicts_with = "server")]
    pub mdns: bool,

    /// Number of virtual devices (at most 65536: the last two MAC bytes number them).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub devices: u32,

    /// Protocol mix as NAME=WEIGHT pairs: native, arduino, esp8266, esp32fota, legacy.
    #[arg(long, default_value = "native=100", value_name = "MIX")]
    pub protocols: String,

    /// Chip of every device (esp32, esp32s2, esp32s3, esp32c3, esp32c6, ...).
    #[arg(long, default_value = "esp32")]
    pub chip: String,

    /// Project of every device. Default: sim-<run id>, so runs do not meet each other's
    /// deployments on a shared server.
    #[arg(long)]
    pub project: Option<String>,

    /// Size of the synthetic images (running and new), in bytes.
    #[arg(long, default_value_t = 128 * 1024, value_parser = clap::value_parser!(u32).range(4096..=16 * 1024 * 1024))]
    pub image_size: u32,

    /// Admin token: upload a new image for the devices' project and deploy it.
    #[arg(long, env = "OTAFLEET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Do not upload or deploy; wait for a deployment made elsewhere (the UI).
    #[arg(long)]
    pub wait_for_deployment: bool,

    /// Seconds between check-ins.
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,

    /// Jitter on every wait, in percent of it (spreads devices out like a real fleet).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub jitter: u8,

    /// Milliseconds a device takes to reboot after flashing.
    #[arg(long, default_value_t = 500)]
    pub reboot_ms: u64,

    /// Percent of downloads cut halfway (the device resumes them with a Range request).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub cut_downloads: u8,

    /// Percent of devices whose boot of the new image fails (they stay on the old one).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub failed_boots: u8,

    /// Progress is reported every this many percent of a download.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub progress_step: u8,

    /// Most HTTP requests in flight at once (the shared client's connection bound).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connections: u32,

    /// Give up on devices that have not finished after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,

    /// Seed for MACs, the run id and which devices get injected failures.
    #[arg(long)]
    pub seed: Option<u64>,

    /// No progress bar (also off when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// A device protocol the simulator knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Native,
    Arduino,
    Esp8266,
    Esp32Fota,
    Legacy,
}

impl Protocol {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "native" => Protocol::Native,
            "arduino" => Protocol::Arduino,
            "esp8266" => Protocol::Esp8266,
            "esp32fota" => Protocol::Esp32Fota,
            "legacy" => Protocol::Legacy,
            _ => return None,
        })
    }
}

/// The checked run description.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: String,
    pub devices: u32,
    pub protocols: BTreeMap<Protocol, u32>,
    pub chip: Chip,
    pub project: String,
    pub image_size: usize,
    pub admin_token: Option<String>,
    pub wait_for_deployment: bool,
    pub interval: Duration,
    pub jitter: f64,
    pub reboot: Duration,
    pub cut_downloads: u8,
    pub failed_boots: u8,
    pub progress_step: u8,
    pub connections: u32,
    pub timeout: Duration,
    pub seed: u64,
    pub show_progress: bool,
}

impl Config {
    pub fn from_args(a: Args) -> Result<Self, SimError> {
        if a.mdns {
            return Err(SimError::MdnsUnavailable);
        }
        let server = a
            .server
            .ok_or(SimError::NoServer)?
            .trim_end_matches('/')
            .to_string();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(SimError::Usage(format!(
                "--server must be an http:// or https:// URL, not '{server}'"
            )));
        }
        let protocols = parse_mix(&a.protocols)?;
        let chip = parse_chip(&a.chip)?;
        if a.admin_token.is_none() && !a.wait_for_deployment {
            return Err(SimError::Usage(
                "give --admin-token (the simulator uploads and deploys a new image) or \
                 --wait-for-deployment (you deploy one in the UI)"
                    .into(),
            ));
        }
        if !(a.interval.is_finite() && a.interval > 0.0) {
            return Err(SimError::Usage(
                "--interval must be a positive number of seconds".into(),
            ));
        }
        let seed = a.seed.unwrap_or_else(rand::random);
        Ok(Config {
            server,
            devices: a.devices,
            protocols,
            chip,
            project: a
                .project
                .unwrap_or_else(|| format!("sim-{:04x}", seed & 0xffff)),
            image_size: a.image_size as usize,
            admin_token: a.admin_token,
            wait_for_deployment: a.wait_for_deployment,
            interval: Duration::from_secs_f64(a.interval),
            jitter: f64::from(a.jitter) / 100.0,
            reboot: Duration::from_millis(a.reboot_ms),
            cut_downloads: a.cut_downloads,
            failed_boots: a.failed_boots,
            progress_step: a.progress_step,
            connections: a.connections,
            timeout: Duration::from_secs(a.timeout),
            seed,
            show_progress: !a.no_progress,
        })
    }
}

fn parse_chip(name: &str) -> Result<Chip, SimError> {
    let all = [
        Chip::Esp32,
        Chip::Esp32s2,
        Chip::Esp32s3,
        Chip::Esp32c3,
        Chip::Esp32c2,
        Chip::Esp32c6,
        Chip::Esp32h2,
    ];
    all.into_iter()
        .find(|c| c.to_string().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<String> = all.iter().map(|c| c.to_string()).collect();
            SimError::Usage(format!(
                "--chip '{name}' is not one of {}",
                names.join(", ")
            ))
        })
}

/// `native=60,arduino=10` → weights. Native and Arduino `HTTPUpdate` (ESP32) are simulated; the
/// other stock clients are refused by name until the simulator speaks them, rather than faked.
pub fn parse_mix(mix: &str) -> Result<BTreeMap<Protocol, u32>, SimError> {
    let mut out = BTreeMap::new();
    for part in mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let proto = Protocol::parse(name.trim()).ok_or_else(|| {
            SimError::Usage(format!(
                "unknown protocol '{name}' in --protocols (known: native, arduino, esp8266, esp32fota, legacy)"
            ))
        })?;
        let weight: u32 = weight.trim().parse().map_err(|_| {
            SimError::Usage(format!(
                "weight '{weight}' for {name} is not a whole number"
            ))
        })?;
        if weight > 0 && !matches!(proto, Protocol::Native | Protocol::Arduino) {
            return Err(SimError::ProtocolUnavailable(name.trim().to_string()));
        }
        if weight > 0 {
            out.insert(proto, weight);
        }
    }
    if out.is_empty() {
        return Err(SimError::Usage(
            "--protocols names no protocol with a weight above 0".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_accepts_native_and_refuses_unbuilt_protocols_by_name() {
        assert_eq!(parse_mix("native=60").unwrap().len(), 1);
        assert!(
            parse_mix("native=60,esp8266=0").is_ok(),
            "a zero weight asks for nothing"
        );
        assert_eq!(parse_mix("native=60,arduino=10").unwrap().len(), 2);
        let err = parse_mix("native=60,esp32fota=10").unwrap_err().to_string();
        assert!(
            err.contains("esp32fota"),
            "the refusal names the protocol: {err}"
        );
        assert!(parse_mix("telnet=1").is_err());
    }
}
