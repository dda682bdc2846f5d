//! `otafleet serve --mqtt embedded`: the whole path an ESP Admin device takes — added over the
//! API, its MQTT settings over HTTP, then the embedded broker over TLS with otafleet's CA, as a
//! paho client the way the SDK connects — and the broker's refusals, recorded on the device.
//! mDNS stays off; everything listens on 127.0.0.1 (the broker on a free port).

#[path = "../../otafleet-mqtt/tests/support/mod.rs"]
mod mqtt_support;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mqtt_support::{wait_for, Device, Endpoint};
use serde_json::{json, Value};

const TOKEN: &str = "mqtt-test-admin";

struct Serve {
    _server: support::Server,
    base: String,
    mqtt_port: u16,
    http: reqwest::Client,
}

fn start(dir: &std::path::Path) -> Serve {
    let mut cmd = Command::new(support::bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-mdns"])
        .args(["--https-port", "off", "--tls", "auto"])
        .args(["--mqtt", "embedded", "--mqtt-port", "0"])
        .args(["--admin-token", TOKEN])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("start otafleet");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    let mut mqtt = None;
    // The lines come in one write: listening, HTTPS, the broker.
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if let Some(a) = line.trim().strip_prefix("otafleet listening on http://") {
            addr = Some(a.to_owned());
        }
        if let Some(m) = line
            .trim()
            .strip_prefix("otafleet MQTT broker on: mqtts://")
        {
            mqtt = Some(m.rsplit_once(':').unwrap().1.parse::<u16>().unwrap());
        }
    }
    let addr = addr.expect("the listening line");
    let server = support::Server {
        child,
        base: format!("http://{addr}"),
        addr: addr.clone(),
    };
    Serve {
        _server: server,
        base: format!("http://{addr}"),
        mqtt_port: mqtt.expect("the broker's line"),
        http: reqwest::Client::new(),
    }
}

impl Serve {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let v = res.json::<Value>().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn add(&self, name: &str) -> (String, String, String) {
        let v = self
            .admin(
                reqwest::Method::POST,
                "/api/v1/esp-admin/devices",
                Some(json!({ "name": name })),
            )
            .await;
        (
            v["id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
            v["device"]["mac"].as_str().unwrap().to_owned(),
        )
    }

    async fn device(&self, mac: &str) -> Value {
        self.admin(
            reqwest::Method::GET,
            &format!("/api/v1/devices/{mac}"),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn an_esp_admin_device_reaches_the_embedded_broker_and_only_its_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(&dir.path().join("data"));
    let (a_id, a_key, a_mac) = s.add("greenhouse").await;
    let (b_id, b_key, b_mac) = s.add("cellar").await;

    // The device's boot: its settings name the broker on the host it reached otafleet by.
    let settings: Value = s
        .http
        .get(format!("{}/api/device/{a_id}/settings", s.base))
        .header("Api-Key", &a_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        settings["uriTCP"],
        format!("mqtts://127.0.0.1:{}", s.mqtt_port)
    );
    assert_eq!(settings["username"], a_id.as_str());
    assert_eq!(settings["password"], a_key.as_str());

    // The broker's certificate is otafleet's: the device trusts only that CA.
    let ca = s
        .http
        .get(format!("{}/api/v1/tls/ca.pem", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let at = Endpoint {
        port: s.mqtt_port,
        ca: Some(ca_path),
    };

    // A wrong key is refused at CONNECT and counted on the device; no anonymous client.
    let bad = Device::connect(&at, &a_id, &a_id, "not-the-key", None).await;
    assert!(
        matches!(bad.connack(), Some(rc) if rc != 0),
        "{:?}",
        bad.seen
    );
    let anon = Device::connect(&at, &a_id, "", "", None).await;
    assert!(
        matches!(anon.connack(), Some(rc) if rc != 0),
        "{:?}",
        anon.seen
    );
    let d = s.device(&a_mac).await;
    assert!(d["refused"]["count"].as_i64().unwrap() >= 1, "{d}");

    // Another device's will topic is refused at CONNECT.
    let forged_will = format!("device/{b_id}/report/status");
    let w = Device::connect(&at, &a_id, &a_id, &a_key, Some(&forged_will)).await;
    assert!(
        matches!(w.connack(), Some(rc) if rc != 0) || w.connack().is_none(),
        "{:?}",
        w.seen
    );
    // Gone before A connects: paho tries again every second or two, with A's client id, and
    // each try could end A's session (A then reconnects and subscribes again, and that SUBACK
    // would be read as the answer to a later subscribe).
    w.kill().await;

    // Both devices connect as the SDK does and show online.
    let mut a = Device::connect(&at, &a_id, &a_id, &a_key, None).await;
    assert_eq!(a.connack(), Some(0), "{:?}", a.seen);
    a.come_online().await;
    let mut b = Device::connect(&at, &b_id, &b_id, &b_key, None).await;
    assert_eq!(b.connack(), Some(0), "{:?}", b.seen);
    b.come_online().await;
    for mac in [&a_mac, &b_mac] {
        wait_for("online", || async {
            (s.device(mac).await["online"] == true).then_some(())
        })
        .await;
    }
    let refused_before = s.device(&a_mac).await["refused"]["count"]
        .as_i64()
        .unwrap_or(0);

    // A may not subscribe to B's commands, nor to everything: refused outright and recorded.
    assert_eq!(
        a.subscribe(&format!("device/{b_id}/command/+")).await,
        vec![128]
    );
    assert_eq!(a.subscribe("#").await, vec![128]);
    // A may not say B left, nor command B.
    a.publish(
        &format!("device/{b_id}/report/status"),
        r#"{"status":"disconnected"}"#,
        true,
    )
    .await;
    a.publish(&format!("device/{b_id}/command/restart"), "", false)
        .await;
    wait_for("the refusals recorded on A", || async {
        let n = s.device(&a_mac).await["refused"]["count"]
            .as_i64()
            .unwrap_or(0);
        (n >= refused_before + 4).then_some(())
    })
    .await;
    // A's own report marks the end of what it sent: B is still online and heard nothing.
    a.publish(
        &format!("device/{a_id}/report/custom"),
        r#"{"type":"info","subject":"marker","body":""}"#,
        false,
    )
    .await;
    wait_for("A's report", || async {
        let r = s
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/reports?mac={a_mac}"),
                None,
            )
            .await;
        (r.as_array().map(Vec::len) == Some(1)).then_some(())
    })
    .await;
    assert_eq!(s.device(&b_mac).await["online"], true);
    assert!(
        !b.seen
            .iter()
            .any(|e| e["topic"] == format!("device/{b_id}/command/restart")),
        "{:?}",
        b.seen
    );

    // Power loss: the will goes out, A shows offline, B stays.
    a.kill().await;
    wait_for("A offline", || async {
        (s.device(&a_mac).await["online"] == false).then_some(())
    })
    .await;
    assert_eq!(s.device(&b_mac).await["online"], true);
}
