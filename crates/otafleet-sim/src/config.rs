//! What a simulation run is asked to do: the command line ([`Args`], clap) and the checked form
//! the runner uses ([`Config`]). Checking happens here, once, so that a protocol the server cannot
//! speak yet or an impossible percentage is refused before any device starts.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use otafleet_image::Chip;

use crate::error::SimError;
use crate::images::Family;
use crate::mdns::{Find, Found};

/// A virtual fleet of ESP32-family devices against an otafleet server.
#[derive(Parser, Debug, Clone)]
#[command(name = "otafleet-sim", version, about, args_override_self = true)]
pub struct Args {
    /// Base URL of the otafleet server, e.g. http://127.0.0.1:8470. One of --server and --mdns
    /// is required: the simulator uploads and deploys, so it never picks a server on its own.
    #[arg(long, value_name = "URL", env = "OTAFLEET_SIM_SERVER")]
    pub server: Option<String>,

    /// Find the server over mDNS instead of --server: browse _otafleet._tcp (what `otafleet
    /// serve` advertises unless --no-mdns) for up to --mdns-timeout seconds and use the server's
    /// IPv4 address and SRV port. When several answer: the one --mdns-name names, else the first
    /// by instance name (all are listed). Only when asked: it joins the mDNS multicast group on
    /// every interface.
    #[arg(long, conflicts_with = "server")]
    pub mdns: bool,

    /// With --mdns: the longest wait, in seconds, for a server to answer [default: 10].
    #[arg(long, value_name = "SECS", requires = "mdns")]
    pub mdns_timeout: Option<f64>,

    /// With --mdns: use the server advertised under this instance name (`otafleet serve
    /// --mdns-name`, default its host name; case-insensitive), not the first of several.
    #[arg(long, value_name = "NAME", requires = "mdns")]
    pub mdns_name: Option<String>,

    /// Number of virtual devices (at most 65536: the last two MAC bytes number them).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub devices: u32,

    /// Protocol mix as NAME=WEIGHT pairs: native (otafleet's own protocol), arduino
    /// (Arduino-ESP32 HTTPUpdate), esp8266 (ESP8266httpUpdate, on ESP8266 images of project
    /// <project>-8266), esp32fota (esp32FOTA manifests), legacy ("ESP32 OTA Update Server"
    /// devices; needs --legacy-device-secret), esp-admin (ESP Admin SDK devices: HTTPS and MQTT;
    /// never in the default mix: they need the server's MQTT broker). Default: all five others,
    /// native=40,arduino=15,esp8266=15,esp32fota=15,legacy=15, when --legacy-device-secret is
    /// given, else the other four, native=40,arduino=20,esp8266=20,esp32fota=20. Stock clients
    /// need --admin-token (their running images must be in the library, legacy devices must be
    /// registered, esp-admin devices created by the admin), so without it the default is
    /// native=100.
    #[arg(long, value_name = "MIX")]
    pub protocols: Option<String>,

    /// The shared secret the legacy devices derive their X-Device-Auth token from; the server
    /// must run with the same --legacy-device-secret.
    #[arg(
        long,
        value_name = "SECRET",
        env = "OTAFLEET_LEGACY_DEVICE_SECRET",
        hide_env_values = true
    )]
    pub legacy_device_secret: Option<String>,

    /// Chip of every ESP32-family device (esp32, esp32s2, esp32s3, esp32c3, esp32c6, ...);
    /// esp8266 devices run an ESP8266.
    #[arg(long, default_value = "esp32")]
    pub chip: String,

    /// Project of every ESP32-family device (esp8266 devices run <project>-8266). Default:
    /// sim-<run id>, so runs do not meet each other's deployments on a shared server.
    #[arg(long)]
    pub project: Option<String>,

    /// Size of the synthetic images (running and new), in bytes. The server sees a stock
    /// client's cut download only when the rest of the image does not fit in the sockets'
    /// buffers, which on loopback hold several MB (the summary counts the cuts it took for
    /// complete downloads).
    #[arg(long, default_value_t = 128 * 1024, value_parser = clap::value_parser!(u32).range(4096..=16 * 1024 * 1024))]
    pub image_size: u32,

    /// Each device reads a download at most this many KiB a second (a slow Wi-Fi link), so that
    /// with a large --image-size downloads last long enough to be stopped or aborted midway.
    /// Native, Arduino/ESP8266 and esp-admin devices. Default: as fast as the server sends.
    #[arg(long, value_name = "KIB_PER_S", value_parser = clap::value_parser!(u32).range(1..))]
    pub download_rate: Option<u32>,

    /// Admin token: upload the new images and deploy them to the devices' projects; put the
    /// running images of stock clients in the library and register legacy devices first.
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

    /// Percent of downloads cut halfway, of each protocol's devices, rounded up (native devices
    /// resume them with a Range request; the stock clients cannot resume and start over at their
    /// next check). Not esp-admin devices: what follows the SDK's `failed` report is not
    /// simulated.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub cut_downloads: u8,

    /// Percent of devices whose boot of the new image fails (they stay on the old one, and take
    /// the image again until the server stops offering it), of each protocol's devices, rounded
    /// up. Not esp32fota nor esp-admin devices: they report nothing the server could see a failed
    /// boot by.
    /// Native devices send an `error` report after each failed boot (`success` after an update).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub failed_boots: u8,

    /// With --failed-boots: a device picked fails only its first N boots of an image, then boots
    /// it fine. With N at least the server's attempt limit (3) its first outcome is the failed
    /// boots on record, and (with --duration/--forever) it updates when the image is offered
    /// again later, e.g. after a retry. Default: every boot of every image fails.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub failed_boot_times: Option<u32>,

    /// With --rollout: --failed-boots PCT picks its devices among those the server placed in
    /// wave N of the rollout (read from the rollout once it is made), not among all devices.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub failed_boots_wave: Option<u32>,

    /// Percent of native devices, rounded up, whose new image crash-loops: after booting it they
    /// restart again and again (their uptime starts over every other check-in), while running
    /// it. A staged rollout counts them as failed.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub crash_loop: u8,

    /// Deploy each new image as a staged rollout: a preset (canary, all_at_once, one_at_a_time)
    /// or a plan as JSON ({"waves": [{"by": "count", "count": 10}, …], "soak_s": 5, …}).
    #[arg(long, value_name = "PRESET|JSON")]
    pub rollout: Option<String>,

    /// Devices live on for SECS seconds from the start of the run instead of stopping at their
    /// first outcome: they keep checking in at --interval and take any image the server offers
    /// later (a retry, a rollback, a later release), verify, flash and boot it as at first. Then
    /// the run checks the server's records against what each device runs and exits 0 when
    /// nothing unexpected happened. SIGINT or SIGTERM ends it early, the same way.
    #[arg(long, value_name = "SECS", conflicts_with = "forever")]
    pub duration: Option<f64>,

    /// Like --duration, until SIGINT (Ctrl-C) or SIGTERM; a second Ctrl-C quits at once.
    #[arg(long)]
    pub forever: bool,

    /// Log lines a native device sends per second while someone watches its logs (the server's
    /// check-in answer says `logs: true`), as the reference client's log hook does; it stops when
    /// the server answers `logs: false`. 0: the devices have no log hook.
    #[arg(long, default_value_t = 4.0)]
    pub log_rate: f64,

    /// Progress is reported every this many percent of a download.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub progress_step: u8,

    /// Most HTTP requests in flight at once (the shared client's connection bound).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub connections: u32,

    /// Give up on a device that has not reached its first outcome (updated, or its injected
    /// failed boots on record) after this many seconds, counted as an unexpected failure. Until
    /// then an unreachable server (connection refused or cut, a timeout, a 5xx: a restart) is
    /// ridden out as a real device does: it backs off, from --interval doubling up to 30 s (or
    /// --interval when longer), with jitter, and tries again; a cut download is resumed (native,
    /// Range) or started over (stock clients) at the next check. With --duration or --forever the
    /// clock starts at the device's first offer (it waits for a deployment as long as the run
    /// lasts), and a device given up on goes on checking in until the run ends.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,

    /// Seed for MACs, the run id and which devices get injected failures.
    #[arg(long)]
    pub seed: Option<u64>,

    /// No progress bar (also off when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,

    /// Native devices take commands (esp-admin devices always do, over MQTT): once enrolled, each also long-polls
    /// GET /api/v1/device/commands?wait=25 and answers what it gets — restart: done, then it
    /// reboots (its uptime starts again) and checks in at once; log {"on": bool}: done;
    /// custom: done, the result naming the key; update_abort: done, a download in progress is
    /// stopped and reported failed; config: done (the config fetch is not simulated yet). Off by
    /// default: each long poll holds a connection of its own, outside --connections. Useful
    /// with --duration or --forever.
    #[arg(long)]
    pub commands: bool,

    /// esp-admin devices: milliseconds from the broker's CONNACK to their subscription and
    /// "connected" status (the SDK waits 4 s).
    #[arg(long, value_name = "MS", default_value_t = 4000)]
    pub esp_admin_connect_wait_ms: u64,

    /// esp-admin devices: milliseconds from "disconnected" to the reboot, after an update was
    /// written or a restart command came (the SDK waits 7 s).
    #[arg(long, value_name = "MS", default_value_t = 7000)]
    pub esp_admin_reset_ms: u64,

    /// esp-admin devices: after every boot, report an application error (`{type: "error"}`,
    /// numbered per boot) the way the SDK's `Report::send` does — over HTTP, then the same report
    /// over MQTT. An injected failure of the device's application, not of its update.
    #[arg(long)]
    pub esp_admin_error_report: bool,

    /// esp-admin devices with a broker of your own: once the admin created them, and before any
    /// connects, run `sh -c CMD sh FILE`, where FILE lists each device's `<id> <API key>` on a
    /// line — the step an admin takes to give each device its broker login (e.g.
    /// `mosquitto_passwd -b` for each, then reload Mosquitto). The run stops if CMD fails.
    #[arg(long, value_name = "CMD")]
    pub esp_admin_created_hook: Option<String>,
}

/// Seconds `--mdns` waits for a server when `--mdns-timeout` is not given.
pub const DEFAULT_MDNS_TIMEOUT: f64 = 10.0;

/// A device protocol the simulator knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Native,
    Arduino,
    Esp8266,
    Esp32Fota,
    Legacy,
    /// The ESP Admin SDK: HTTP(S) for settings, reports and the download, MQTT for commands
    /// and update triggers ([`crate::esp_admin`]).
    EspAdmin,
}

impl Protocol {
    /// The five protocols of the default mix (all but esp-admin).
    pub const ALL: [Protocol; 5] = [
        Protocol::Native,
        Protocol::Arduino,
        Protocol::Esp8266,
        Protocol::Esp32Fota,
        Protocol::Legacy,
    ];

    /// Every protocol the simulator speaks.
    pub const EVERY: [Protocol; 6] = [
        Protocol::Native,
        Protocol::Arduino,
        Protocol::Esp8266,
        Protocol::Esp32Fota,
        Protocol::Legacy,
        Protocol::EspAdmin,
    ];

    /// The name in `--protocols`, which is also what the server records as the device's protocol.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Arduino => "arduino",
            Protocol::Esp8266 => "esp8266",
            Protocol::Esp32Fota => "esp32fota",
            Protocol::Legacy => "legacy",
            Protocol::EspAdmin => "esp-admin",
        }
    }

    /// A stock client: it needs its running image in the library (or, legacy, its record).
    pub fn is_stock(self) -> bool {
        !matches!(self, Protocol::Native | Protocol::EspAdmin)
    }

    /// Its devices need the admin first: a stock client's running image in the library, a
    /// legacy device's record, an ESP Admin device's creation.
    pub fn needs_admin(self) -> bool {
        self != Protocol::Native
    }

    /// Can the server tell that a boot of the new image failed? Not for esp32FOTA: it never says
    /// what it runs; nor for the ESP Admin SDK, which reports `succeded` before its reboot and
    /// nothing of what it boots (docs/esp-admin.md).
    pub fn failed_boot_visible(self) -> bool {
        !matches!(self, Protocol::Esp32Fota | Protocol::EspAdmin)
    }

    /// Can the run cut its downloads? Not esp-admin devices' yet: the SDK reports a broken
    /// download `failed`, which closes the attempt, and what the server offers after that is
    /// not simulated.
    pub fn cut_simulated(self) -> bool {
        self != Protocol::EspAdmin
    }

    /// The image line its devices are on.
    pub fn family(self) -> Family {
        match self {
            Protocol::Esp8266 => Family::Esp8266,
            _ => Family::Esp32,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "native" => Protocol::Native,
            "arduino" => Protocol::Arduino,
            "esp8266" => Protocol::Esp8266,
            "esp32fota" => Protocol::Esp32Fota,
            "legacy" => Protocol::Legacy,
            "esp-admin" => Protocol::EspAdmin,
            _ => return None,
        })
    }
}

/// How long the devices live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Each device stops at its first outcome, and the run when every device has one (the
    /// default).
    FirstOutcome,
    /// `--duration`: the devices live on for this long from the start of the run.
    For(Duration),
    /// `--forever`: until SIGINT or SIGTERM (or the future given to [`crate::run::run_until`]).
    Forever,
}

impl Lifetime {
    /// Devices go on checking in after their first outcome.
    pub fn lives_on(self) -> bool {
        self != Lifetime::FirstOutcome
    }
}

/// The checked run description.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the server; empty until [`Config::locate_server`] has found it when `mdns` is
    /// set.
    pub server: String,
    /// `--mdns`: the server is still to be found.
    pub mdns: Option<Find>,
    pub devices: u32,
    pub protocols: BTreeMap<Protocol, u32>,
    pub legacy_device_secret: Option<String>,
    pub chip: Chip,
    pub project: String,
    pub image_size: usize,
    /// `--download-rate`, in bytes a second.
    pub download_rate: Option<u64>,
    pub admin_token: Option<String>,
    pub wait_for_deployment: bool,
    pub interval: Duration,
    pub jitter: f64,
    pub reboot: Duration,
    pub cut_downloads: u8,
    pub failed_boots: u8,
    /// `--failed-boot-times`: a device picked fails only this many boots of an image.
    pub failed_boot_times: Option<u32>,
    /// `--failed-boots-wave`: the failed boots are picked in this wave of the rollout.
    pub failed_boots_wave: Option<u32>,
    /// `--crash-loop`: percent of native devices whose new image crash-loops.
    pub crash_loop: u8,
    /// `--rollout`: what the deployment's body gets besides the image and target:
    /// `{"preset": …}` or `{"plan": …}`.
    pub rollout: Option<serde_json::Value>,
    pub lifetime: Lifetime,
    /// `--log-rate`: lines per second per watched native device (0: none).
    pub log_rate: f64,
    pub progress_step: u8,
    pub connections: u32,
    pub timeout: Duration,
    pub seed: u64,
    pub show_progress: bool,
    /// `--commands`: native devices long-poll for commands and answer them.
    pub commands: bool,
    /// esp-admin: from CONNACK to subscribing (the SDK's 4 s).
    pub esp_admin_connect_wait: Duration,
    /// esp-admin: from "disconnected" to the reboot (the SDK's 7 s).
    pub esp_admin_reset: Duration,
    /// `--esp-admin-error-report`.
    pub esp_admin_error_report: bool,
    /// `--esp-admin-created-hook`.
    pub esp_admin_created_hook: Option<String>,
}

impl Config {
    pub fn from_args(a: Args) -> Result<Self, SimError> {
        let (server, mdns) = if a.mdns {
            let timeout = a.mdns_timeout.unwrap_or(DEFAULT_MDNS_TIMEOUT);
            if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
                return Err(SimError::Usage(
                    "--mdns-timeout must be a number of seconds above 0 and at most 3600".into(),
                ));
            }
            let find = Find {
                timeout: Duration::from_secs_f64(timeout),
                name: a.mdns_name.filter(|n| !n.trim().is_empty()),
            };
            (String::new(), Some(find))
        } else {
            // clap's `requires` gives way to --server's conflict with --mdns: say it here.
            if a.mdns_timeout.is_some() || a.mdns_name.is_some() {
                return Err(SimError::Usage(
                    "--mdns-timeout and --mdns-name go with --mdns, not --server".into(),
                ));
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
            (server, None)
        };
        let chip = parse_chip(&a.chip)?;
        if a.admin_token.is_none() && !a.wait_for_deployment {
            return Err(SimError::Usage(
                "give --admin-token (the simulator uploads and deploys a new image) or \
                 --wait-for-deployment (you deploy one in the UI)"
                    .into(),
            ));
        }
        let secret = a.legacy_device_secret.filter(|s| !s.is_empty());
        let mix = a
            .protocols
            .unwrap_or_else(|| default_mix(a.admin_token.is_some(), secret.is_some()).to_string());
        let protocols = parse_mix(&mix)?;
        if a.admin_token.is_none() {
            if let Some(p) = protocols.keys().find(|p| p.needs_admin()) {
                return Err(SimError::Usage(format!(
                    "{} devices need --admin-token: {}",
                    p.name(),
                    match p {
                        Protocol::Legacy =>
                            "stock clients say only a MAC and a hash or version, \
                            so the simulator puts their running image in the library and \
                            registers them (the legacy API has no auto-enrolment)",
                        Protocol::EspAdmin =>
                            "the admin creates every ESP Admin device \
                            (POST /api/v1/esp-admin/devices) for its id and API key",
                        _ =>
                            "stock clients say only a MAC and a hash or version, so the \
                            simulator puts their running image in the library",
                    }
                )));
            }
        }
        if protocols.contains_key(&Protocol::Legacy) && secret.is_none() {
            return Err(SimError::Usage(
                "legacy devices need --legacy-device-secret SECRET, the secret the server was \
                 started with (otafleet serve --legacy-device-secret SECRET)"
                    .into(),
            ));
        }
        if !(a.log_rate.is_finite() && (0.0..=1000.0).contains(&a.log_rate)) {
            return Err(SimError::Usage(
                "--log-rate must be a number of lines per second from 0 to 1000".into(),
            ));
        }
        if !(a.interval.is_finite() && a.interval > 0.0) {
            return Err(SimError::Usage(
                "--interval must be a positive number of seconds".into(),
            ));
        }
        if a.failed_boot_times.is_some() && a.failed_boots == 0 {
            return Err(SimError::Usage(
                "--failed-boot-times limits the failed boots --failed-boots PCT injects: give both"
                    .into(),
            ));
        }
        let rollout = match a.rollout.as_deref() {
            None => None,
            Some(p @ ("canary" | "all_at_once" | "one_at_a_time")) => {
                Some(serde_json::json!({ "preset": p }))
            }
            Some(json) => {
                let plan: serde_json::Value = serde_json::from_str(json).map_err(|e| {
                    SimError::Usage(format!(
                        "--rollout takes a preset (canary, all_at_once, one_at_a_time) or a plan as JSON: {e}"
                    ))
                })?;
                if !plan.is_object() {
                    return Err(SimError::Usage(
                        "--rollout's plan is a JSON object ({\"waves\": [...], ...})".into(),
                    ));
                }
                Some(serde_json::json!({ "plan": plan }))
            }
        };
        if a.failed_boots_wave.is_some() && (rollout.is_none() || a.failed_boots == 0) {
            return Err(SimError::Usage(
                "--failed-boots-wave picks --failed-boots PCT in a wave of --rollout: give all three"
                    .into(),
            ));
        }
        let lifetime = match (a.duration, a.forever) {
            (Some(d), _) if !(d.is_finite() && d > 0.0 && d <= 1e9) => {
                return Err(SimError::Usage(
                    "--duration must be a positive number of seconds".into(),
                ))
            }
            (Some(d), _) => Lifetime::For(Duration::from_secs_f64(d)),
            (None, true) => Lifetime::Forever,
            (None, false) => Lifetime::FirstOutcome,
        };
        let seed = a.seed.unwrap_or_else(rand::random);
        Ok(Config {
            server,
            mdns,
            devices: a.devices,
            protocols,
            legacy_device_secret: secret,
            chip,
            project: a
                .project
                .unwrap_or_else(|| format!("sim-{:04x}", seed & 0xffff)),
            image_size: a.image_size as usize,
            download_rate: a.download_rate.map(|k| u64::from(k) * 1024),
            admin_token: a.admin_token,
            wait_for_deployment: a.wait_for_deployment,
            interval: Duration::from_secs_f64(a.interval),
            jitter: f64::from(a.jitter) / 100.0,
            reboot: Duration::from_millis(a.reboot_ms),
            cut_downloads: a.cut_downloads,
            failed_boots: a.failed_boots,
            failed_boot_times: a.failed_boot_times,
            failed_boots_wave: a.failed_boots_wave,
            crash_loop: a.crash_loop,
            rollout,
            lifetime,
            log_rate: a.log_rate,
            progress_step: a.progress_step,
            connections: a.connections,
            timeout: Duration::from_secs(a.timeout),
            seed,
            show_progress: !a.no_progress,
            commands: a.commands,
            esp_admin_connect_wait: Duration::from_millis(a.esp_admin_connect_wait_ms),
            esp_admin_reset: Duration::from_millis(a.esp_admin_reset_ms),
            esp_admin_error_report: a.esp_admin_error_report,
            esp_admin_created_hook: a.esp_admin_created_hook,
        })
    }

    /// With `--mdns`: browse for the server and set [`Config::server`] to it; returns what was
    /// found, for the caller to report. Without (or once found) it does nothing.
    pub async fn locate_server(&mut self) -> Result<Option<Found>, SimError> {
        let Some(find) = self.mdns.take() else {
            return Ok(None);
        };
        let found = crate::mdns::find(&find).await?;
        self.server = found.url.clone();
        Ok(Some(found))
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

/// The mix when `--protocols` is not given (documented on [`Args::protocols`]).
pub fn default_mix(admin_token: bool, legacy_secret: bool) -> &'static str {
    match (admin_token, legacy_secret) {
        (false, _) => "native=100",
        (true, true) => "native=40,arduino=15,esp8266=15,esp32fota=15,legacy=15",
        (true, false) => "native=40,arduino=20,esp8266=20,esp32fota=20",
    }
}

/// `native=60,arduino=10` → weights (a bare name weighs 1).
pub fn parse_mix(mix: &str) -> Result<BTreeMap<Protocol, u32>, SimError> {
    let mut out = BTreeMap::new();
    for part in mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
        let proto = Protocol::parse(name.trim()).ok_or_else(|| {
            SimError::Usage(format!(
                "unknown protocol '{name}' in --protocols (known: native, arduino, esp8266, esp32fota, legacy, esp-admin)"
            ))
        })?;
        let weight: u32 = weight.trim().parse().map_err(|_| {
            SimError::Usage(format!(
                "weight '{weight}' for {name} is not a whole number"
            ))
        })?;
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
    fn mix_parses_all_five_and_refuses_unknown_names() {
        assert_eq!(parse_mix("native=60").unwrap().len(), 1);
        assert!(
            parse_mix("native=60,esp8266=0").unwrap().len() == 1,
            "a zero weight asks for nothing"
        );
        let all = parse_mix(default_mix(true, true)).unwrap();
        assert_eq!(all.keys().copied().collect::<Vec<_>>(), Protocol::ALL);
        assert!(!parse_mix(default_mix(true, false))
            .unwrap()
            .contains_key(&Protocol::Legacy));
        assert!(parse_mix("telnet=1").is_err());
        assert!(parse_mix("native=x").is_err());
        assert!(parse_mix("native=0").is_err());
    }

    #[test]
    fn esp_admin_is_asked_for_by_name_and_needs_the_admin() {
        let mix = parse_mix("native=1,esp-admin=3").unwrap();
        assert_eq!(mix.get(&Protocol::EspAdmin), Some(&3));
        assert!(!parse_mix(default_mix(true, true))
            .unwrap()
            .contains_key(&Protocol::EspAdmin));
        let args = |extra: &[&str]| {
            let mut argv = vec!["otafleet-sim", "--server", "http://127.0.0.1:1"];
            argv.extend_from_slice(extra);
            Config::from_args(Args::parse_from(argv))
        };
        let e = args(&["--wait-for-deployment", "--protocols", "esp-admin=1"]).unwrap_err();
        assert!(e.to_string().contains("--admin-token"), "{e}");
        let c = args(&["--admin-token", "t", "--protocols", "esp-admin=1"]).unwrap();
        assert_eq!(c.esp_admin_connect_wait, Duration::from_secs(4));
        assert_eq!(c.esp_admin_reset, Duration::from_secs(7));
        assert!(!Protocol::EspAdmin.failed_boot_visible());
        assert!(!Protocol::EspAdmin.cut_simulated());
    }
}
