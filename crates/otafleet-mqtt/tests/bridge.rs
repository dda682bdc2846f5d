//! The bridge with real brokers — every test runs twice, against a real Mosquitto with the
//! documented ACLs (docs/mqtt.md) and against otafleet's embedded broker (TLS, devices checked
//! by `Fleet`) — with devices played by paho the way the ESP Admin SDK behaves, and a real
//! `Fleet` in a temp dir.

mod support;
#[path = "support/tls.rs"]
mod tls_support;

use otafleet_core::commands::{CommandKind, CommandState, NewCommand};
use otafleet_core::devices::NewEspAdminDevice;
use otafleet_core::firmware::ImportSource;
use otafleet_core::reports::ReportFilter;
use otafleet_core::{Fleet, Settings};
use otafleet_image::synth;
use otafleet_image::Chip;
use otafleet_mqtt::authority::FleetAuthority;
use otafleet_mqtt::bridge::{Bridge, BridgeOptions};
use otafleet_mqtt::broker::{Broker, BrokerOptions};
use serde_json::{json, Value};
use support::{wait_for, Device, Endpoint, Mosquitto};

/// Which broker a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The user's broker: Mosquitto with docs/mqtt/mosquitto.acl; otafleet logs in as `otafleet`.
    Mosquitto,
    /// otafleet's own, over TLS with a test CA; otafleet logs in as the service user.
    Embedded,
}

/// Run a test against both brokers.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn mosquitto() {
                super::$name(super::Kind::Mosquitto).await
            }
            #[tokio::test]
            async fn embedded() {
                super::$name(super::Kind::Embedded).await
            }
        }
    };
}

both!(presence_config_logs_reports_and_commands_go_through_the_broker);
both!(one_device_can_neither_speak_for_nor_listen_to_another);
both!(a_deployment_triggers_the_update_at_each_connect_until_it_starts);
both!(presence_and_config_survive_a_restart_of_otafleet);

/// A broker for one test.
struct TestBroker {
    kind: Kind,
    _mosquitto: Option<Mosquitto>,
    embedded: Option<Broker>,
    port: u16,
    ca: Option<std::path::PathBuf>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    /// Start it; `devices` get passwords (Mosquitto's password file; the embedded broker asks
    /// `fleet`).
    async fn start(kind: Kind, fleet: &Fleet, devices: &[&Added]) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::Mosquitto => {
                let mut users: Vec<(&str, &str)> = vec![("otafleet", SERVICE_PASSWORD)];
                for d in devices {
                    users.push((&d.id, &d.key));
                }
                let m = Mosquitto::start(&users).await;
                TestBroker {
                    kind,
                    port: m.port,
                    _mosquitto: Some(m),
                    embedded: None,
                    ca: None,
                    tls: None,
                    _dir: dir,
                }
            }
            Kind::Embedded => {
                let (tls, ca, _) = tls_support::tls_config(dir.path());
                let mut b = TestBroker {
                    kind,
                    _mosquitto: None,
                    embedded: None,
                    port: 0,
                    ca: Some(ca),
                    tls: Some(tls),
                    _dir: dir,
                };
                b.start_embedded(fleet).await;
                b
            }
        }
    }

    async fn start_embedded(&mut self, fleet: &Fleet) {
        let broker = Broker::start(
            BrokerOptions {
                listen: ([127, 0, 0, 1], self.port).into(),
                tls: self.tls.clone(),
            },
            std::sync::Arc::new(FleetAuthority(fleet.clone())),
        )
        .await
        .unwrap();
        self.port = broker.listen_addr().port();
        self.embedded = Some(broker);
    }

    /// otafleet stops: the embedded broker with it (its devices lose their connection).
    async fn stop_with_otafleet(&mut self) {
        if let Some(b) = self.embedded.take() {
            b.stop().await;
        }
    }

    /// otafleet starts again on `fleet`: the embedded broker on the same port.
    async fn start_with_otafleet(&mut self, fleet: &Fleet) {
        if self.kind == Kind::Embedded {
            self.start_embedded(fleet).await;
        }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            port: self.port,
            ca: self.ca.clone(),
        }
    }

    fn bridge(&self, fleet: &Fleet) -> Bridge {
        let opts = match &self.embedded {
            None => BridgeOptions::from_url(
                &format!("mqtt://otafleet@127.0.0.1:{}", self.port),
                Some(SERVICE_PASSWORD.into()),
                None,
            )
            .unwrap(),
            Some(b) => {
                let (username, password) = b.service_credentials();
                BridgeOptions {
                    host: "127.0.0.1".into(),
                    port: b.service_addr().port(),
                    tls: None,
                    username,
                    password,
                    client_id: otafleet_mqtt::bridge::client_id(
                        otafleet_mqtt::broker::SERVICE_USER,
                    ),
                }
            }
        };
        Bridge::start(fleet.clone(), opts)
    }
}

const SERVICE_PASSWORD: &str = "otafleet-test-password";

struct Added {
    id: String,
    key: String,
    mac: String,
}

async fn fleet(dir: &std::path::Path) -> Fleet {
    Fleet::open(Settings::new(dir)).await.unwrap()
}

async fn project_with_threshold(fleet: &Fleet) {
    let p = serde_json::from_value(json!({
        "name": "sensor",
        "variables": [{"key": "threshold", "type": "int", "default": 40}],
    }))
    .unwrap();
    fleet.project_create(p).await.unwrap();
}

async fn add(fleet: &Fleet, name: &str) -> Added {
    let c = fleet
        .esp_admin_create(NewEspAdminDevice {
            name: Some(name.into()),
            project: Some("sensor".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    Added {
        id: c.id,
        key: c.api_key,
        mac: c.device.mac,
    }
}

/// A synthetic image of project `sensor` imported into `fleet`: its bytes and its library entry.
async fn sensor_image(
    fleet: &Fleet,
    dir: &std::path::Path,
    version: &str,
    len: usize,
) -> (Vec<u8>, otafleet_core::firmware::Firmware) {
    let img = synth::AppImage::new(Chip::Esp32)
        .project("sensor")
        .version(version)
        .payload_len(len)
        .build();
    let path = dir.join(format!("sensor-{version}.bin"));
    std::fs::write(&path, &img).unwrap();
    let fw = fleet
        .import_path(&path, None, None, ImportSource::Path)
        .await
        .unwrap()
        .firmware;
    (img, fw)
}

/// The device reports `started` for image `fw_id` over HTTP, as the SDK does: the attempt's id.
async fn started(fleet: &Fleet, mac: &str, fw_id: i64) -> i64 {
    let d = fleet.device(mac).await.unwrap();
    let report = json!({"status": "started", "releaseId": fw_id.to_string()});
    match fleet
        .esp_admin_update_report(&d, &serde_json::from_value(report).unwrap())
        .await
        .unwrap()
    {
        otafleet_core::EspAdminReported::Started(u) => u.id,
        other => panic!("{other:?}"),
    }
}

async fn up(b: &Bridge) {
    let mut w = b.watch_connected();
    wait_for("the bridge's session", || {
        let up = *w.borrow_and_update();
        async move { up.then_some(()) }
    })
    .await;
}

async fn connect(at: &Endpoint, d: &Added) -> Device {
    let dev = Device::connect(at, &d.id, &d.id, &d.key, None).await;
    assert_eq!(dev.connack(), Some(0), "{:?}", dev.seen);
    dev
}

/// The admin queues a restart for `mac`.
async fn restart(fleet: &Fleet, mac: &str) -> otafleet_core::commands::Command {
    fleet
        .command_queue(
            mac,
            &NewCommand {
                kind: CommandKind::Restart,
                key: None,
                payload: None,
                expires_in_s: None,
            },
            "admin",
        )
        .await
        .unwrap()
}

async fn online(fleet: &Fleet, mac: &str, want: bool) {
    wait_for(&format!("{mac} online = {want}"), || async {
        let d = fleet.device(mac).await.unwrap();
        (d.online == want && d.mqtt_connected_at.is_some() == want).then_some(())
    })
    .await;
}

fn payload(m: &Value) -> Value {
    serde_json::from_str(m["payload"].as_str().unwrap()).unwrap()
}

async fn presence_config_logs_reports_and_commands_go_through_the_broker(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path()).await;
    project_with_threshold(&fleet).await;
    let a = add(&fleet, "greenhouse").await;
    fleet
        .device_config_patch(
            &a.mac,
            serde_json::from_value(json!({"values": {"threshold": 42}})).unwrap(),
        )
        .await
        .unwrap();
    let tb = TestBroker::start(kind, &fleet, &[&a]).await;
    let at = tb.endpoint();
    let b = tb.bridge(&fleet);
    up(&b).await;

    // The SDK's boot: connect with its will, subscribe, say connected.
    let mut dev = connect(&at, &a).await;
    dev.come_online().await;
    online(&fleet, &a.mac, true).await;
    // Its config arrives from the database, retained, every value a string (ESP Admin's shape).
    let m = dev
        .message(&format!("device/{}/command/config", a.id))
        .await;
    assert_eq!(payload(&m), json!({"threshold": "42"}));
    assert_eq!(m["retain"], true);
    // Nobody watches its logs: the retained switch says off. (A broker may hand a retained
    // message published while the device subscribed both as retained and live: count on no
    // number of copies, only on what the switch says.)
    let log_topic = format!("device/{}/command/log", a.id);
    let switch = |on: &'static str| {
        let t = log_topic.clone();
        move |e: &Value| e["topic"] == t.as_str() && e["payload"] == on
    };
    let m = dev.message(&log_topic).await;
    assert_eq!(m["payload"], "off");

    // A viewer opens its logs: on; its lines land in the same buffer as HTTP's.
    let watch = fleet.logs_watch(&a.mac, 0).await.unwrap();
    dev.next_where("the log switch on", switch("on")).await;
    // Any copy of the earlier "off" that came before "on" says nothing about what follows.
    dev.forget_pending(switch("off"));
    dev.publish_qos(
        &format!("device/{}/logs/warn", a.id),
        "[sensor] humidity sensor timeout",
        false,
        0,
    )
    .await;
    let line = wait_for("the log line", || async {
        let s = fleet.logs_snapshot(&a.mac, 0, 100).await.unwrap();
        s.lines.into_iter().next()
    })
    .await;
    assert_eq!(line.scope.as_deref(), Some("sensor"));
    assert_eq!(line.text, "humidity sensor timeout");
    assert_eq!(line.level.as_str(), "warn");
    // The viewer leaves: off once the lease's grace is over.
    drop(watch);
    dev.next_where("the log switch off", switch("off")).await;

    // A report over MQTT is stored; the SDK's second copy of a report it sent over HTTP is not.
    let report = json!({"type": "error", "subject": "boiler", "body": "over temperature"});
    dev.publish(
        &format!("device/{}/report/custom", a.id),
        &report.to_string(),
        false,
    )
    .await;
    let reports = |fleet: Fleet, mac: String| async move {
        fleet
            .reports(&ReportFilter {
                mac: Some(mac),
                ..Default::default()
            })
            .await
            .unwrap()
    };
    wait_for("the MQTT report", || async {
        (reports(fleet.clone(), a.mac.clone()).await.len() == 1).then_some(())
    })
    .await;
    let d = fleet.device(&a.mac).await.unwrap();
    fleet
        .esp_admin_custom_report(
            &d,
            &serde_json::from_value(json!({"type": "warn", "subject": "door", "body": "open"}))
                .unwrap(),
        )
        .await
        .unwrap();
    dev.publish(
        &format!("device/{}/report/custom", a.id),
        &json!({"type": "warn", "subject": "door", "body": "open"}).to_string(),
        false,
    )
    .await;

    // A command queued for the connected device is delivered and done.
    let queued = restart(&fleet, &a.mac).await;
    dev.message(&format!("device/{}/command/restart", a.id))
        .await;
    wait_for("the restart command done", || async {
        let list = fleet.commands(&a.mac, None).await.unwrap();
        list.commands
            .iter()
            .any(|c| c.id == queued.id && c.state == CommandState::Done)
            .then_some(())
    })
    .await;
    // Messages from one publisher arrive in order: the restart came after the MQTT copy of the
    // door report was handled, so the count is final.
    let all = reports(fleet.clone(), a.mac.clone()).await;
    assert_eq!(all.len(), 2, "{all:?}");

    // A config change reaches the device at once.
    fleet
        .device_config_patch(
            &a.mac,
            serde_json::from_value(json!({"values": {"threshold": 43}})).unwrap(),
        )
        .await
        .unwrap();
    let config_topic = format!("device/{}/command/config", a.id);
    dev.next_where("the new config", |e| {
        e["topic"] == config_topic.as_str() && e["payload"] == r#"{"threshold":"43"}"#
    })
    .await;

    // Power loss: the broker publishes the will, and the device shows offline.
    dev.kill().await;
    online(&fleet, &a.mac, false).await;
    b.stop().await;
}

async fn one_device_can_neither_speak_for_nor_listen_to_another(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path()).await;
    project_with_threshold(&fleet).await;
    let a = add(&fleet, "a").await;
    let bdev = add(&fleet, "b").await;
    let tb = TestBroker::start(kind, &fleet, &[&a, &bdev]).await;
    let at = tb.endpoint();
    let b = tb.bridge(&fleet);
    up(&b).await;
    let mut da = connect(&at, &a).await;
    da.come_online().await;
    let mut db = connect(&at, &bdev).await;
    db.come_online().await;
    online(&fleet, &bdev.mac, true).await;

    // A may ask for B's commands, or everything — Mosquitto grants the subscription and then
    // delivers nothing its ACL does not let A read (checked at the end).
    da.subscribe(&format!("device/{}/command/+", bdev.id)).await;
    da.subscribe("#").await;
    // A cannot say B went away, send a report as B, or command B.
    da.publish(
        &format!("device/{}/report/status", bdev.id),
        r#"{"status":"disconnected"}"#,
        true,
    )
    .await;
    da.publish(
        &format!("device/{}/report/custom", bdev.id),
        r#"{"type":"error","subject":"forged","body":""}"#,
        false,
    )
    .await;
    da.publish(&format!("device/{}/command/restart", bdev.id), "", false)
        .await;
    // A command queued for B reaches B only; B saw no forged restart before it.
    fleet
        .command_queue(
            &bdev.mac,
            &NewCommand {
                kind: CommandKind::Custom,
                key: Some("blink".into()),
                payload: Some(json!({"times": 3})),
                expires_in_s: None,
            },
            "admin",
        )
        .await
        .unwrap();
    let m = db
        .message(&format!("device/{}/command/custom", bdev.id))
        .await;
    assert_eq!(
        payload(&m),
        json!({"key": "blink", "value": "{\"times\":3}"})
    );
    assert!(
        !db.seen
            .iter()
            .any(|e| e["topic"] == format!("device/{}/command/restart", bdev.id)),
        "{:?}",
        db.seen
    );
    // A's own report marks the end of what it sent: everything before it was handled.
    da.publish(
        &format!("device/{}/report/custom", a.id),
        r#"{"type":"info","subject":"marker","body":""}"#,
        false,
    )
    .await;
    wait_for("A's own report", || async {
        let r = fleet
            .reports(&ReportFilter {
                mac: Some(a.mac.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        (!r.is_empty()).then_some(())
    })
    .await;
    let d = fleet.device(&bdev.mac).await.unwrap();
    assert!(
        d.online && d.mqtt_connected_at.is_some(),
        "B still connected"
    );
    if kind == Kind::Embedded {
        // The embedded broker tells otafleet what it refused: two subscriptions, three
        // publications, all counted on A (Mosquitto refuses silently).
        let ra = fleet
            .device(&a.mac)
            .await
            .unwrap()
            .refused
            .expect("recorded");
        assert_eq!(ra.count, 5, "{ra:?}");
        assert_eq!(ra.last_protocol, "esp-admin");
    }
    let rb = fleet
        .reports(&ReportFilter {
            mac: Some(bdev.mac.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(rb.is_empty(), "no forged report for B: {rb:?}");
    assert!(
        !da.seen
            .iter()
            .any(|e| e["event"] == "message" && e["topic"].as_str().unwrap().contains(&bdev.id)),
        "A heard nothing of B's: {:?}",
        da.seen
    );
    b.stop().await;
}

async fn a_deployment_triggers_the_update_at_each_connect_until_it_starts(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path()).await;
    project_with_threshold(&fleet).await;
    let a = add(&fleet, "greenhouse").await;
    let (img, fw) = sensor_image(&fleet, dir.path(), "1.4.0", 100_000).await;
    // B is off the network when the deployment is made.
    let off = add(&fleet, "cellar").await;
    let tb = TestBroker::start(kind, &fleet, &[&a, &off]).await;
    let at = tb.endpoint();
    let b = tb.bridge(&fleet);
    up(&b).await;
    let mut dev = connect(&at, &a).await;
    dev.come_online().await;
    online(&fleet, &a.mac, true).await;

    // Deployed while A is connected: triggered at once.
    fleet
        .deployment_create(
            serde_json::from_value(json!({"firmware_id": fw.id, "devices": [a.mac, off.mac]}))
                .unwrap(),
        )
        .await
        .unwrap();
    let topic = format!("device/{}/command/update_trigger", a.id);
    let t = payload(&dev.message(&topic).await);
    assert_eq!(t["releaseId"], fw.id.to_string());
    assert_eq!(t["version"], "1.4.0");
    assert_eq!(t["downloadSize"], img.len());
    let path = t["downloadPath"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with(&format!("/api/device/{}/ota/", a.id)),
        "{path}"
    );

    // B was offline when the deployment was made (ESP Admin loses such triggers): it gets its
    // own when it connects.
    let mut b_dev = connect(&at, &off).await;
    b_dev.come_online().await;
    let tb_trigger = payload(
        &b_dev
            .message(&format!("device/{}/command/update_trigger", off.id))
            .await,
    );
    assert_eq!(tb_trigger["releaseId"], fw.id.to_string());
    assert!(tb_trigger["downloadPath"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/api/device/{}/ota/", off.id)));

    // A drops off before starting and comes back: triggered again.
    dev.kill().await;
    online(&fleet, &a.mac, false).await;
    let mut dev = connect(&at, &a).await;
    dev.come_online().await;
    let again = payload(&dev.message(&topic).await);
    assert_eq!(again["downloadPath"], path);

    // It starts (over HTTP, as the SDK does) and reports progress over MQTT.
    let update_id = started(&fleet, &a.mac, fw.id).await;
    dev.publish_qos(
        &format!("device/{}/report/update_progress", a.id),
        &json!({"releaseId": fw.id.to_string(), "deploymentId": update_id.to_string(), "progress": 55}).to_string(),
        false,
        0,
    )
    .await;
    wait_for("progress 55", || async {
        let d = fleet.device(&a.mac).await.unwrap();
        d.update
            .filter(|u| u.id == update_id && u.progress == 55)
            .map(|_| ())
    })
    .await;

    // Once started, a reconnect brings no trigger: a command queued after it is back arrives
    // first (one publisher's messages keep their order).
    dev.kill().await;
    online(&fleet, &a.mac, false).await;
    let mut dev = connect(&at, &a).await;
    dev.come_online().await;
    online(&fleet, &a.mac, true).await;
    restart(&fleet, &a.mac).await;
    dev.message(&format!("device/{}/command/restart", a.id))
        .await;
    assert!(
        !dev.seen.iter().any(|e| e["topic"] == topic.as_str()),
        "{:?}",
        dev.seen
    );
    b.stop().await;
}

async fn presence_and_config_survive_a_restart_of_otafleet(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let a = {
        let fleet = fleet(dir.path()).await;
        project_with_threshold(&fleet).await;
        let a = add(&fleet, "greenhouse").await;
        fleet.close().await;
        a
    };
    let config_topic = format!("device/{}/command/config", a.id);
    let fleet1 = fleet(dir.path()).await;
    let mut tb = TestBroker::start(kind, &fleet1, &[&a]).await;
    let at = tb.endpoint();
    let mut dev = connect(&at, &a).await;
    dev.come_online().await;
    let b = tb.bridge(&fleet1);
    up(&b).await;
    online(&fleet1, &a.mac, true).await;
    let m = dev.message(&config_topic).await;
    assert_eq!(payload(&m), json!({"threshold": "40"}));
    // otafleet stops (with it the embedded broker: its devices lose their connection; a user's
    // broker keeps them connected). What came before says nothing about what comes after.
    dev.forget_pending(|e| e["topic"] == config_topic.as_str());
    b.stop().await;
    tb.stop_with_otafleet().await;
    fleet1.close().await;
    // otafleet comes back: the device is connected again (the retained status says so, or it
    // reconnected to the embedded broker and said so), and its config is published again.
    let fleet2 = fleet(dir.path()).await;
    tb.start_with_otafleet(&fleet2).await;
    let b = tb.bridge(&fleet2);
    up(&b).await;
    online(&fleet2, &a.mac, true).await;
    let m = dev.message(&config_topic).await;
    assert_eq!(payload(&m), json!({"threshold": "40"}));
    b.stop().await;
}

both!(a_device_held_for_a_free_slot_is_triggered_when_one_frees);

/// A rollout that updates one device at a time: of two connected ESP Admin devices one is
/// triggered and the other held for the slot (no trigger); when the first one's attempt ends
/// (here it fails), the other is triggered.
async fn a_device_held_for_a_free_slot_is_triggered_when_one_frees(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let fleet = fleet(dir.path()).await;
    project_with_threshold(&fleet).await;
    let a = add(&fleet, "bench-1").await;
    let c = add(&fleet, "bench-2").await;
    let (_, fw) = sensor_image(&fleet, dir.path(), "1.5.0", 50_000).await;
    let tb = TestBroker::start(kind, &fleet, &[&a, &c]).await;
    let at = tb.endpoint();
    let b = tb.bridge(&fleet);
    up(&b).await;
    let mut devs = Vec::new();
    for d in [&a, &c] {
        let mut dev = connect(&at, d).await;
        dev.come_online().await;
        online(&fleet, &d.mac, true).await;
        devs.push(dev);
    }
    fleet
        .deployment_create(
            serde_json::from_value(json!({
                "firmware_id": fw.id,
                "devices": [a.mac, c.mac],
                "plan": {"waves": [{"by": "percent", "percent": 100}], "max_parallel": 1,
                         "error_limit": {"devices": 5}, "soak_s": 0},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    // One of them is triggered; the other is held for the slot.
    let topic = |d: &Added| format!("device/{}/command/update_trigger", d.id);
    let first = wait_for("one trigger", || {
        let seen: Vec<bool> = [&a, &c]
            .iter()
            .zip(devs.iter_mut())
            .map(|(d, dev)| {
                dev.drain();
                dev.seen.iter().any(|e| e["topic"] == topic(d).as_str())
            })
            .collect();
        async move { seen.iter().position(|s| *s) }
    })
    .await;
    let (goes, held) = if first == 0 { (&a, &c) } else { (&c, &a) };
    let held_dev = if first == 0 { 1 } else { 0 };
    devs[held_dev].drain();
    assert!(
        !devs[held_dev]
            .seen
            .iter()
            .any(|e| e["topic"] == topic(held).as_str()),
        "the held device got a trigger too: {:?}",
        devs[held_dev].seen
    );

    // The first one starts and fails: the slot frees, the held one is triggered.
    let update_id = started(&fleet, &goes.mac, fw.id).await;
    let d = fleet.device(&goes.mac).await.unwrap();
    fleet
        .esp_admin_update_report(
            &d,
            &serde_json::from_value(
                json!({"status": "failed", "deploymentId": update_id.to_string()}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let t = payload(&devs[held_dev].message(&topic(held)).await);
    assert_eq!(t["releaseId"], fw.id.to_string());
    b.stop().await;
}
