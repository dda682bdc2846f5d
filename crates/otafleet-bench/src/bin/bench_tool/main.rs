//! `bench-tool`: the parts of bench/run.sh that need more than curl.
//!
//! - `enroll`: check N devices in over the native protocol and write `{mac, token}` pairs as a Lua
//!   table, so wrk's check-in script can replay authenticated check-ins (an enrolled device
//!   without its token is refused, by design).
//! - `inflight`: open N downloads with a tiny receive buffer and read only their first bytes, so
//!   every one stays in flight on the server like a slow ESP32; read the server's RSS at steps.
//! - `image`: write a synthetic app image of a given size and project (the download benchmark's
//!   file, and the images the check rows run and are offered).
//! - `ranges`: an ESP-IDF partial download, 64 KiB ranges over one connection, every answer
//!   checked, timed per range (`ranges.rs`).
//! - `legacy-setup`: the "ESP32 OTA Update Server" check on otafleet or on that server itself:
//!   its image and devices added through the admin API both speak, tokens as a Lua table
//!   (`legacy.rs`).
//! - `progress`: the cost of a progress report at a small and at a large fleet, and their ratio
//!   (`progress.rs`).
//! - `sse`: hold event-stream clients that read everything they are sent (`sse.rs`).
//! - `commands`: devices long-polling for commands; delivery time of commands queued through the
//!   admin API, and the memory the waiting devices cost (`commands.rs`).
//! - `mqtt`: ESP Admin devices on a broker sending log lines: time until all are online, lines
//!   kept per second, server CPU and RSS (`mqtt.rs`).
//! - `logs`: devices sending log lines while a viewer per device watches its stream: delivery
//!   time, throughput, server CPU and RSS (`logs.rs`).

use std::io::Write;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures_util::stream::{self, StreamExt};
use otafleet_bench::rss_kib;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod commands;
mod legacy;
mod logs;
mod mqtt;
mod progress;
mod ranges;
mod sse;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Enroll {
        #[arg(long)]
        server: String,
        #[arg(long, default_value_t = 1000)]
        devices: u32,
        #[arg(long, default_value = "bench")]
        project: String,
        /// The Lua file to write (nothing written when absent).
        #[arg(long)]
        lua: Option<String>,
        /// First byte pair of the MACs' last three, to keep batches apart.
        #[arg(long, default_value_t = 0xB0)]
        prefix: u8,
    },
    /// Write a valid synthetic ESP32 app image of about SIZE bytes.
    Image {
        #[arg(long)]
        size: usize,
        #[arg(long)]
        version: String,
        #[arg(long, default_value = "bench")]
        project: String,
        #[arg(long)]
        out: String,
    },
    /// Read an image in ranges over one kept-alive connection, as ESP-IDF's partial download.
    Ranges {
        /// Label for the printed line.
        #[arg(long)]
        name: String,
        /// host:port of the server.
        #[arg(long)]
        addr: String,
        /// Path of the image.
        #[arg(long)]
        path: String,
        /// The image's bytes, to check every answer against.
        #[arg(long)]
        file: String,
        #[arg(long, default_value_t = 65536)]
        piece: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    /// Add "ESP32 OTA Update Server" devices and their image through the legacy admin API.
    LegacySetup {
        #[arg(long)]
        server: String,
        /// `X-Admin-API-Key`.
        #[arg(long)]
        admin_key: String,
        /// The devices' shared secret (their `OTA_UPDATE_KEY`).
        #[arg(long)]
        secret: String,
        /// The image file the devices run.
        #[arg(long)]
        image: String,
        /// Its name in the library (`name_vX.Y.Z.bin`).
        #[arg(long)]
        filename: String,
        /// The version the devices run and are targeted at.
        #[arg(long)]
        version: String,
        #[arg(long, default_value_t = 1000)]
        devices: u32,
        /// The Lua file to write.
        #[arg(long)]
        lua: String,
    },
    Progress {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "bench")]
        admin_token: String,
        /// Server process whose CPU time to read (from /proc).
        #[arg(long)]
        pid: Option<u32>,
        /// Devices that report progress: the small fleet.
        #[arg(long, default_value_t = 10)]
        reporters: u32,
        /// Enrolled devices in all for the second measurement.
        #[arg(long, default_value_t = 50_000)]
        fleet: u32,
        /// Reports per round.
        #[arg(long, default_value_t = 4000)]
        reports: u32,
        /// Reports in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// Exit non-zero when large/small is above this.
        #[arg(long, default_value_t = 1.5)]
        max_ratio: f64,
    },
    Commands {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "bench")]
        admin_token: String,
        /// Server process whose RSS to read (from /proc).
        #[arg(long)]
        pid: Option<u32>,
        #[arg(long, default_value_t = 1000)]
        devices: u32,
        /// Commands to queue.
        #[arg(long, default_value_t = 500)]
        commands: u32,
        /// Commands queued per second.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Seconds the devices wait before the commands are queued.
        #[arg(long, default_value_t = 0.0)]
        hold_seconds: f64,
    },
    Logs {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "bench")]
        admin_token: String,
        /// Server process whose CPU time and RSS to read (from /proc).
        #[arg(long)]
        pid: Option<u32>,
        #[arg(long, default_value_t = 50)]
        devices: u32,
        /// Lines a second per device.
        #[arg(long, default_value_t = 20)]
        rate: u32,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        #[arg(long, default_value = "logbench")]
        project: String,
        /// First byte of the MACs' last three (two runs at once need different ones).
        #[arg(long, default_value_t = 0xC4)]
        prefix: u8,
    },
    Mqtt {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "bench")]
        admin_token: String,
        /// Processes whose CPU time and RSS to add up (repeatable: otafleet, an outside broker).
        #[arg(long = "pid")]
        pids: Vec<u32>,
        /// host:port of the broker the devices connect to.
        #[arg(long)]
        broker: String,
        /// The broker's CA (PEM): TLS; absent, plain MQTT.
        #[arg(long)]
        ca: Option<String>,
        #[arg(long, default_value_t = 1000)]
        devices: u32,
        /// Log lines a second per device.
        #[arg(long, default_value_t = 1)]
        rate: u32,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
    },
    Sse {
        /// host:port of the server.
        #[arg(long)]
        addr: String,
        #[arg(long, default_value = "bench")]
        admin_token: String,
        #[arg(long, default_value_t = 550)]
        clients: usize,
    },
    Inflight {
        /// host:port of the server.
        #[arg(long)]
        addr: String,
        /// Path of the image download.
        #[arg(long)]
        path: String,
        /// Server process whose RSS to read.
        #[arg(long)]
        pid: u32,
        /// Steps of downloads in flight at which RSS is read.
        #[arg(long, value_delimiter = ',', default_value = "0,250,500,1000")]
        steps: Vec<usize>,
    },
}

#[tokio::main]
async fn main() {
    match Cli::parse().cmd {
        Cmd::Enroll {
            server,
            devices,
            project,
            lua,
            prefix,
        } => enroll(&server, devices, &project, lua, prefix).await,
        Cmd::Commands {
            server,
            admin_token,
            pid,
            devices,
            commands,
            rate,
            hold_seconds,
        } => {
            let ok = commands::run(commands::Args {
                server,
                admin_token,
                pid,
                devices,
                commands,
                rate,
                hold_seconds,
            })
            .await;
            if !ok {
                eprintln!("bench-tool commands: commands were not delivered (see the line above)");
                std::process::exit(1);
            }
        }
        Cmd::Logs {
            server,
            admin_token,
            pid,
            devices,
            rate,
            seconds,
            project,
            prefix,
        } => {
            let ok = logs::run(logs::Args {
                server,
                admin_token,
                pid,
                devices,
                rate,
                seconds,
                project,
                prefix,
            })
            .await;
            if !ok {
                eprintln!(
                    "bench-tool logs: lines were lost, refused or lagged (see the line above)"
                );
                std::process::exit(1);
            }
        }
        Cmd::Mqtt {
            server,
            admin_token,
            pids,
            broker,
            ca,
            devices,
            rate,
            seconds,
        } => {
            let ok = mqtt::run(mqtt::Args {
                server,
                admin_token,
                pids,
                broker,
                ca,
                devices,
                rate,
                seconds,
            })
            .await;
            if !ok {
                std::process::exit(1);
            }
        }
        Cmd::Inflight {
            addr,
            path,
            pid,
            steps,
        } => inflight(&addr, &path, pid, &steps).await,
        Cmd::Progress {
            server,
            admin_token,
            pid,
            reporters,
            fleet,
            reports,
            concurrency,
            rounds,
            max_ratio,
        } => {
            let ok = progress::run(progress::Args {
                server,
                admin_token,
                pid,
                reporters,
                fleet,
                reports,
                concurrency,
                rounds,
                max_ratio,
            })
            .await;
            if !ok {
                eprintln!("progress reports at the large fleet cost more than {max_ratio}x their cost at the small one");
                std::process::exit(1);
            }
        }
        Cmd::Sse {
            addr,
            admin_token,
            clients,
        } => sse::run(&addr, &admin_token, clients).await,
        Cmd::Ranges {
            name,
            addr,
            path,
            file,
            piece,
            seconds,
        } => {
            if let Err(e) = ranges::run(ranges::Args {
                name,
                addr,
                path,
                file,
                piece,
                seconds,
            })
            .await
            {
                eprintln!("ranges: wrong answer: {e}");
                std::process::exit(1);
            }
        }
        Cmd::LegacySetup {
            server,
            admin_key,
            secret,
            image,
            filename,
            version,
            devices,
            lua,
        } => {
            if let Err(e) = legacy::run(legacy::Args {
                server,
                admin_key,
                secret,
                image,
                filename,
                version,
                devices,
                lua,
            })
            .await
            {
                eprintln!("legacy-setup: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Image {
            size,
            version,
            project,
            out,
        } => {
            let bytes = otafleet_image::synth::AppImage::new(otafleet_image::Chip::Esp32)
                .project(&project)
                .version(&version)
                .payload_len(size.saturating_sub(1024))
                .build();
            std::fs::write(&out, &bytes).expect("write image");
            println!("{out}: {} bytes", bytes.len());
        }
    }
}

async fn enroll(server: &str, n: u32, project: &str, lua: Option<String>, prefix: u8) {
    let pairs = enroll_macs(server, n, project, prefix, 32).await;
    println!("enrolled {} devices", pairs.len());
    if let Some(path) = lua {
        let mut f = std::fs::File::create(&path).expect("create lua file");
        // In functions of 5,000 devices each: LuaJIT refuses one table constructor or function
        // with the 200,000 constants of 100,000 devices.
        writeln!(f, "devices = {{}}").unwrap();
        for chunk in pairs.chunks(5000) {
            writeln!(f, "chunk = function() local d = devices").unwrap();
            for (mac, token) in chunk {
                writeln!(f, "  d[#d + 1] = {{\"{mac}\", \"{token}\"}}").unwrap();
            }
            writeln!(f, "end; chunk()").unwrap();
        }
    }
}

/// Enrol `n` devices over the native check-in, `parallel` at a time; their `(mac, token)`.
pub(crate) async fn enroll_macs(
    server: &str,
    n: u32,
    project: &str,
    prefix: u8,
    parallel: usize,
) -> Vec<(String, String)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(parallel)
        .build()
        .unwrap();
    let url = format!("{server}/api/v1/device/checkin");
    stream::iter(0..n)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let mac = format!(
                "02:BE:{prefix:02X}:{:02X}:{:02X}:{:02X}",
                (i >> 16) as u8,
                (i >> 8) as u8,
                i as u8
            );
            let body = json!({"mac": mac, "chip": "esp32", "project": project, "version": "1.0.0"});
            async move {
                let r = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .expect("check-in");
                assert!(r.status().is_success(), "enrol {mac}: {}", r.status());
                let v: serde_json::Value = r.json().await.unwrap();
                (
                    mac,
                    v["token"]
                        .as_str()
                        .expect("a token on enrolment")
                        .to_string(),
                )
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

/// utime + stime of a process, in clock ticks, from `/proc/<pid>/stat`.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Microseconds per clock tick (`CLK_TCK` is 100 on Linux).
pub(crate) fn tick_us() -> f64 {
    1e6 / 100.0
}

async fn inflight(addr: &str, path: &str, pid: u32, steps: &[usize]) {
    let mut held = Vec::new();
    for &target in steps {
        while held.len() < target {
            held.push(open_stalled(addr, path).await);
        }
        // Let the server fill its buffers for the new connections before reading RSS.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let rss = rss_kib(pid).unwrap_or(0);
        println!(
            "in_flight={target} rss_kib={rss} rss_mb={:.1}",
            rss as f64 / 1024.0
        );
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss = rss_kib(pid).unwrap_or(0);
    println!(
        "in_flight=0(after) rss_kib={rss} rss_mb={:.1}",
        rss as f64 / 1024.0
    );
}

/// A download that has sent its request, read the status line, and then reads nothing more.
async fn open_stalled(addr: &str, path: &str) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut s = sock.connect(addr.parse().unwrap()).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s
}
