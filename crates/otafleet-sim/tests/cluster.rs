//! Several instances, one truth (issue 18): a throwaway PostgreSQL (`scripts/pg`), a real S3
//! server (`s3s-fs`) and three `otafleet serve` instances (each its own data directory; the same
//! admin token, `--database-url`, `--blob-url`; mDNS off; instance 1 `--cluster-role primary`)
//! behind nginx (its own config in a temporary folder, `daemon off`, run as this test's child).
//! All on 127.0.0.1.
//!
//! 1. An image uploaded and deployed through instance 1 is offered through instances 2 and 3 —
//!    to a device whose "nothing to do" instance 2 remembered just before (the deployment must
//!    reach its memory: `cluster.rs`).
//! 2. A device's progress reported to instance 2 reaches an event-stream client of instance 3.
//! 3. `otafleet-sim` runs 1,000 devices of every protocol through nginx for one update wave —
//!    the five HTTP ones, and 50 ESP Admin devices. Those are created through whichever
//!    instance nginx picks (round-robin: most through a worker, so the primary's MQTT bridge
//!    learns of them from the others' events), and every instance's settings name the
//!    primary's embedded broker (instance 1 runs it and the bridge; the workers name it,
//!    `--mqtt-device-uri`); instance 2 is killed with SIGKILL mid-wave and started
//!    again. The run must end with 0 unexpected failures, and the server's records (each
//!    device's current image and latest attempt, read through the admin API) must agree with
//!    the sim's.
//!
//! Every wait is for a condition, up to [`DEADLINE`]. Needs `nginx` and `s3s-fs` (scripts/setup-deps
//! installs both) and PostgreSQL 15 (`scripts/pg`); without one of them the test says SKIPPED, and
//! fails under `CI=true`.

#[path = "support/bin.rs"]
mod bin_support;
use bin_support::otafleet;

#[path = "../../otafleet-core/tests/support/s3s.rs"]
mod s3s;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use otafleet_sim::config::Protocol;
use otafleet_sim::device::Outcome;
use otafleet_sim::{Args, Config, Summary};
use serde_json::{json, Value};

const TOKEN: &str = "cluster-test-admin";
const SECRET: &str = "cluster-test-legacy-secret";
const DEVICES: usize = 1000;
/// The longest wait for any condition but the whole wave.
const DEADLINE: Duration = Duration::from_secs(60);
/// The longest the wave of 1,000 devices may take (about 70 s in a debug build on 2 cores).
const WAVE_DEADLINE: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(50);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cluster test: {why}; CI must run it");
    }
    eprintln!("SKIPPED: cluster test: {why}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn which(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A throwaway PostgreSQL cluster (`scripts/pg start DIR`), stopped when dropped.
struct Pg {
    dir: tempfile::TempDir,
    url: String,
}

impl Pg {
    fn start() -> Option<Pg> {
        if which("initdb", &["/usr/lib/postgresql/15/bin"]).is_none()
            && std::env::var_os("OTAFLEET_PGBIN").is_none()
        {
            skip("PostgreSQL 15 is not installed (scripts/setup-deps installs it)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("bash")
            .arg(repo().join("scripts/pg"))
            .arg("start")
            .arg(dir.path().join("pg"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/pg");
        assert!(out.status.success(), "scripts/pg start: {:?}", out.status);
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(url.starts_with("postgres://"), "scripts/pg printed {url:?}");
        Some(Pg { dir, url })
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/pg"))
            .arg("stop")
            .arg(self.dir.path().join("pg"))
            .status();
    }
}

/// One `otafleet serve` of the cluster; killed when dropped.
struct Instance {
    child: Child,
    port: u16,
}

struct Cluster {
    bin: PathBuf,
    pg: String,
    s3: String,
    data: tempfile::TempDir,
    /// The primary's embedded MQTT broker (plain: TLS is off in this test).
    mqtt_port: u16,
}

impl Cluster {
    fn start(&self, n: usize, port: u16) -> Instance {
        let role = if n == 1 { "primary" } else { "worker" };
        // The primary runs the broker and the bridge; a worker names that broker to the
        // ESP Admin devices whose settings it serves.
        let mqtt = if n == 1 {
            vec![
                "--mqtt".to_string(),
                "embedded".to_string(),
                "--mqtt-port".to_string(),
                self.mqtt_port.to_string(),
            ]
        } else {
            vec![
                "--mqtt-device-uri".to_string(),
                format!("mqtt://127.0.0.1:{}", self.mqtt_port),
            ]
        };
        let mut child = Command::new(&self.bin)
            .args(["serve", "--no-mdns", "--admin-token", TOKEN])
            .args(["--https-port", "off", "--tls", "off"])
            .args(&mqtt)
            .args(["--legacy-device-secret", SECRET])
            .args(["--database-url", &self.pg, "--blob-url", &self.s3])
            .args(["--cluster-role", role, "--trusted-proxy", "127.0.0.1/32"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(self.data.path().join(format!("instance{n}")))
            .env("RUST_LOG", "warn")
            .env("AWS_ACCESS_KEY_ID", s3s::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", s3s::SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("OTAFLEET_TEST_DATABASE_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start otafleet serve");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let want = format!("otafleet listening on http://127.0.0.1:{port}");
        let end = Instant::now() + DEADLINE;
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with(&want) => break,
                Ok(_) => {}
                Err(_) => {
                    let status = child.try_wait();
                    panic!("instance {n} never said \"{want}\" (exit: {status:?})");
                }
            }
        }
        Instance { child, port }
    }
}

impl Instance {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// nginx in front of the instances, as docs/deployment.md configures it; killed when dropped.
struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    fn start(bin: &Path, upstreams: &[u16]) -> Nginx {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        // As root, nginx's workers would switch to `nobody`, who cannot enter the temp folder.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let user = if root { "user root;" } else { "" };
        let conf = format!(
            r#"daemon off;
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream otafleet {{
{servers}    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 64m;
    location / {{
      proxy_pass http://otafleet;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout http_502 http_503;
    }}
  }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let end = Instant::now() + DEADLINE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "nginx never listened on {port}");
            std::thread::sleep(POLL);
        }
        Nginx {
            child,
            _dir: dir,
            port,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: a fast shutdown, the master takes its worker with it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Poll `f` until it returns something, up to `deadline`.
async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < end, "waited {deadline:?} for {what}");
        tokio::time::sleep(POLL).await;
    }
}

async fn devices(http: &reqwest::Client, base: &str) -> Option<Vec<Value>> {
    let r = http
        // One page holds them all: the sim's 1,000 and this test's own device.
        .get(format!("{base}/api/v1/devices?limit=5000"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    match r.json::<Value>().await.ok()? {
        Value::Array(list) => Some(list),
        _ => None,
    }
}

fn state(d: &Value) -> &str {
    d["update"]["state"].as_str().unwrap_or("")
}

async fn checkin(http: &reqwest::Client, base: &str, token: Option<&str>) -> Value {
    let mut req = http
        .post(format!("{base}/api/v1/device/checkin"))
        .json(&json!({
            "mac": "02:C1:00:00:00:01",
            "chip": "esp32",
            "project": "cluster-blink",
            "version": "1.0.0",
            "free_space": 4_000_000,
        }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("check-in");
    assert!(r.status().is_success(), "check-in: {}", r.status());
    r.json().await.unwrap()
}

fn sim_config(base: &str) -> Config {
    let argv = [
        "otafleet-sim",
        "--server",
        base,
        "--admin-token",
        TOKEN,
        "--legacy-device-secret",
        SECRET,
        "--devices",
        &DEVICES.to_string(),
        "--protocols",
        "native=38,arduino=15,esp8266=15,esp32fota=15,legacy=12,esp-admin=5",
        "--interval",
        "2",
        "--reboot-ms",
        "500",
        "--no-progress",
        "--seed",
        "18",
        "--timeout",
        "500",
    ];
    Config::from_args(Args::parse_from(argv)).expect("valid arguments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_nginx_share_one_truth_and_ride_out_a_killed_instance() {
    let Some(bin) = otafleet() else {
        return;
    };
    let Some(nginx_bin) = which("nginx", &["/usr/sbin"]) else {
        skip("nginx is not installed (scripts/setup-deps installs it)");
        return;
    };
    let Some(s3) = s3s::start("cluster") else {
        return;
    };
    let Some(pg) = Pg::start() else {
        return;
    };
    let cluster = Cluster {
        bin,
        pg: pg.url.clone(),
        s3: s3.url(),
        data: tempfile::tempdir().expect("temp dir"),
        mqtt_port: free_port(),
    };
    let ports = [free_port(), free_port(), free_port()];
    // The first creates the schema; the others find it.
    let one = cluster.start(1, ports[0]);
    let mut two = cluster.start(2, ports[1]);
    let three = cluster.start(3, ports[2]);
    let nginx = Nginx::start(&nginx_bin, &ports);
    let http = reqwest::Client::new();

    // --- 1. a deployment made through instance 1 is offered through 2 and 3 -----------------
    // The device checks in at instance 2 first: "nothing to do", remembered there.
    let first = checkin(&http, &two.base(), None).await;
    let token = first["token"].as_str().expect("a token").to_string();
    assert!(first["update"].is_null(), "{first}");
    let again = checkin(&http, &two.base(), Some(&token)).await;
    assert!(again["update"].is_null(), "{again}");

    let image = otafleet_image::synth::AppImage::new(otafleet_image::Chip::Esp32)
        .project("cluster-blink")
        .version("2.0.0")
        .payload_len(200_000)
        .build();
    let r = http
        .post(format!("{}/api/v1/firmware", one.base()))
        .bearer_auth(TOKEN)
        .query(&[("filename", "cluster-blink.bin")])
        .header("content-type", "application/octet-stream")
        .body(image)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "upload: {}", r.status());
    let fw: Value = r.json().await.unwrap();
    let r = http
        .post(format!("{}/api/v1/deployments", one.base()))
        .bearer_auth(TOKEN)
        .json(&json!({"firmware_id": fw["id"], "project": "cluster-blink", "chip": "esp32"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "deploy: {}", r.status());

    // The same report to instance 2 (which remembered "nothing") and to instance 3.
    let offered = wait_for("instance 2 to offer the deployment", DEADLINE, || async {
        let a = checkin(&http, &two.base(), Some(&token)).await;
        (!a["update"].is_null()).then_some(a)
    })
    .await;
    assert_eq!(offered["update"]["version"], "2.0.0", "{offered}");
    let at_three = checkin(&http, &three.base(), Some(&token)).await;
    assert_eq!(
        at_three["update"]["id"], offered["update"]["id"],
        "instance 3 offers the same attempt: {at_three}"
    );
    // The image itself comes from every instance (S3 → each one's cache).
    let url = offered["update"]["url"].as_str().expect("an image URL");
    let path = url
        .find("/api/")
        .map(|i| &url[i..])
        .unwrap_or_else(|| panic!("url {url}"));
    for base in [two.base(), three.base()] {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "download at {base}: {}",
            r.status()
        );
        assert_eq!(
            r.bytes().await.unwrap().len(),
            fw["size"].as_u64().unwrap() as usize
        );
    }

    // --- 2. progress reported to instance 2 reaches a client of instance 3's event stream -----
    let mut stream = http
        .get(format!("{}/api/v1/events", three.base()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(stream.status().is_success());
    let r = http
        .post(format!("{}/api/v1/device/progress", two.base()))
        .bearer_auth(&token)
        .json(
            &json!({"update_id": offered["update"]["id"], "state": "downloading", "progress": 40}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "progress: {}", r.status());
    let mut seen = String::new();
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => {
                panic!("instance 3's event stream ended or timed out ({other:?}); got:\n{seen}")
            }
        }
        let found = seen.split("\n\n").any(|frame| {
            frame.starts_with("event: update")
                && frame.contains("\"02:C1:00:00:00:01\"")
                && frame.contains("\"downloading\"")
        });
        if found {
            break;
        }
    }
    drop(stream);

    // --- 3. 1,000 devices through nginx; instance 2 killed mid-wave and restarted ------------
    let lb = format!("http://127.0.0.1:{}", nginx.port);
    let started = Instant::now();
    let sim = tokio::spawn(otafleet_sim::run(sim_config(&lb)));
    let sim_devices = |list: &[Value]| -> Vec<Value> {
        list.iter()
            .filter(|d| d["mac"].as_str() != Some("02:C1:00:00:00:01"))
            .cloned()
            .collect()
    };
    let (offered, done) = wait_for("the wave under way", WAVE_DEADLINE, || async {
        let list = sim_devices(&devices(&http, &one.base()).await?);
        let offered = list.iter().filter(|d| !d["update"].is_null()).count();
        let done = list.iter().filter(|d| state(d) == "done").count();
        (list.len() == DEVICES
            && offered >= DEVICES / 4
            && done >= 1
            && DEVICES - done >= DEVICES / 4)
            .then_some((offered, done))
    })
    .await;
    eprintln!(
        "killing instance 2 (SIGKILL) {:.1} s into the run: {offered} devices offered the image, {done} done",
        started.elapsed().as_secs_f64()
    );
    two.kill();
    two = cluster.start(2, ports[1]);
    eprintln!(
        "instance 2 is back ({:.1} s)",
        started.elapsed().as_secs_f64()
    );

    let summary: Summary = tokio::time::timeout(WAVE_DEADLINE, sim)
        .await
        .expect("the wave ends in time")
        .expect("the sim does not panic")
        .expect("the run completes");
    println!("{summary}");
    eprintln!(
        "the wave of {DEVICES} devices took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(summary.failed_unexpected, 0, "{summary}");
    assert_eq!(summary.errors(), 0, "{summary}");
    assert!(summary.success(), "{summary}");
    assert_eq!(summary.updated, DEVICES, "{summary}");
    assert_eq!(
        summary.per_protocol.keys().copied().collect::<Vec<_>>(),
        Protocol::EVERY,
        "{summary}"
    );
    let check = summary
        .server_check
        .as_ref()
        .expect("an admin run reads back");
    assert!(
        check.mismatches.is_empty() && check.checked == DEVICES && check.in_flight == 0,
        "the server's records agree with every device: {check:?}"
    );

    // The server's own records, read through each instance (the restarted one too): every
    // device runs the image the sim says, and its latest attempt is done with that image.
    for base in [one.base(), two.base(), three.base()] {
        let list = sim_devices(&devices(&http, &base).await.expect("the device list"));
        assert_eq!(list.len(), DEVICES, "{base}");
        for r in &summary.results {
            assert!(
                matches!(r.outcome, Outcome::Updated { .. }),
                "{} ({}): {:?}",
                r.mac,
                r.protocol.name(),
                r.outcome
            );
            let d = list
                .iter()
                .find(|d| d["mac"].as_str() == Some(r.mac.as_str()))
                .unwrap_or_else(|| panic!("{base} lists {}", r.mac));
            assert_eq!(state(d), "done", "{base}: {}", r.mac);
            assert_eq!(
                d["update"]["sha256"].as_str(),
                Some(r.runs.sha256.as_str()),
                "{base}: {}: the latest attempt installs what the device runs",
                r.mac
            );
            if r.protocol == Protocol::Legacy {
                assert_eq!(
                    d["version"].as_str(),
                    Some(r.runs.version.as_str()),
                    "{}",
                    r.mac
                );
            } else {
                assert_eq!(
                    d["sha256"].as_str(),
                    Some(r.runs.sha256.as_str()),
                    "{}",
                    r.mac
                );
            }
        }
    }
    drop(nginx);
    drop((one, two, three));
}
