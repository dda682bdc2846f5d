//! The embedded broker with real clients: Mosquitto's command-line clients as devices, over TLS
//! with a test CA, and rumqttc as otafleet's service client on the loopback service listener.
//! Every wait is for a condition, with a deadline; nothing sleeps blindly.

#[path = "support/tls.rs"]
mod tls_support;
use tls_support::tls_config;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otafleet_mqtt::broker::{Authority, Broker, BrokerOptions, Refusal};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

/// Long enough for a loaded two-core machine; only reached when something is wrong.
const DEADLINE: Duration = Duration::from_secs(30);

fn deadline() -> Instant {
    Instant::now() + DEADLINE
}

// ---------------------------------------------------------------------------------------------
// The test Authority: a map id → password, refusals recorded.

#[derive(Default)]
struct TestAuthority {
    passwords: HashMap<String, String>,
    refusals: Mutex<Vec<(String, Refusal, Option<SocketAddr>)>>,
}

#[async_trait::async_trait]
impl Authority for TestAuthority {
    async fn authenticate(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        _peer: Option<SocketAddr>,
    ) -> Result<(), String> {
        match self.passwords.get(client_id) {
            Some(p) if p == password && username == client_id => Ok(()),
            Some(_) => Err(format!("wrong password for {client_id}")),
            None => Err(format!("unknown device {client_id}")),
        }
    }

    async fn refused(&self, client_id: &str, refusal: Refusal, peer: Option<SocketAddr>) {
        self.refusals
            .lock()
            .unwrap()
            .push((client_id.to_owned(), refusal, peer));
    }
}

impl TestAuthority {
    fn refusals(&self) -> Vec<(String, Refusal, Option<SocketAddr>)> {
        self.refusals.lock().unwrap().clone()
    }

    /// Waits until `refusal` of `id` is recorded, and checks it came with the device's address.
    async fn wait_refusal(&self, id: &str, refusal: Refusal) {
        let until = deadline();
        loop {
            if let Some((_, _, peer)) = self
                .refusals()
                .into_iter()
                .find(|(i, r, _)| i == id && *r == refusal)
            {
                let peer = peer.expect("a refusal comes with the peer address");
                assert!(peer.ip().is_loopback(), "{peer}");
                return;
            }
            assert!(
                Instant::now() < until,
                "no refusal {refusal:?} of {id}; have {:?}",
                self.refusals()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The broker, with TLS from a test CA.

struct Setup {
    broker: Broker,
    authority: Arc<TestAuthority>,
    cafile: PathBuf,
    ca: rustls::pki_types::CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (tls, cafile, ca) = tls_config(dir.path());
    let authority = Arc::new(TestAuthority {
        passwords: [("A", "secret-A"), ("B", "secret-B")]
            .into_iter()
            .map(|(i, p)| (i.to_owned(), p.to_owned()))
            .collect(),
        ..Default::default()
    });
    let opts = BrokerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(tls),
    };
    let broker = Broker::start(opts, authority.clone())
        .await
        .expect("the broker starts");
    Setup {
        broker,
        authority,
        cafile,
        ca,
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------------------
// Devices: mosquitto_pub and mosquitto_sub.

impl Setup {
    /// mosquitto_pub/_sub's connection arguments for device `id` with `password`, over TLS.
    fn device(&self, tool: &str, id: &str, password: &str) -> Command {
        // Line-buffered: a client's output is read while it runs (with -d, its SUBACK line).
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "-eL", tool])
            .arg("--cafile")
            .arg(&self.cafile)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.broker.listen_addr().port().to_string(),
            ])
            .args(["-i", id, "-u", id, "-P", password])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `mosquitto_pub` as device `id`, publishing `payload` to `topic` with QoS 1.
    async fn publish(&self, id: &str, password: &str, topic: &str, payload: &str) -> Output {
        let mut cmd = self.device("mosquitto_pub", id, password);
        cmd.args(["-q", "1", "-t", topic, "-m", payload]);
        run(cmd).await
    }

    /// Starts `mosquitto_sub -d -v` as device `id` on `filters`, plus `extra` arguments.
    fn subscriber(&self, id: &str, password: &str, filters: &[&str], extra: &[&str]) -> Lines {
        let mut cmd = self.device("mosquitto_sub", id, password);
        cmd.args(["-d", "-v", "-q", "1"]);
        for f in filters {
            cmd.args(["-t", f]);
        }
        cmd.args(extra);
        Lines::spawn(cmd)
    }

    async fn service(&self) -> Service {
        let (user, password) = self.broker.service_credentials();
        let addr = self.broker.service_addr();
        assert!(addr.ip().is_loopback());
        Service::connect(addr, &user, &password).await
    }
}

struct Output {
    status: ExitStatus,
    text: String,
}

/// Runs a client to its end, within the deadline.
async fn run(mut cmd: Command) -> Output {
    let out = timeout_at(deadline(), cmd.output())
        .await
        .expect("the client ends in time")
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Output {
        status: out.status,
        text,
    }
}

/// A long-running client whose output (stdout and stderr) is read line by line.
struct Lines {
    child: Child,
    rx: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn spawn(mut cmd: Command) -> Lines {
        let mut child = cmd.spawn().expect("mosquitto clients are installed");
        let (tx, rx) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let forward = |r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                       tx: mpsc::UnboundedSender<String>| async move {
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        };
        tokio::spawn(forward(Box::new(stdout), tx.clone()));
        tokio::spawn(forward(Box::new(stderr), tx));
        Lines {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns the lines before it.
    async fn wait_for(&mut self, needle: &str) -> Vec<String> {
        let until = deadline();
        loop {
            match timeout_at(until, self.rx.recv()).await {
                Ok(Some(line)) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return self.seen[..self.seen.len() - 1].to_vec();
                    }
                }
                Ok(None) => panic!(
                    "the client ended before {needle:?}; it said {:#?}",
                    self.seen
                ),
                Err(_) => panic!("no {needle:?} in time; the client said {:#?}", self.seen),
            }
        }
    }

    /// Waits for the client to exit; returns its status.
    async fn exit(&mut self) -> ExitStatus {
        timeout_at(deadline(), self.child.wait())
            .await
            .expect("the client exits in time")
            .unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// otafleet's side: rumqttc on the service listener.

struct Service {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Packet>,
    /// Every publication received, in order.
    received: Vec<rumqttc::Publish>,
}

impl Service {
    async fn connect(addr: SocketAddr, user: &str, password: &str) -> Service {
        let mut opts = MqttOptions::new(format!("{user}-test"), addr.ip().to_string(), addr.port());
        opts.set_credentials(user, password)
            .set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    // The connection ended (the broker stopped, say): `next` reports it if waiting.
                    Err(_) => return,
                }
            }
        });
        let mut service = Service {
            client,
            rx,
            received: Vec::new(),
        };
        service.next(|p| matches!(p, Packet::ConnAck(_))).await;
        service
    }

    /// Waits for a packet `want` accepts, keeping the publications seen on the way.
    async fn next(&mut self, want: impl Fn(&Packet) -> bool) -> Packet {
        let until = deadline();
        loop {
            let p = timeout_at(until, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("not in time; received so far: {:#?}", self.received))
                .expect("the service client's connection ended");
            if let Packet::Publish(publish) = &p {
                self.received.push(publish.clone());
            }
            if want(&p) {
                return p;
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        let ack = self.next(|p| matches!(p, Packet::SubAck(_))).await;
        let Packet::SubAck(ack) = ack else {
            unreachable!()
        };
        assert!(
            matches!(
                ack.return_codes[..],
                [rumqttc::SubscribeReasonCode::Success(_)]
            ),
            "{ack:?}"
        );
    }

    async fn publish(&mut self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
        self.next(|p| matches!(p, Packet::PubAck(_))).await;
    }

    /// Waits for a publication on `topic`; returns it and the publications received before it.
    async fn wait_publish(&mut self, topic: &str) -> (rumqttc::Publish, Vec<rumqttc::Publish>) {
        if let Some(i) = self.received.iter().position(|p| p.topic == topic) {
            return (self.received[i].clone(), self.received[..i].to_vec());
        }
        self.next(|p| matches!(p, Packet::Publish(p) if p.topic == topic))
            .await;
        let i = self.received.len() - 1;
        (self.received[i].clone(), self.received[..i].to_vec())
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_log_in_with_their_own_password_over_tls_only() {
    let s = setup().await;

    let ok = s
        .publish("A", "secret-A", "device/A/report/hello", "hi")
        .await;
    assert!(ok.status.success(), "{}", ok.text);

    let wrong = s
        .publish("A", "secret-B", "device/A/report/hello", "hi")
        .await;
    assert!(!wrong.status.success(), "{}", wrong.text);
    assert!(
        wrong.text.contains("bad user name or password"),
        "{}",
        wrong.text
    );

    let unknown = s
        .publish("C", "secret-A", "device/C/report/hello", "hi")
        .await;
    assert!(!unknown.status.success(), "{}", unknown.text);
    assert!(
        unknown.text.contains("bad user name or password"),
        "{}",
        unknown.text
    );

    // Plain MQTT to the TLS port: the TLS handshake fails and the connection is closed.
    let mut plain = Command::new("mosquitto_pub");
    plain
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &s.broker.listen_addr().port().to_string(),
        ])
        .args([
            "-i",
            "A",
            "-u",
            "A",
            "-P",
            "secret-A",
            "-q",
            "1",
            "-t",
            "device/A/report/x",
            "-m",
            "x",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let plain = run(plain).await;
    assert!(!plain.status.success(), "{}", plain.text);

    // The service listener admits the service user only.
    let mut svc = Command::new("mosquitto_pub");
    let (user, _) = s.broker.service_credentials();
    svc.args([
        "-h",
        "127.0.0.1",
        "-p",
        &s.broker.service_addr().port().to_string(),
    ])
    .args([
        "-i",
        &format!("{user}-x"),
        "-u",
        &user,
        "-P",
        "guess",
        "-t",
        "x",
        "-m",
        "x",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let svc = run(svc).await;
    assert!(!svc.status.success(), "{}", svc.text);
    assert!(
        s.authority.refusals().is_empty(),
        "{:?}",
        s.authority.refusals()
    );
    s.broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_subscribes_to_its_own_commands_only() {
    let s = setup().await;
    let mut service = s.service().await;

    let mut a = s.subscriber(
        "A",
        "secret-A",
        &["device/B/command/+", "#", "device/A/command/+"],
        &[],
    );
    a.wait_for("Subscribed (mid: 1)").await;
    let suback = a.seen.last().unwrap().clone();

    // B's command first, then A's: when A has its own, B's would have come before it.
    service
        .publish("device/B/command/restart", "for-B", false)
        .await;
    service
        .publish("device/A/command/restart", "for-A", false)
        .await;
    let before = a.wait_for("device/A/command/restart for-A").await;
    assert!(!before.iter().any(|l| l.contains("for-B")), "{before:#?}");
    // mosquitto_sub -d prints the SUBACK's codes: failure (128) for B's and for #, QoS 1 for A's.
    assert!(suback.ends_with("): 128, 128, 1"), "{suback}");

    for filter in ["device/B/command/+", "#"] {
        let refusal = Refusal::Subscribe {
            filter: filter.into(),
        };
        s.authority.wait_refusal("A", refusal).await;
    }
    s.broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_publishes_its_own_reports_and_logs_only() {
    let s = setup().await;
    let mut service = s.service().await;
    service.subscribe("#").await;

    // QoS 1: mosquitto_pub ends once the broker has acknowledged, i.e. decided, so the forged
    // publications, had they passed, would reach the service before the allowed ones.
    let forged = ["device/B/report/status", "device/A/command/restart"];
    for topic in forged {
        let out = s.publish("A", "secret-A", topic, "forged").await;
        assert!(out.status.success(), "{}", out.text);
    }
    // In MQTT v5 the PUBACK can say no, and does.
    let mut v5 = s.device("mosquitto_pub", "A", "secret-A");
    v5.args([
        "-V",
        "mqttv5",
        "-q",
        "1",
        "-t",
        "device/B/report/status",
        "-m",
        "forged",
    ]);
    let v5 = run(v5).await;
    assert!(
        v5.text.contains("Not authorized"),
        "{:?} {}",
        v5.status,
        v5.text
    );
    for topic in ["device/A/report/custom", "device/A/logs/info"] {
        let out = s.publish("A", "secret-A", topic, "fine").await;
        assert!(out.status.success(), "{}", out.text);
    }
    let (custom, before) = service.wait_publish("device/A/report/custom").await;
    assert_eq!(&custom.payload[..], b"fine");
    let (logs, before_logs) = service.wait_publish("device/A/logs/info").await;
    assert_eq!(&logs.payload[..], b"fine");
    for p in before.iter().chain(&before_logs) {
        assert_ne!(&p.payload[..], b"forged", "{p:?}");
    }

    for topic in forged {
        let refusal = Refusal::Publish {
            topic: topic.into(),
        };
        s.authority.wait_refusal("A", refusal).await;
    }
    s.broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_command_reaches_a_device_that_subscribes_later() {
    let s = setup().await;
    let mut service = s.service().await;
    service
        .publish("device/A/command/config", r#"{"interval":60}"#, true)
        .await;

    let mut cmd = s.device("mosquitto_sub", "A", "secret-A");
    cmd.args([
        "-v",
        "-q",
        "1",
        "-t",
        "device/A/command/+",
        "-C",
        "1",
        "-W",
        "30",
    ]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", out.text);
    assert!(
        out.text
            .contains(r#"device/A/command/config {"interval":60}"#),
        "{}",
        out.text
    );
    s.broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_will_is_its_own_status_only() {
    let s = setup().await;
    let mut service = s.service().await;
    service.subscribe("device/+/report/status").await;

    let will = [
        "--will-topic",
        "device/A/report/status",
        "--will-payload",
        r#"{"status":"disconnected"}"#,
    ];
    let mut args = will.to_vec();
    args.extend(["--will-retain", "--will-qos", "1"]);
    let mut a = s.subscriber("A", "secret-A", &["device/A/command/+"], &args);
    a.wait_for("received SUBACK").await;
    a.child.start_kill().unwrap(); // SIGKILL: no DISCONNECT, the broker sees the connection drop
    a.exit().await;
    let (status, _) = service.wait_publish("device/A/report/status").await;
    assert_eq!(&status.payload[..], br#"{"status":"disconnected"}"#);

    // Retained: otafleet, coming later, still learns that A is gone.
    let mut later = s.service().await;
    later.subscribe("device/A/report/status").await;
    let (status, _) = later.wait_publish("device/A/report/status").await;
    assert!(status.retain);

    // A will on another device's status is refused at CONNECT.
    let mut cmd = s.device("mosquitto_sub", "A", "secret-A");
    cmd.args([
        "-t",
        "device/A/command/+",
        "--will-topic",
        "device/B/report/status",
        "--will-payload",
        "x",
    ]);
    let out = run(cmd).await;
    assert!(!out.status.success(), "{}", out.text);
    assert!(out.text.contains("not authorised"), "{}", out.text);
    s.authority
        .wait_refusal(
            "A",
            Refusal::Will {
                topic: "device/B/report/status".into(),
            },
        )
        .await;
    s.broker.stop().await;
}

/// An MQTT 3.1.1 CONNECT for device `id` with a QoS 1 will on `will_topic`.
fn connect_packet(id: &str, password: &str, will_topic: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u16).to_be_bytes());
        out.extend(s.as_bytes());
    }
    // MQTT, level 4; user name, password, will QoS 1, will, clean session; keepalive 60 s.
    let mut body = vec![
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        4,
        0x80 | 0x40 | 0x08 | 0x04 | 0x02,
        0,
        60,
    ];
    for field in [id, will_topic, "gone", id, password] {
        string(&mut body, field);
    }
    assert!(body.len() < 128, "one-byte remaining length");
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// A device connection made by hand over TLS, so the test knows its own address.
async fn raw_device(
    s: &Setup,
    id: &str,
    password: &str,
    will_topic: &str,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    SocketAddr,
) {
    use tokio::io::AsyncWriteExt;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(s.ca.clone()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(s.broker.listen_addr())
        .await
        .unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(&connect_packet(id, password, will_topic))
        .await
        .unwrap();
    (tls, local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_device_address_and_stop_drops_connections() {
    use tokio::io::AsyncReadExt;
    let s = setup().await;
    let mut service = s.service().await;

    // Refused at CONNECT (a will on B's status): CONNACK 5, "not authorized", recorded with the
    // address this connection came from, not the broker's internal forwarding.
    let (mut refused, local) = raw_device(&s, "A", "secret-A", "device/B/report/status").await;
    let mut connack = [0u8; 4];
    timeout_at(deadline(), refused.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 2, 0, 5]);
    let will = Refusal::Will {
        topic: "device/B/report/status".into(),
    };
    s.authority.wait_refusal("A", will.clone()).await;
    let recorded = s
        .authority
        .refusals()
        .into_iter()
        .find(|(_, r, _)| *r == will)
        .unwrap();
    assert_eq!(recorded.2, Some(local));

    // Admitted: CONNACK 0.
    let (mut device, _) = raw_device(&s, "A", "secret-A", "device/A/report/status").await;
    timeout_at(deadline(), device.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);

    // Stop: the device's connection and the service's are closed, and the port is free again.
    let listen = s.broker.listen_addr();
    s.broker.stop().await;
    let mut rest = Vec::new();
    let read = timeout_at(deadline(), device.read_to_end(&mut rest))
        .await
        .expect("closed in time");
    assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
    let ended = timeout_at(deadline(), service.rx.recv())
        .await
        .expect("closed in time");
    assert!(
        ended.is_none() || matches!(ended, Some(Packet::Disconnect)),
        "{ended:?}"
    );
    tokio::net::TcpListener::bind(listen)
        .await
        .expect("the device port is free after stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_the_device_listener_is_plain_mqtt_with_the_same_rules() {
    let authority = Arc::new(TestAuthority {
        passwords: [("A".to_owned(), "secret-A".to_owned())].into(),
        ..Default::default()
    });
    let opts = BrokerOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
    };
    let broker = Broker::start(opts, authority.clone()).await.unwrap();
    let port = broker.listen_addr().port().to_string();
    let publish = |password: &str, topic: &str| {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-i",
            "A",
            "-u",
            "A",
            "-P",
            password,
        ])
        .args(["-q", "1", "-t", topic, "-m", "x"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        cmd
    };
    let ok = run(publish("secret-A", "device/A/report/x")).await;
    assert!(ok.status.success(), "{}", ok.text);
    let wrong = run(publish("nope", "device/A/report/x")).await;
    assert!(
        wrong.text.contains("bad user name or password"),
        "{}",
        wrong.text
    );
    let forged = run(publish("secret-A", "device/B/report/x")).await;
    assert!(forged.status.success(), "{}", forged.text);
    authority
        .wait_refusal(
            "A",
            Refusal::Publish {
                topic: "device/B/report/x".into(),
            },
        )
        .await;
    broker.stop().await;
}
