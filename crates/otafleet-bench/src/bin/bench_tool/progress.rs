//! `bench-tool progress`: what a progress report costs at a small fleet and at a large one.
//!
//! Enrols `--reporters` devices (the small fleet), deploys an image to them only and checks each
//! in once, so each holds an open update to report against. Then, in rounds, sends `--reports`
//! progress reports (`downloading`, any percentage: a report that keeps an update in its stage
//! is always accepted) with `--concurrency` in flight, and takes the time per report and the
//! server's CPU per report. Then enrols devices up to `--fleet` through the same check-in API,
//! and measures again with the same reporters. Prints the ratio of the medians (large / small)
//! and fails above `--max-ratio`.

use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

pub struct Args {
    pub server: String,
    pub admin_token: String,
    pub pid: Option<u32>,
    pub reporters: u32,
    pub fleet: u32,
    pub reports: u32,
    pub concurrency: usize,
    pub rounds: u32,
    pub max_ratio: f64,
}

struct Reporter {
    token: String,
    update_id: i64,
}

/// Median per-report wall time and server CPU time, in microseconds.
struct Cost {
    wall_us: f64,
    cpu_us: Option<f64>,
}

/// Measure; `false` when the ratio is above the goal.
pub async fn run(a: Args) -> bool {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency.max(64))
        .build()
        .unwrap();
    let reporters = prepare(&client, &a).await;
    println!(
        "small fleet: {} enrolled devices, each with an open update",
        a.reporters
    );
    let small = measure(&client, &a, &reporters).await;
    let seeded = a.fleet.saturating_sub(a.reporters);
    let t = Instant::now();
    let n = crate::enroll_macs(&a.server, seeded, "bench-seed", 0xC0, 64)
        .await
        .len() as u32;
    let total = n + a.reporters;
    println!(
        "large fleet: enrolled {n} more devices through POST /api/v1/device/checkin in {:.1} s ({total} in all)",
        t.elapsed().as_secs_f64(),
    );
    let large = measure(&client, &a, &reporters).await;
    let ratio = large.wall_us / small.wall_us;
    println!(
        "progress report, time per report ({} in flight): {:.1} us at {} devices, {:.1} us at {total} devices: ratio {ratio:.3} (goal <= {})",
        a.concurrency, small.wall_us, a.reporters, large.wall_us, a.max_ratio
    );
    if let (Some(s), Some(l)) = (small.cpu_us, large.cpu_us) {
        println!(
            "progress report, server CPU per report: {s:.1} us at {} devices, {l:.1} us at {total} devices: ratio {:.3}",
            a.reporters,
            l / s
        );
    }
    ratio <= a.max_ratio
}

async fn prepare(client: &reqwest::Client, a: &Args) -> Vec<Reporter> {
    let project = "bench-progress";
    let tokens = crate::enroll_macs(&a.server, a.reporters, project, 0xA0, 16).await;
    let image = otafleet_image::synth::AppImage::new(otafleet_image::Chip::Esp32)
        .project(project)
        .version("2.0.0")
        .payload_len(16 * 1024)
        .build();
    let fw: Value = client
        .post(format!(
            "{}/api/v1/firmware?filename={project}-2.0.0.bin",
            a.server
        ))
        .bearer_auth(&a.admin_token)
        .header("content-type", "application/octet-stream")
        .body(image)
        .send()
        .await
        .expect("upload")
        .error_for_status()
        .expect("upload accepted")
        .json()
        .await
        .unwrap();
    let macs: Vec<&str> = tokens.iter().map(|(m, _)| m.as_str()).collect();
    client
        .post(format!("{}/api/v1/deployments", a.server))
        .bearer_auth(&a.admin_token)
        .json(&json!({"firmware_id": fw["id"], "devices": macs}))
        .send()
        .await
        .expect("deploy")
        .error_for_status()
        .expect("deployment accepted");
    let mut out = Vec::new();
    for (mac, token) in tokens {
        let v: Value = client
            .post(format!("{}/api/v1/device/checkin", a.server))
            .bearer_auth(&token)
            .json(&json!({"mac": mac, "chip": "esp32", "project": project, "version": "1.0.0"}))
            .send()
            .await
            .expect("check-in")
            .error_for_status()
            .expect("check-in accepted")
            .json()
            .await
            .unwrap();
        let update_id = v["update"]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{mac} was offered nothing: {v}"));
        out.push(Reporter { token, update_id });
    }
    out
}

async fn measure(client: &reqwest::Client, a: &Args, reporters: &[Reporter]) -> Cost {
    let url = format!("{}/api/v1/device/progress", a.server);
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    // Round 0 warms up (connections opened, caches filled) and is not counted.
    for round in 0..=a.rounds {
        let cpu0 = a.pid.and_then(crate::cpu_ticks);
        let t = Instant::now();
        let failures = stream::iter(0..a.reports)
            .map(|i| {
                let r = &reporters[i as usize % reporters.len()];
                let req = client.post(&url).bearer_auth(&r.token).json(
                    &json!({"update_id": r.update_id, "state": "downloading", "progress": i % 100}),
                );
                async move {
                    match req.send().await {
                        Ok(resp) if resp.status().is_success() => 0u32,
                        Ok(resp) => {
                            eprintln!("progress refused: {}", resp.status());
                            1
                        }
                        Err(e) => {
                            eprintln!("progress failed: {e}");
                            1
                        }
                    }
                }
            })
            .buffer_unordered(a.concurrency)
            .fold(0u32, |acc, f| async move { acc + f })
            .await;
        assert_eq!(failures, 0, "progress reports failed");
        let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(a.reports);
        let cpu = a
            .pid
            .and_then(crate::cpu_ticks)
            .zip(cpu0)
            .map(|(c1, c0)| (c1 - c0) as f64 * crate::tick_us() / f64::from(a.reports));
        if round == 0 {
            continue;
        }
        println!(
            "  round {round}: {wall:.1} us per report{}",
            cpu.map(|c| format!(", server CPU {c:.1} us per report"))
                .unwrap_or_default()
        );
        walls.push(wall);
        cpus.extend(cpu);
    }
    Cost {
        wall_us: median(&mut walls),
        cpu_us: (!cpus.is_empty()).then(|| median(&mut cpus)),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
