//! A whole simulation run: build the images (one pair per chip family, [`Family`]), put the
//! running ones in the library and register the legacy devices, start every device as a tokio
//! task over one shared client ([`Shared`]), upload and deploy the new images once the fleet has
//! enrolled (or wait for deployments made elsewhere), show a progress bar, and collect the
//! [`Summary`].
//!
//! Injected failures are chosen here, before any device starts, as a percentage of each
//! protocol's devices (rounded up, so every protocol of the mix meets them): cut downloads among
//! all devices, failed boots among the devices whose protocol lets the server see one (not
//! esp32FOTA).
//!
//! With an admin token the run ends by asking the server what it recorded: every updated device
//! must be `done` on its family's new image, every injected failed boot a `failed` attempt. A run
//! is a success only when the devices and the server agree.
//!
//! With `--duration` / `--forever` ([`Lifetime`]) the devices live on after their first outcome
//! ([`crate::life`]) until the time is up, SIGINT or SIGTERM arrives ([`run`]), or the future given
//! to [`run_until`] resolves. Then every device stops at its next wait (a device in the middle of
//! a request or a download finishes that first, for at most [`STOP_GRACE`]), and the server's
//! records are compared with what each device runs at the end ([`admin::check_live`]).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::admin;
use crate::config::{Config, Lifetime, Protocol};
use crate::device::{DeviceResult, DeviceSpec, Outcome};
use crate::error::SimError;
use crate::http::Http;
use crate::images::{Family, Image};
use crate::life::{self, Later};
use crate::summary::Summary;

/// Counters the devices bump and the progress bar reads.
#[derive(Default)]
pub struct Stats {
    pub enrolled: AtomicU64,
    pub downloading: AtomicU64,
    pub bytes: AtomicU64,
    pub cut_downloads: AtomicU64,
    pub boot_failures: AtomicU64,
    /// Devices that reached their first outcome.
    pub finished: AtomicU64,
    /// Images booted after a first outcome (`--duration` / `--forever`).
    pub later_updates: AtomicU64,
    /// Waits of devices that found the server unreachable ([`crate::backoff`]).
    pub backoffs: AtomicU64,
    /// Log lines the server accepted from native devices while watched ([`crate::logs`]).
    pub log_lines: std::sync::Arc<AtomicU64>,
    /// Boot reports the server stored: `success` (updated) and `error` (a failed boot).
    pub reports_success: AtomicU64,
    pub reports_error: AtomicU64,
    /// Restarts esp-admin devices did on a `command/restart` over MQTT.
    pub mqtt_restarts: AtomicU64,
}

/// What every device task shares.
pub struct Shared {
    pub cfg: Config,
    pub http: Http,
    /// How esp-admin devices reach the server (HTTPS with its CA, MQTT), when there are any.
    pub esp_admin: Option<crate::esp_admin::Env>,
    /// The images this run uploaded and deployed: a device whose protocol gives no hash checks
    /// an image of the same version against them (esp-admin).
    pub deployed: std::sync::Mutex<Vec<Image>>,
    pub stats: Stats,
    /// Set once the run has what it needs: devices that go on polling stop
    /// ([`crate::device::linger`]).
    pub stop: watch::Sender<bool>,
    /// Set when a run whose devices live on ends: each stops at its next wait ([`Shared::pause`]).
    pub ending: watch::Sender<bool>,
    /// `--failed-boots-wave`: the devices picked in that wave of the rollout, once it exists.
    pub failing: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    /// With `--download-rate`: wait until `got` bytes of a download begun at `started` are due
    /// at that rate (a slow link), reading no faster.
    pub async fn throttle(&self, started: Instant, got: u64) {
        if let Some(rate) = self.cfg.download_rate {
            let due = started + Duration::from_secs_f64(got as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
    }

    /// Whether `mac` was picked for failed boots (at the start, or in a rollout's wave).
    pub fn fails_boots(&self, spec: &DeviceSpec) -> bool {
        spec.failed_boot
            || self
                .failing
                .lock()
                .expect("failing lock")
                .contains(&spec.mac)
    }
}

/// How long, after a run whose devices live on ends, a device may take to finish the request,
/// download or reboot it is in before the run goes on without it (counted as an error).
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Run the fleet to its end, after finding the server over mDNS if `cfg` asks for it (the binary
/// finds it first, to print the choice). With `--duration` / `--forever`, SIGINT or SIGTERM ends
/// it early (the signals are taken only then).
pub async fn run(cfg: Config) -> Result<Summary, SimError> {
    run_until(cfg, shutdown_signal()).await
}

/// SIGINT or SIGTERM (Ctrl-C where there are no such signals).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// [`run`], but a run whose devices live on (`--duration`, `--forever`) ends when `stop`
/// resolves (or its duration is up), not at a signal. `stop` is not polled otherwise.
pub async fn run_until(
    mut cfg: Config,
    stop: impl Future<Output = ()>,
) -> Result<Summary, SimError> {
    if let Some(found) = cfg.locate_server().await? {
        for line in found.report() {
            tracing::info!("{line}");
        }
    }
    let started = Instant::now();
    let http = Http::new(&cfg.server, cfg.connections)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let n = cfg.devices as usize;
    let protocols = assign_protocols(&cfg, &mut rng);
    let families: BTreeSet<Family> = cfg.protocols.keys().map(|p| p.family()).collect();
    let running: BTreeMap<Family, (Vec<u8>, Image)> = families
        .iter()
        .map(|f| (*f, f.build(&cfg, RUNNING_VERSION, 1)))
        .collect();
    let cut = pick(&mut rng, &protocols, cfg.cut_downloads, |p| {
        p.cut_simulated()
    });
    // With --failed-boots-wave the failed boots are picked in that wave once the rollout exists.
    let at_start = if cfg.failed_boots_wave.is_some() {
        0
    } else {
        cfg.failed_boots
    };
    let failed = pick(&mut rng, &protocols, at_start, |p| p.failed_boot_visible());
    let prefix: [u8; 3] = [0x02, rng.gen(), rng.gen()];
    let crash = if cfg.crash_loop > 0 {
        pick(&mut rng, &protocols, cfg.crash_loop, |p| {
            p == Protocol::Native
        })
    } else {
        vec![false; n]
    };
    let mut specs: Vec<DeviceSpec> = (0..n)
        .map(|i| DeviceSpec {
            mac: format!(
                "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
                prefix[0],
                prefix[1],
                prefix[2],
                (i >> 16) as u8,
                (i >> 8) as u8,
                i as u8
            ),
            protocol: protocols[i],
            project: protocols[i].family().project(&cfg),
            running: running[&protocols[i].family()].1.clone(),
            cut_download: cut[i],
            failed_boot: failed[i],
            crash_loop: crash[i],
            esp_admin: None,
        })
        .collect();
    tracing::info!(server = %cfg.server, project = %cfg.project, devices = n, seed = cfg.seed, "starting the fleet");

    if let Some(token) = &cfg.admin_token {
        // Stock clients say only their sketch MD5 or version: the server knows their chip and
        // project from the library image with that hash, so the running images must be in the
        // library, and legacy devices must be registered (their API has no auto-enrolment).
        for (family, (bytes, image)) in &running {
            let stock = cfg
                .protocols
                .keys()
                .any(|p| p.is_stock() && p.family() == *family);
            if stock {
                admin::upload(
                    &http,
                    token,
                    &family.filename(&cfg, &image.version),
                    bytes.clone(),
                )
                .await?;
            }
        }
        let legacy: Vec<String> = specs
            .iter()
            .filter(|s| s.protocol == Protocol::Legacy)
            .map(|s| s.mac.clone())
            .collect();
        if !legacy.is_empty() {
            admin::register_legacy(&http, token, &cfg, legacy, &running[&Family::Esp32].1).await?;
        }
        // ESP Admin devices exist only once the admin created them: the server draws their id,
        // key and MAC.
        let esp: Vec<usize> = (0..n)
            .filter(|i| specs[*i].protocol == Protocol::EspAdmin)
            .collect();
        if !esp.is_empty() {
            let created = admin::create_esp_admin(&http, token, &cfg, esp.len()).await?;
            if let Some(cmd) = &cfg.esp_admin_created_hook {
                admin::esp_admin_created_hook(cmd, &created).await?;
            }
            for (i, c) in esp.into_iter().zip(created) {
                specs[i].mac = c.mac.clone();
                specs[i].esp_admin = Some(Arc::new(c));
            }
        }
    }
    let esp_admin = if cfg.protocols.contains_key(&Protocol::EspAdmin) {
        Some(crate::esp_admin::Env::prepare(&cfg, &http).await?)
    } else {
        None
    };
    drop(running);
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        http,
        esp_admin,
        deployed: Default::default(),
        stats: Stats::default(),
        stop: watch::channel(false).0,
        ending: watch::channel(false).0,
        failing: Default::default(),
    });
    let bar = progress_bar(&cfg);
    let mut tasks = JoinSet::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<DeviceResult>();
    for spec in specs.iter().cloned() {
        let sh = shared.clone();
        let done = done_tx.clone();
        tasks.spawn(async move { life::run(&sh, spec, &done).await });
    }
    drop(done_tx);

    let ticker = tokio::spawn(tick(shared.clone(), bar.clone()));
    // The end of a run whose devices live on (never for one whose devices stop at their first
    // outcome: then `stop` is not even polled).
    let end = async {
        match cfg.lifetime {
            Lifetime::For(d) => tokio::select! {
                () = tokio::time::sleep_until((started + d).into()) => {}
                () = stop => {}
            },
            Lifetime::Forever => stop.await,
            Lifetime::FirstOutcome => std::future::pending().await,
        }
    };
    tokio::pin!(end);
    // The run ended before it deployed anything.
    let mut ended_early = false;
    let mut targets: BTreeMap<Family, Image> = BTreeMap::new();
    let mut admin_error = None;
    if cfg.admin_token.is_some() && !cfg.wait_for_deployment {
        // Deploy once the fleet has enrolled, as an engineer would after seeing it appear.
        let deadline = Instant::now() + cfg.timeout;
        while shared.stats.enrolled.load(Ordering::Relaxed)
            + shared.stats.finished.load(Ordering::Relaxed)
            < n as u64
            && Instant::now() < deadline
        {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = &mut end => {
                    ended_early = true;
                    break;
                }
            }
        }
    }
    if let (Some(token), false, false) = (&cfg.admin_token, cfg.wait_for_deployment, ended_early) {
        let version = format!("1.{}.0", unix_secs());
        for family in &families {
            let (bytes, image) = family.build(&cfg, &version, 2);
            bar.println(format!(
                "uploading {} ({} bytes, sha256 {}) and deploying it to project {} (chip {})",
                family.filename(&cfg, &version),
                bytes.len(),
                &image.sha256[..12],
                family.project(&cfg),
                family.chip(&cfg)
            ));
            // Known before the deployment exists, so no device can be offered it first.
            shared
                .deployed
                .lock()
                .expect("deployed lock")
                .push(image.clone());
            match admin::upload_and_deploy(&shared.http, token, &cfg, *family, &version, bytes)
                .await
            {
                Ok(deployment) => {
                    targets.insert(*family, image);
                    if let Some(wave) = cfg.failed_boots_wave {
                        match admin::wave_members(&shared.http, token, deployment, wave).await {
                            Ok(members) => {
                                let picked =
                                    pick_in_wave(&mut rng, &specs, &members, cfg.failed_boots);
                                bar.println(format!(
                                    "failed boots injected in wave {wave} of rollout {deployment}: {} of its {} devices",
                                    picked.len(),
                                    members.len()
                                ));
                                shared.failing.lock().expect("failing lock").extend(picked);
                            }
                            Err(e) => {
                                tasks.abort_all();
                                admin_error = Some(e);
                                break;
                            }
                        }
                    }
                }
                Err(e) => {
                    // Without a deployment the devices would wait until the timeout: stop now.
                    tasks.abort_all();
                    admin_error = Some(e);
                    break;
                }
            }
        }
    } else if !ended_early {
        for family in &families {
            bar.println(format!(
                "waiting for a deployment to project {} (chip {})",
                family.project(&cfg),
                family.chip(&cfg)
            ));
        }
    }

    // Every device reports its outcome once: at its first outcome, or when it lives on, at the
    // end of the run. Some go on polling after that (device::linger).
    let mut results = Vec::with_capacity(n);
    if cfg.lifetime.lives_on() {
        // Until the end (or every task ended: an admin error aborted them).
        let mut ended = false;
        while !ended && !ended_early {
            tokio::select! {
                () = &mut end => break,
                more = collect(&mut done_rx, &mut tasks, &mut results) => ended = !more,
            }
        }
        if !ended {
            bar.println("the run's time is up: every device stops at its next wait");
            let _ = shared.ending.send(true);
            let grace = tokio::time::sleep(STOP_GRACE + cfg.reboot);
            tokio::pin!(grace);
            while results.len() < n {
                tokio::select! {
                    () = &mut grace => break,
                    more = collect(&mut done_rx, &mut tasks, &mut results) => if !more { break },
                }
            }
        }
        // A device still busy after the grace is an error of its own.
        let seen: BTreeSet<String> = results.iter().map(|r| r.mac.clone()).collect();
        for spec in specs.iter().filter(|s| !seen.contains(&s.mac)) {
            results.push(DeviceResult {
                mac: spec.mac.clone(),
                protocol: spec.protocol,
                outcome: Outcome::Unexpected(format!(
                    "still busy {} s after the end of the run",
                    (STOP_GRACE + cfg.reboot).as_secs()
                )),
                failed_boot_injected: spec.failed_boot,
                cut_injected: spec.cut_download,
                boots_failed: 0,
                later: Later::default(),
                runs: spec.running.clone(),
                project: spec.project.clone(),
                settled: false,
            });
        }
    } else {
        while results.len() < n {
            if !collect(&mut done_rx, &mut tasks, &mut results).await {
                break;
            }
        }
    }
    if let Some(e) = admin_error {
        ticker.abort();
        bar.finish_and_clear();
        return Err(e);
    }
    results.sort_by(|a, b| a.mac.cmp(&b.mac));
    let expected_failed_boots =
        failed.iter().filter(|f| **f).count() + shared.failing.lock().expect("failing lock").len();
    let mut summary = Summary::new(
        &cfg,
        &shared,
        results,
        expected_failed_boots,
        started.elapsed(),
    );
    if let Some(token) = &cfg.admin_token {
        summary.server_check = Some(settle(&shared, token, &summary, &targets, &bar).await);
    }
    let _ = shared.stop.send(true);
    if cfg.lifetime.lives_on() {
        // Devices still busy after the grace are not waited for.
        tasks.abort_all();
    }
    while tasks.join_next().await.is_some() {}
    ticker.abort();
    bar.finish_and_clear();
    Ok(summary)
}

/// Read the server's records back. esp32FOTA devices go on polling ([`device::linger`]) and make
/// the server record what their poll right after the reboot could not yet confirm (it writes the
/// end of a download after the fact), so while only their records disagree, read again at each
/// interval, for at most 20 intervals (at least 5 s); how long that took is part of the answer.
async fn settle(
    sh: &Shared,
    token: &str,
    summary: &Summary,
    targets: &BTreeMap<Family, Image>,
    bar: &ProgressBar,
) -> admin::ServerCheck {
    let started = Instant::now();
    let budget = (sh.cfg.interval * 20).max(Duration::from_secs(5));
    let mut waited = Duration::ZERO;
    loop {
        let mut check = if sh.cfg.lifetime.lives_on() {
            admin::check_live(&sh.http, token, &summary.results).await
        } else {
            admin::check(&sh.http, token, &summary.results, targets).await
        };
        let only_polling =
            check.disagreeing.len() == 1 && check.disagreeing.contains(&Protocol::Esp32Fota);
        if !only_polling || started.elapsed() >= budget {
            check.settled_after = waited;
            return check;
        }
        bar.set_message(format!(
            "waiting for {} esp32fota devices' next poll",
            check.mismatches.len()
        ));
        tokio::time::sleep(sh.cfg.interval).await;
        waited = started.elapsed();
    }
}

/// Wait for the next device result, or a device task's end; `false` once every task has ended
/// (what they reported is then in `results`). A task that panicked is an unexpected failure.
async fn collect(
    done_rx: &mut mpsc::UnboundedReceiver<DeviceResult>,
    tasks: &mut JoinSet<()>,
    results: &mut Vec<DeviceResult>,
) -> bool {
    tokio::select! {
        r = done_rx.recv() => match r {
            Some(r) => results.push(r),
            None => return false,
        },
        joined = tasks.join_next() => match joined {
            Some(Err(e)) if e.is_panic() => results.push(DeviceResult {
                mac: "?".into(),
                protocol: Protocol::Native,
                outcome: Outcome::Unexpected(format!("device task: {e}")),
                failed_boot_injected: false,
                cut_injected: false,
                boots_failed: 0,
                later: Later::default(),
                runs: crate::images::Image::of("?", &[]),
                project: String::new(),
                settled: false,
            }),
            Some(_) => {}
            // Every task ended (or was aborted): whatever was reported is in the channel.
            None => {
                while let Ok(r) = done_rx.try_recv() {
                    results.push(r);
                }
                return false;
            }
        },
    }
    true
}

/// The version every device runs at the start.
pub(crate) const RUNNING_VERSION: &str = "1.0.0";

/// `pct` percent of the devices of each protocol for which `eligible` holds, rounded up per
/// protocol (so that every protocol of the mix meets the injected failure), chosen at random.
pub fn pick(
    rng: &mut rand::rngs::StdRng,
    protocols: &[Protocol],
    pct: u8,
    eligible: impl Fn(Protocol) -> bool,
) -> Vec<bool> {
    let mut chosen = vec![false; protocols.len()];
    for p in Protocol::EVERY.into_iter().filter(|p| eligible(*p)) {
        let mut idx: Vec<usize> = (0..protocols.len())
            .filter(|i| protocols[*i] == p)
            .collect();
        let k = (idx.len() * usize::from(pct)).div_ceil(100);
        idx.shuffle(rng);
        for i in idx.into_iter().take(k) {
            chosen[i] = true;
        }
    }
    chosen
}

/// `pct` percent, rounded up per protocol, of the devices in `members` whose protocol shows a
/// failed boot to the server, chosen at random.
fn pick_in_wave(
    rng: &mut rand::rngs::StdRng,
    specs: &[DeviceSpec],
    members: &BTreeSet<String>,
    pct: u8,
) -> Vec<String> {
    let inside: Vec<&DeviceSpec> = specs.iter().filter(|s| members.contains(&s.mac)).collect();
    let protocols: Vec<Protocol> = inside.iter().map(|s| s.protocol).collect();
    pick(rng, &protocols, pct, |p| p.failed_boot_visible())
        .into_iter()
        .zip(inside)
        .filter(|(chosen, _)| *chosen)
        .map(|(_, s)| s.mac.clone())
        .collect()
}

/// Each device's protocol: counts proportional to the weights (largest remainders get the
/// devices left over), in a seeded random order.
pub fn assign_protocols(cfg: &Config, rng: &mut rand::rngs::StdRng) -> Vec<Protocol> {
    let n = cfg.devices as usize;
    let total = cfg.protocols.values().map(|w| *w as usize).sum::<usize>();
    let mut counts: Vec<(Protocol, usize, usize)> = cfg
        .protocols
        .iter()
        .map(|(p, w)| (*p, n * *w as usize / total, n * *w as usize % total))
        .collect();
    let left = n - counts.iter().map(|c| c.1).sum::<usize>();
    let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
    by_remainder.sort_by_key(|i| std::cmp::Reverse(counts[*i].2));
    for i in by_remainder.into_iter().take(left) {
        counts[i].1 += 1;
    }
    let mut out = Vec::with_capacity(n);
    for (p, k, _) in counts {
        out.extend(std::iter::repeat_n(p, k));
    }
    out.shuffle(rng);
    out
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn progress_bar(cfg: &Config) -> ProgressBar {
    let bar = ProgressBar::new(u64::from(cfg.devices));
    if !cfg.show_progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} finished  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

async fn tick(sh: Arc<Shared>, bar: ProgressBar) {
    loop {
        let s = &sh.stats;
        bar.set_position(s.finished.load(Ordering::Relaxed));
        let mut msg = format!(
            "enrolled {}  downloading {}  {:.1} MB  cut {}  boot failures {}",
            s.enrolled.load(Ordering::Relaxed),
            s.downloading.load(Ordering::Relaxed),
            s.bytes.load(Ordering::Relaxed) as f64 / 1e6,
            s.cut_downloads.load(Ordering::Relaxed),
            s.boot_failures.load(Ordering::Relaxed),
        );
        if sh.cfg.lifetime.lives_on() {
            msg += &format!(
                "  later updates {}",
                s.later_updates.load(Ordering::Relaxed)
            );
        }
        match s.backoffs.load(Ordering::Relaxed) {
            0 => {}
            b => msg += &format!("  back-offs {b}"),
        }
        bar.set_message(msg);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
