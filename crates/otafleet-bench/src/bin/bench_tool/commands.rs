//! `bench-tool commands`: command delivery to long-polling devices. N devices (enrolled here)
//! each hold `GET /api/v1/device/commands?wait=25` open with their token, as a connected device
//! does, and answer every command they get `done`. Once all are waiting the tool prints
//! `waiting N` and keeps them so for `--hold-seconds` (bench/run.sh measures check-ins
//! meanwhile), reads the server's RSS (the memory the waiting devices cost, against the RSS
//! before they were enrolled), then queues M `custom` commands at R a second to random devices
//! through the admin API and measures, for each, the time from the moment its queue request was
//! sent to the moment its device received it. Fails when a command is not delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Args {
    pub server: String,
    pub admin_token: String,
    pub pid: Option<u32>,
    pub devices: u32,
    pub commands: u32,
    pub rate: u32,
    pub hold_seconds: f64,
}

pub async fn run(a: Args) -> bool {
    let rss0 = a.pid.and_then(otafleet_bench::rss_kib);
    let pairs = crate::enroll_macs(&a.server, a.devices, "cmdbench", 0xC6, 16).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.devices as usize + 64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let start = Instant::now();
    let received: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let polling = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut devices = Vec::new();
    for (_, token) in &pairs {
        let (client, token, received, polling, errors) = (
            client.clone(),
            token.clone(),
            received.clone(),
            polling.clone(),
            errors.clone(),
        );
        let url = format!("{}/api/v1/device/commands?wait=25", a.server);
        let ack = format!("{}/api/v1/device/commands/", a.server);
        devices.push(tokio::spawn(async move {
            let mut first = true;
            loop {
                if first {
                    polling.fetch_add(1, Ordering::Relaxed);
                    first = false;
                }
                let r = client.get(&url).bearer_auth(&token).send().await;
                let v: Value = match r {
                    Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let now = Instant::now();
                for c in v["commands"].as_array().into_iter().flatten() {
                    let Some(id) = c["id"].as_i64() else { continue };
                    received.lock().unwrap().entry(id).or_insert(now);
                    let r = client
                        .post(format!("{ack}{id}"))
                        .bearer_auth(&token)
                        .json(&json!({"state": "done", "result": "pong"}))
                        .send()
                        .await;
                    if !matches!(&r, Ok(r) if r.status().is_success()) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    while polling.load(Ordering::Relaxed) < a.devices as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every device has sent its first long poll; give the last ones time to reach the server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("waiting {}", a.devices);
    tokio::time::sleep(Duration::from_secs_f64(a.hold_seconds)).await;
    let rss1 = a.pid.and_then(otafleet_bench::rss_kib);

    // Queue the commands, at `rate` a second, to devices picked in a fixed pseudo-random order.
    let sent: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate.max(1) as f64));
    let mut queued = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..a.commands {
        tick.tick().await;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mac = pairs[(x % pairs.len() as u64) as usize].0.clone();
        let (client, url, token, sent, errors) = (
            client.clone(),
            format!("{}/api/v1/devices/{mac}/commands", a.server),
            a.admin_token.clone(),
            sent.clone(),
            errors.clone(),
        );
        queued.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"kind": "custom", "key": "ping", "payload": {"n": 1}}))
                .send()
                .await;
            match r {
                Ok(r) if r.status().as_u16() == 201 => {
                    let v: Value = r.json().await.unwrap_or_default();
                    if let Some(id) = v["id"].as_i64() {
                        sent.lock().unwrap().insert(id, t);
                    }
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for q in queued {
        q.await.unwrap();
    }
    // Wait (bounded) for every queued command to arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = {
            let s = sent.lock().unwrap();
            let r = received.lock().unwrap();
            s.keys().all(|id| r.contains_key(id))
        };
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for d in devices {
        d.abort();
    }
    let s = sent.lock().unwrap();
    let r = received.lock().unwrap();
    let mut lat: Vec<f64> = s
        .iter()
        .filter_map(|(id, t)| {
            r.get(id)
                .map(|g| g.duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let mem = match (rss0, rss1) {
        (Some(a), Some(b)) => format!(
            ", server RSS {} MiB before enrolling, {} MiB with all waiting (+{:.1} MiB)",
            a / 1024,
            b / 1024,
            (b as f64 - a as f64) / 1024.0
        ),
        _ => String::new(),
    };
    println!(
        "commands devices={} waiting: {} queued, {} delivered, delivery p50 {:.1} ms p99 {:.1} ms max {:.1} ms, errors {} ({:.0} s){mem}",
        a.devices,
        s.len(),
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(0.0),
        errors.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    );
    s.len() == a.commands as usize && lat.len() == s.len() && errors.load(Ordering::Relaxed) == 0
}
