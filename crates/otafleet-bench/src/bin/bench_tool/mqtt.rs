//! `bench-tool mqtt`: N ESP Admin devices on a broker, as the SDK keeps them — each added through
//! the admin API (its id and key), connected with its last will, subscribed to its commands and
//! "connected" (retained) — then each publishing R log lines a second (`logs/info`, QoS 0, as
//! the SDK's logger does) for S seconds. Prints how long until otafleet showed all N online, the
//! lines sent and the lines otafleet kept (read back from every device's log buffer), the
//! throughput, and the CPU and RSS (from /proc) of the processes given with `--pid` (otafleet,
//! and an outside broker: added up) while connected and under load.
//!
//! The broker is otafleet's embedded one (`--ca`: TLS with otafleet's CA) or any other that
//! otafleet is a client of (plain MQTT): the same devices, the same bridge, so the two runs can be
//! compared.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{json, Value};

pub struct Args {
    pub server: String,
    pub admin_token: String,
    /// Processes whose CPU time and RSS to add up (otafleet; and an outside broker).
    pub pids: Vec<u32>,
    pub broker: String,
    pub ca: Option<String>,
    pub devices: u32,
    pub rate: u32,
    pub seconds: f64,
}

fn ticks(pids: &[u32]) -> Option<u64> {
    (!pids.is_empty()).then(|| pids.iter().filter_map(|p| crate::cpu_ticks(*p)).sum())
}

fn rss(pids: &[u32]) -> Option<u64> {
    (!pids.is_empty()).then(|| {
        pids.iter()
            .filter_map(|p| otafleet_bench::rss_kib(*p))
            .sum()
    })
}

fn tls(ca: &str) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca).expect("the CA file");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(c.expect("a PEM certificate")).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn online_count(http: &reqwest::Client, a: &Args) -> usize {
    let list: Value = http
        .get(format!("{}/api/v1/devices", a.server))
        .bearer_auth(&a.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = list
        .as_array()
        .or_else(|| list["devices"].as_array())
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .filter(|d| d["mqtt_id"].is_string() && d["mqtt_connected_at"].is_string())
        .count()
}

pub async fn run(a: Args) -> bool {
    let http = reqwest::Client::new();
    // The devices, as the admin adds them.
    let added: Vec<(String, String, String)> = stream::iter(0..a.devices)
        .map(|i| {
            let http = http.clone();
            let (server, token) = (a.server.clone(), a.admin_token.clone());
            async move {
                let v: Value = http
                    .post(format!("{server}/api/v1/esp-admin/devices"))
                    .bearer_auth(token)
                    .json(&json!({ "name": format!("mqtt-bench-{i}") }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (
                    v["id"].as_str().expect("an id").to_owned(),
                    v["api_key"].as_str().unwrap().to_owned(),
                    v["device"]["mac"].as_str().unwrap().to_owned(),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let (host, port) = a.broker.rsplit_once(':').expect("--broker host:port");
    let port: u16 = port.parse().unwrap();
    let tls = a.ca.as_deref().map(tls);
    let sent = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let go = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let cpu0 = ticks(&a.pids);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (id, key, _) in &added {
        let mut o = MqttOptions::new(id.clone(), host, port);
        o.set_credentials(id.clone(), key.clone());
        o.set_keep_alive(Duration::from_secs(30));
        o.set_last_will(LastWill::new(
            format!("device/{id}/report/status"),
            r#"{"status":"disconnected"}"#,
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(t) = &tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                t.clone(),
            )));
        }
        let (client, mut events) = AsyncClient::new(o, 256);
        let (id, sent, connected, go, stop) = (
            id.clone(),
            sent.clone(),
            connected.clone(),
            go.clone(),
            stop.clone(),
        );
        let rate = a.rate;
        tasks.push(tokio::spawn(async move {
            // The event loop, on its own: acknowledgements and the retained commands.
            let c2 = client.clone();
            let id2 = id.clone();
            let connected2 = connected.clone();
            let poll = tokio::spawn(async move {
                let mut up = false;
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) if !up => {
                            up = true;
                            let _ = c2
                                .subscribe(format!("device/{id2}/command/+"), QoS::AtLeastOnce)
                                .await;
                            let _ = c2
                                .publish(
                                    format!("device/{id2}/report/status"),
                                    QoS::AtLeastOnce,
                                    true,
                                    r#"{"status":"connected"}"#,
                                )
                                .await;
                            connected2.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            });
            go.notified().await;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        n += 1;
                        if client
                            .publish(format!("device/{id}/logs/info"), QoS::AtMostOnce, false, format!("[bench] line {n}"))
                            .await
                            .is_ok()
                        {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            // Let the last lines leave before the connection goes.
            tokio::time::sleep(Duration::from_millis(500)).await;
            poll.abort();
        }));
    }
    // Connected, and seen online by otafleet.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = connected.load(Ordering::Relaxed);
        if up == a.devices as u64 && online_count(&http, &a).await == a.devices as usize {
            break;
        }
        if Instant::now() > deadline {
            println!(
                "mqtt: only {up} of {} devices connected / {} online after 120 s",
                a.devices,
                online_count(&http, &a).await
            );
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let online_s = t0.elapsed().as_secs_f64();
    let cpu_connect = ticks(&a.pids);
    let rss_connected = rss(&a.pids);

    // The load.
    let cpu1 = ticks(&a.pids);
    let t1 = Instant::now();
    go.notify_waiters();
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let wall = t1.elapsed().as_secs_f64();
    // What otafleet kept: every device's buffer, read back once the lines had time to land.
    let want = sent.load(Ordering::Relaxed);
    let mut got = 0u64;
    let read_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts: Vec<u64> = stream::iter(added.iter())
            .map(|(_, _, mac)| {
                let http = http.clone();
                let (server, token) = (a.server.clone(), a.admin_token.clone());
                async move {
                    let v: Value = http
                        .get(format!("{server}/api/v1/devices/{mac}/logs?limit=1000"))
                        .bearer_auth(token)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    v["lines"].as_array().map_or(0, |l| l.len() as u64)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let now: u64 = counts.iter().sum();
        if now == got || now >= want || Instant::now() > read_deadline {
            got = now;
            break;
        }
        got = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let cpu2 = ticks(&a.pids);
    let rss_load = rss(&a.pids);
    let pct = |a: Option<u64>, b: Option<u64>, secs: f64| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.1}",
            (b - a) as f64 * crate::tick_us() / 1e6 / secs * 100.0
        ),
        _ => "?".into(),
    };
    let us_per = match (cpu1, cpu2) {
        (Some(a), Some(b)) if got > 0 => {
            format!("{:.1}", (b - a) as f64 * crate::tick_us() / got as f64)
        }
        _ => "?".into(),
    };
    let mib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0));
    println!(
        "mqtt devices={} rate={}/s each: all online in {online_s:.1} s (CPU {}% of one core), RSS connected {} MiB; sent {want} lines in {wall:.1} s ({:.0}/s), otafleet kept {got} ({:.1}%), {:.0} lines/s kept, CPU {}% of one core = {us_per} us/line, RSS under load {} MiB",
        a.devices,
        a.rate,
        pct(cpu0, cpu_connect, online_s),
        mib(rss_connected),
        want as f64 / wall,
        got as f64 * 100.0 / want.max(1) as f64,
        got as f64 / wall,
        pct(cpu1, cpu2, wall),
        mib(rss_load),
    );
    true
}
