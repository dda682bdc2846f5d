//! `bench-tool logs`: the live-log path at fleet scale. N devices (enrolled here) each send R
//! lines a second, in four batches a second or more of at most 100 lines (`POST
//! /api/v1/device/logs`, as the reference client's log hook does while watched), and one admin viewer per device holds its log stream
//! (`GET /api/v1/devices/{mac}/logs/stream`) the whole time. Each line carries the moment it was
//! sent (this process's clock), so the viewer that receives it measures the delivery time
//! directly. Prints lines sent/received, throughput, delivery p50/p99/max and the server's CPU
//! and RSS (from /proc) over the run, and fails when a line is lost or a batch refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Args {
    pub server: String,
    pub admin_token: String,
    pub pid: Option<u32>,
    pub devices: u32,
    pub rate: u32,
    pub seconds: f64,
    /// The devices' project and the first byte of their MACs' last three, so that two runs at
    /// once (a busy fleet and one very chatty device) do not meet.
    pub project: String,
    pub prefix: u8,
}

pub async fn run(a: Args) -> bool {
    let pairs = crate::enroll_macs(&a.server, a.devices, &a.project, a.prefix, 16).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.devices as usize * 2)
        .build()
        .unwrap();
    let start = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let lagged = Arc::new(AtomicU64::new(0));

    // The viewers: one stream per device, open before any line is sent.
    let mut viewers = Vec::new();
    for (mac, _) in &pairs {
        let r = client
            .get(format!("{}/api/v1/devices/{mac}/logs/stream", a.server))
            .bearer_auth(&a.admin_token)
            .send()
            .await
            .expect("log stream");
        assert_eq!(r.status(), 200, "log stream of {mac}");
        let (latencies, received, lagged) = (latencies.clone(), received.clone(), lagged.clone());
        viewers.push(tokio::spawn(async move {
            let mut r = r;
            let mut buf = String::new();
            while let Ok(Some(chunk)) = r.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if block.starts_with("event: lagged") {
                        lagged.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                        continue;
                    };
                    let lines: Vec<Value> = serde_json::from_str(data).unwrap_or_default();
                    let now = start.elapsed().as_micros() as u64;
                    let mut l = latencies.lock().unwrap();
                    for line in &lines {
                        if let Some(t) = line["text"]
                            .as_str()
                            .and_then(|t| t.rsplit("t=").next())
                            .and_then(|t| t.parse::<u64>().ok())
                        {
                            l.push(now.saturating_sub(t));
                        }
                    }
                    received.fetch_add(lines.len() as u64, Ordering::Relaxed);
                }
            }
        }));
    }

    let cpu0 = a.pid.and_then(crate::cpu_ticks);
    let t0 = Instant::now();
    // Four batches a second, or more of at most 100 lines (the most a batch may carry).
    let per_batch = (a.rate / 4).clamp(1, 100);
    let every = Duration::from_secs_f64(per_batch as f64 / a.rate.max(1) as f64);
    let batches = (a.seconds / every.as_secs_f64()).round() as u64;
    let mut senders = Vec::new();
    for (i, (_, token)) in pairs.iter().enumerate() {
        let (client, url, token) = (
            client.clone(),
            format!("{}/api/v1/device/logs", a.server),
            token.clone(),
        );
        let (sent, refused) = (sent.clone(), refused.clone());
        senders.push(tokio::spawn(async move {
            // Spread the devices over the first batch period, as a fleet's would be.
            tokio::time::sleep(Duration::from_millis(250 * (i as u64 % 50) / 50)).await;
            let mut tick = tokio::time::interval(every);
            for _ in 0..batches {
                tick.tick().await;
                let t = start.elapsed().as_micros();
                let lines: Vec<Value> = (0..per_batch)
                    .map(|k| json!({"level": if k % 10 == 0 { "warn" } else { "info" }, "scope": "bench", "text": format!("sample line {k} t={t}")}))
                    .collect();
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "lines": lines }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let v: Value = r.json().await.unwrap_or_default();
                        if v["logs"] != true {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        sent.fetch_add(per_batch as u64, Ordering::Relaxed);
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = a.pid.and_then(crate::cpu_ticks);
    let rss = a.pid.and_then(otafleet_bench::rss_kib);
    // Let the last batches reach their viewers (bounded), then count.
    let want = sent.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for v in viewers {
        v.abort();
    }
    let got = received.load(Ordering::Relaxed);
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |v| *v as f64 / 1000.0)
    };
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => format!(
            ", server CPU {:.1}% of one core",
            (b - a) as f64 * crate::tick_us() / 1e6 / wall * 100.0
        ),
        _ => String::new(),
    };
    let rss = rss.map_or(String::new(), |k| format!(", server RSS {} MiB", k / 1024));
    println!(
        "logs devices={} rate={}/s each: sent {want} lines in {wall:.1} s ({:.0} lines/s), received {got}, delivery p50 {:.2} ms p99 {:.2} ms max {:.2} ms, refused batches {}, lagged {}{cpu}{rss}",
        a.devices,
        a.rate,
        want as f64 / wall,
        pct(0.5),
        pct(0.99),
        l.last().map_or(0.0, |v| *v as f64 / 1000.0),
        refused.load(Ordering::Relaxed),
        lagged.load(Ordering::Relaxed),
    );
    got == want && refused.load(Ordering::Relaxed) == 0 && lagged.load(Ordering::Relaxed) == 0
}
