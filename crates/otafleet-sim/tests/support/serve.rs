//! The real `otafleet serve` as a child process on 127.0.0.1 (mDNS off, HTTPS on the same port
//! with `--tls auto`, no port 443), for the simulator's tests that need what only the binary
//! runs — the MQTT broker and its bridge for ESP Admin devices. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest wait for the server to say where it listens.
const START_DEADLINE: Duration = Duration::from_secs(90);

pub struct Serve {
    pub child: Child,
    pub base: String,
}

impl Serve {
    /// With the embedded broker on a free port, admin token `token`, and `extra` flags.
    pub fn start(bin: &Path, data: &Path, token: &str, extra: &[&str]) -> Serve {
        let mut flags = vec!["--mqtt", "embedded", "--mqtt-port", "0"];
        flags.extend_from_slice(extra);
        Serve::start_with(bin, data, token, &flags, None)
    }

    /// With `flags` (the MQTT ones among them: the embedded broker's address is waited for
    /// when they ask for it); `password`: otafleet's own password on the user's broker.
    pub fn start_with(
        bin: &Path,
        data: &Path,
        token: &str,
        flags: &[&str],
        password: Option<&str>,
    ) -> Serve {
        let embedded = flags.windows(2).any(|w| w == ["--mqtt", "embedded"]);
        let mut cmd = Command::new(bin);
        if let Some(p) = password {
            cmd.env("OTAFLEET_MQTT_PASSWORD", p);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--no-mdns"])
            .args(["--https-port", "off", "--tls", "auto"])
            .args(flags)
            .args(["--admin-token", token])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start otafleet serve");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let end = Instant::now() + START_DEADLINE;
        // The embedded broker says where it listens; the user's broker is known already.
        let (mut base, mut broker) = (None, !embedded);
        while base.is_none() || !broker {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(a) = line.trim().strip_prefix("otafleet listening on http://") {
                        base = Some(format!("http://{a}"));
                    }
                    broker |= line.starts_with("otafleet MQTT broker on: mqtts://");
                }
                Err(_) => {
                    let status = child.try_wait();
                    panic!("otafleet serve never said where it listens and where its broker is (exit: {status:?})");
                }
            }
        }
        Serve {
            child,
            base: base.expect("the listening line"),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
