//! A whole simulation run: build the images, start every device as a tokio task over one shared
//! client ([`Shared`]), upload and deploy the new image once the fleet has enrolled (or wait for a
//! deployment made elsewhere), show a progress bar, and collect the [`Summary`].
//!
//! With an admin token the run ends by asking the server what it recorded: every updated device
//! must be `done` on the new image, every injected failed boot a `failed` attempt. A run is a
//! success only when the devices and the server agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::Md5;
use otafleet_image::synth::AppImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use crate::admin;
use crate::config::{Config, Protocol};
use crate::device::{self, DeviceSpec, Image, Outcome};
use crate::error::SimError;
use crate::http::Http;
use crate::summary::Summary;

/// Counters the devices bump and the progress bar reads.
#[derive(Default)]
pub struct Stats {
    pub enrolled: AtomicU64,
    pub downloading: AtomicU64,
    pub bytes: AtomicU64,
    pub cut_downloads: AtomicU64,
    pub boot_failures: AtomicU64,
    pub finished: AtomicU64,
}

/// What every device task shares.
pub struct Shared {
    pub cfg: Config,
    pub http: Http,
    pub stats: Stats,
}

/// A synthetic app image and its identity.
pub fn synth_image(cfg: &Config, version: &str, seed: u32) -> (Vec<u8>, Image) {
    // The payload length varies with the seed so that two images never share a hash.
    let overhead = 1024;
    let bytes = AppImage::new(cfg.chip)
        .project(&cfg.project)
        .version(version)
        .elf_sha256([seed as u8; 32])
        .payload_len(cfg.image_size.saturating_sub(overhead).max(1024))
        .build();
    let image = Image {
        version: version.to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        md5: hex::encode(Md5::digest(&bytes)),
    };
    (bytes, image)
}

/// Run the fleet to its end.
pub async fn run(cfg: Config) -> Result<Summary, SimError> {
    let started = Instant::now();
    let http = Http::new(&cfg.server, cfg.connections)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let (running_bytes, running) = synth_image(&cfg, "1.0.0", 1);
    let n = cfg.devices as usize;
    let pick = |rng: &mut rand::rngs::StdRng, pct: u8| {
        let k = (n * usize::from(pct)).div_ceil(100).min(n);
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(rng);
        let mut chosen = vec![false; n];
        for i in idx.into_iter().take(k) {
            chosen[i] = true;
        }
        chosen
    };
    let cut = pick(&mut rng, cfg.cut_downloads);
    let failed = pick(&mut rng, cfg.failed_boots);
    let protocols = assign_protocols(&cfg, &mut rng);
    let prefix: [u8; 3] = [0x02, rng.gen(), rng.gen()];
    let specs: Vec<DeviceSpec> = (0..n)
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
            running: running.clone(),
            cut_download: cut[i],
            failed_boot: failed[i],
            protocol: protocols[i],
        })
        .collect();
    tracing::info!(server = %cfg.server, project = %cfg.project, devices = n, seed = cfg.seed, "starting the fleet");

    if let (Some(token), true) = (
        &cfg.admin_token,
        cfg.protocols.contains_key(&Protocol::Arduino),
    ) {
        // Stock clients say only their sketch MD5: the server knows their chip and project from
        // the library image with that hash, so the running image must be in the library.
        admin::upload(&http, token, &cfg, "1.0.0", running_bytes).await?;
    }
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        http,
        stats: Stats::default(),
    });
    let bar = progress_bar(&cfg);
    let mut tasks = JoinSet::new();
    for spec in specs.iter().cloned() {
        let sh = shared.clone();
        tasks.spawn(async move {
            let mac = spec.mac.clone();
            let outcome = device::run(&sh, spec).await;
            sh.stats.finished.fetch_add(1, Ordering::Relaxed);
            (mac, outcome)
        });
    }

    let ticker = tokio::spawn(tick(shared.clone(), bar.clone()));
    let mut target: Option<Image> = None;
    let mut admin_error = None;
    if let (Some(token), false) = (&cfg.admin_token, cfg.wait_for_deployment) {
        // Deploy once the fleet has enrolled, as an engineer would after seeing it appear.
        let deadline = Instant::now() + cfg.timeout;
        while shared.stats.enrolled.load(Ordering::Relaxed)
            + shared.stats.finished.load(Ordering::Relaxed)
            < n as u64
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let version = format!("1.{}.0", unix_secs());
        let (bytes, image) = synth_image(&cfg, &version, 2);
        bar.println(format!(
            "uploading {} ({} bytes, sha256 {}) and deploying it to project {}",
            version,
            bytes.len(),
            &image.sha256[..12],
            cfg.project
        ));
        match admin::upload_and_deploy(&shared.http, token, &cfg, &version, bytes).await {
            Ok(()) => target = Some(image),
            Err(e) => {
                // Without a deployment the devices would wait until the timeout: stop now.
                tasks.abort_all();
                admin_error = Some(e);
            }
        }
    } else {
        bar.println(format!(
            "waiting for a deployment to project {} (chip {})",
            cfg.project, cfg.chip
        ));
    }

    let mut outcomes = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(pair) => outcomes.push(pair),
            Err(e) if e.is_cancelled() => {}
            Err(e) => outcomes.push(("?".into(), Outcome::Unexpected(format!("device task: {e}")))),
        }
    }
    ticker.abort();
    bar.finish_and_clear();
    if let Some(e) = admin_error {
        return Err(e);
    }
    let mut summary = Summary::new(&cfg, &shared, outcomes, started.elapsed());
    if let Some(token) = &cfg.admin_token {
        summary.server_check =
            Some(admin::check(&shared.http, token, &summary.outcomes, target.as_ref()).await);
    }
    Ok(summary)
}

/// Each device's protocol: counts proportional to the weights, in a seeded random order.
fn assign_protocols(cfg: &Config, rng: &mut rand::rngs::StdRng) -> Vec<Protocol> {
    let n = cfg.devices as usize;
    let total: u32 = cfg.protocols.values().sum();
    let mut out = Vec::with_capacity(n);
    for (p, w) in &cfg.protocols {
        let k = n * *w as usize / total as usize;
        out.extend(std::iter::repeat_n(*p, k));
    }
    let first = *cfg.protocols.keys().next().expect("at least one protocol");
    out.resize(n, first);
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
        bar.set_message(format!(
            "enrolled {}  downloading {}  {:.1} MB  cut {}  boot failures {}",
            s.enrolled.load(Ordering::Relaxed),
            s.downloading.load(Ordering::Relaxed),
            s.bytes.load(Ordering::Relaxed) as f64 / 1e6,
            s.cut_downloads.load(Ordering::Relaxed),
            s.boot_failures.load(Ordering::Relaxed),
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
