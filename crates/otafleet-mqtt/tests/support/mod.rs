//! What the MQTT tests share: a real Mosquitto started per test with the documented
//! configuration (docs/mqtt.md), devices played by paho (`device.py`), a real `Fleet` in a temp
//! dir, and waiting for conditions with a deadline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How long any condition may take before the test fails (generous: a loaded 2-core machine).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Poll `f` until it returns `Some`, or fail with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's Python, which has python3-paho-mqtt (a pyenv Python on PATH may not).
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn need(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "{tool} is not installed: run scripts/setup-deps (apt-get install mosquitto mosquitto-clients python3-paho-mqtt)"
    );
}

/// A Mosquitto of the test's own on 127.0.0.1, configured as docs/mqtt.md says: no anonymous
/// clients, a password per device (user = its id), pattern ACLs that give each device only its
/// own topics, and otafleet's user all of `device/#`.
pub struct Mosquitto {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub async fn start(users: &[(&str, &str)]) -> Mosquitto {
        need("mosquitto");
        need("mosquitto_passwd");
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "").unwrap();
        for (u, p) in users {
            let st = std::process::Command::new("mosquitto_passwd")
                .arg("-b")
                .arg(&passwd)
                .arg(u)
                .arg(p)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let acl = dir.path().join("acl");
        std::fs::write(&acl, include_str!("../../../../docs/mqtt/mosquitto.acl")).unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\nuse_username_as_clientid true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n",
                passwd.display(),
                acl.display()
            ),
        )
        .unwrap();
        let bin = if Path::new("/usr/sbin/mosquitto").exists() {
            "/usr/sbin/mosquitto"
        } else {
            "mosquitto"
        };
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for("mosquitto to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        Mosquitto {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// How a device reaches a broker.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub port: u16,
    /// The CA file for TLS; `None`: plain MQTT.
    pub ca: Option<PathBuf>,
}

/// A device played by paho: one connection, as the ESP Admin SDK keeps one.
pub struct Device {
    pub id: String,
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::UnboundedReceiver<Value>,
    /// Every event seen so far, in order.
    pub seen: Vec<Value>,
    /// Events received but not yet matched by a wait, in order.
    pending: std::collections::VecDeque<Value>,
}

impl Device {
    /// Connect with `user`/`password` (the SDK: user = id, password = API key) and a last will
    /// on `will` (default: its own `report/status`). Waits for the CONNACK and returns its code
    /// in `seen`; a refused device is still returned (see [`Device::connack`]).
    pub async fn connect(
        at: &Endpoint,
        id: &str,
        user: &str,
        password: &str,
        will: Option<&str>,
    ) -> Device {
        // From the workspace root: this module is shared with the CLI's tests.
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crates/otafleet-mqtt/tests/support/device.py");
        let ca = at
            .ca
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut child = Command::new(python())
            .arg(script)
            .args(["127.0.0.1", &at.port.to_string(), id, user, password, &ca])
            .arg(will.unwrap_or(""))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with paho (python3-paho-mqtt)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut d = Device {
            id: id.to_owned(),
            child,
            stdin,
            rx,
            seen: Vec::new(),
            pending: Default::default(),
        };
        d.next_where("a CONNACK or an error", |e| {
            e["event"] == "connack" || e["event"] == "error"
        })
        .await;
        d
    }

    /// The CONNACK's return code (0 = accepted), or `None` when the connection failed outright.
    pub fn connack(&self) -> Option<i64> {
        self.seen
            .iter()
            .find(|e| e["event"] == "connack")
            .and_then(|e| e["rc"].as_i64())
    }

    async fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The oldest event not yet matched by a wait for which `pred` holds, waiting for it if
    /// needed; fails after [`DEADLINE`]. Events passed over stay for later waits.
    pub async fn next_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("found");
        }
        let end = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(end, self.rx.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                    self.pending.push_back(e);
                }
                Ok(None) => panic!(
                    "device {} exited while waiting for {what}; seen: {:?}",
                    self.id, self.seen
                ),
                Err(_) => panic!(
                    "device {} timed out waiting for {what}; seen: {:?}",
                    self.id, self.seen
                ),
            }
        }
    }

    /// Take in every event received so far (into `seen`, and pending for later waits).
    pub fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e.clone());
            self.pending.push_back(e);
        }
    }

    /// Forget the events received but not yet waited for that `pred` matches (stale copies).
    pub fn forget_pending(&mut self, pred: impl Fn(&Value) -> bool) {
        self.pending.retain(|e| !pred(e));
    }

    /// The next message on `topic`.
    pub async fn message(&mut self, topic: &str) -> Value {
        let t = topic.to_owned();
        self.next_where(&format!("a message on {topic}"), move |e| {
            e["event"] == "message" && e["topic"] == t.as_str()
        })
        .await
    }

    /// Subscribe and wait for the SUBACK; returns the granted codes (128 = refused).
    pub async fn subscribe(&mut self, filter: &str) -> Vec<i64> {
        self.send(serde_json::json!({ "sub": filter })).await;
        let e = self
            .next_where(&format!("SUBACK of {filter}"), |e| e["event"] == "suback")
            .await;
        e["granted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_i64().unwrap())
            .collect()
    }

    /// Publish (QoS 1 unless `qos` says) and wait until the broker acknowledged it.
    pub async fn publish(&mut self, topic: &str, payload: &str, retain: bool) {
        self.publish_qos(topic, payload, retain, 1).await;
    }

    pub async fn publish_qos(&mut self, topic: &str, payload: &str, retain: bool, qos: u8) {
        self.send(
            serde_json::json!({ "pub": topic, "payload": payload, "retain": retain, "qos": qos }),
        )
        .await;
        let t = topic.to_owned();
        self.next_where(&format!("the broker's ack of {topic}"), move |e| {
            e["event"] == "published" && e["topic"] == t.as_str()
        })
        .await;
    }

    /// What the SDK does once connected: subscribe to its commands, say it is connected.
    pub async fn come_online(&mut self) {
        let id = self.id.clone();
        let granted = self.subscribe(&format!("device/{id}/command/+")).await;
        assert_eq!(granted, vec![1], "own command topics granted at QoS 1");
        self.publish(
            &format!("device/{id}/report/status"),
            r#"{"status":"connected"}"#,
            true,
        )
        .await;
    }

    /// Cut the connection without a DISCONNECT (power loss): the broker publishes the will.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}
