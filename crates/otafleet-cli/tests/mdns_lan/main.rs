//! Zero-config LAN (issue 4) against an independent implementation: the real `otafleet` binary in
//! one network namespace, python-zeroconf in another, a veth link between them (see [`netns`]).
//! Every wait polls a condition up to a deadline; nothing asserts on how long things took.

mod netns;
mod support;

use std::cell::Cell;
use std::process::Stdio;
use std::time::Instant;

use serde_json::{json, Value};
use support::*;

#[test]
fn python_zeroconf_resolves_our_server_follows_its_addresses_and_hears_its_goodbye() {
    let Some(lan) = netns::lan(
        "python_zeroconf_resolves_our_server_follows_its_addresses_and_hears_its_goodbye",
    ) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let name = format!("otafleet test {}", std::process::id());
    let fullname = format!("{name}._otafleet._tcp.local.");
    let (mut server, port) = serve(&lan, data.path(), &name);
    let watch = peer(&lan, &["watch", "_otafleet._tcp.local."]);
    let line = watch.wait_line("python-zeroconf to resolve our service", |l| {
        l.contains("\"resolved\"") && l.contains(&fullname)
    });
    let seen: Value = serde_json::from_str(&line).unwrap();
    eprintln!("python-zeroconf resolved: {seen}");
    assert_eq!(seen["port"], port, "SRV port is the HTTP port");
    // HTTPS is on by default (same port), so TXT says so and carries the CA's fingerprint.
    let ca = printed_ca(&server);
    assert_eq!(
        seen["txt"],
        json!({"v": "1", "api": "/api/v1", "tls": "1", "ca": ca})
    );
    assert!(
        seen["addresses"]
            .as_array()
            .unwrap()
            .contains(&json!(lan.ip_a)),
        "{seen}"
    );
    assert!(
        seen["server"].as_str().unwrap().ends_with(".local."),
        "{seen}"
    );

    // A new address on the interface is announced without a restart (addr_auto).
    let extra = format!("{}.5", lan.ip_a.rsplit_once('.').unwrap().0);
    netns::ip(&[
        "-n",
        &lan.a,
        "addr",
        "add",
        &format!("{extra}/24"),
        "dev",
        &lan.dev_a,
    ]);
    watch.wait_line("python-zeroconf to see the added address", |l| {
        l.contains("\"resolved\"") && l.contains(&fullname) && l.contains(&format!("\"{extra}\""))
    });

    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    watch.wait_line("the goodbye after SIGTERM", |l| {
        l.contains("\"removed\"") && l.contains(&fullname)
    });
    let status = server.child.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly after its goodbye: {status:?}"
    );
}

#[test]
fn devices_advertised_by_python_zeroconf_appear_and_go_offline() {
    let Some(lan) = netns::lan("devices_advertised_by_python_zeroconf_appear_and_go_offline")
    else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (_server, port) = serve(&lan, data.path(), "devices-test");
    let events = Proc::spawn({
        let mut c = lan.cmd(&lan.a, "curl");
        c.args(["-sN", "-H", &format!("Authorization: Bearer {TOKEN}")])
            .arg(format!("http://127.0.0.1:{port}/api/v1/events"));
        c
    });
    let mut peer = peer(&lan, &["advertise", &devices_spec(&lan)]);
    peer.wait_line("python-zeroconf to register", |l| l.contains("registered"));

    let list = devices_until(&lan, port, "three discovered devices, online", |l| {
        l.iter()
            .filter(|d| d["source"] == "mdns" && d["online"] == true)
            .count()
            == 3
    });
    let kitchen =
        find(&list, "mac", "24:0A:C4:A3:15:3C").expect("ESPHome device keyed by its TXT mac");
    assert_eq!(kitchen["name"], "Kitchen");
    assert_eq!(kitchen["hostname"], "kitchen.local");
    assert_eq!(kitchen["ip"], json!(lan.ip_b));
    assert_eq!(kitchen["mdns_service"], "_esphomelib._tcp");
    assert_eq!(kitchen["mdns_port"], 6053);
    assert_eq!(kitchen["mdns_txt"]["platform"], "ESP32");
    assert_eq!(kitchen["mdns_txt"]["version"], "2024.6.0");
    let default_named =
        find(&list, "mac", "24:6F:28:A1:B2:C3").expect("ArduinoOTA default name gives the MAC");
    assert_eq!(default_named["mdns_txt"]["board"], "esp32s3");
    let relay =
        find(&list, "key", "_arduino._tcp/bench-relay").expect("MAC-less ArduinoOTA host listed");
    assert_eq!(relay["mac"], Value::Null);
    assert_eq!(relay["hostname"], "bench-relay.local");
    assert_eq!(relay["mdns_port"], 3232);
    assert_eq!(relay["mdns_txt"]["board"], "esp32");
    // Both events already went out (in either order) while the list filled: scan for both.
    let (device_event, host_event) = (Cell::new(false), Cell::new(false));
    events.wait_line(
        "a device event (ESPHome) and an mdns_host event (MAC-less host)",
        |l| {
            if l.starts_with("data:")
                && l.contains("\"type\":\"device\"")
                && l.contains("24:0A:C4:A3:15:3C")
            {
                device_event.set(true);
            }
            if l.starts_with("data:")
                && l.contains("\"type\":\"mdns_host\"")
                && l.contains("bench-relay")
            {
                host_event.set(true);
            }
            device_event.get() && host_event.get()
        },
    );

    peer.say("unregister");
    peer.wait_line("python-zeroconf to unregister", |l| {
        l.contains("unregistered")
    });
    let list = devices_until(&lan, port, "all three offline after the goodbyes", |l| {
        l.iter()
            .filter(|d| d["source"] == "mdns")
            .all(|d| d["online"] == false)
    });
    assert!(list.iter().all(|d| !d["mdns_gone"].is_null()), "{list:#?}");
}

#[test]
fn discover_lists_our_server_and_python_zeroconf_devices() {
    let Some(lan) = netns::lan("discover_lists_our_server_and_python_zeroconf_devices") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let (_server, port) = serve(&lan, data.path(), "discover-test");
    let mut peer = peer(&lan, &["advertise", &devices_spec(&lan)]);
    peer.wait_line("python-zeroconf to register", |l| l.contains("registered"));
    let discover = |json: bool| {
        let mut c = lan.cmd(&lan.b, env!("CARGO_BIN_EXE_otafleet"));
        c.args(["discover", "--seconds", "3"]).stderr(Stdio::null());
        if json {
            c.arg("--json");
        }
        let out = c.output().expect("otafleet discover");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let end = Instant::now() + DEADLINE;
    let seen = loop {
        let seen: Vec<Value> = serde_json::from_str(&discover(true)).unwrap();
        if seen.len() >= 4 || Instant::now() > end {
            break seen;
        }
    };
    let server = seen
        .iter()
        .find(|s| s["instance"] == "discover-test")
        .unwrap_or_else(|| panic!("{seen:#?}"));
    assert_eq!(server["kind"], "server");
    assert_eq!(server["service"], "_otafleet._tcp");
    assert_eq!(server["port"], port);
    assert_eq!(server["txt"]["api"], "/api/v1");
    assert!(server["addresses"]
        .as_array()
        .unwrap()
        .contains(&json!(lan.ip_a)));
    let kitchen = seen
        .iter()
        .find(|s| s["instance"] == "kitchen")
        .unwrap_or_else(|| panic!("{seen:#?}"));
    assert_eq!(kitchen["kind"], "device");
    assert_eq!(kitchen["txt"]["mac"], "240ac4a3153c");
    let table = discover(false);
    eprintln!("otafleet discover:\n{table}");
    assert!(table.starts_with("KIND"), "{table}");
    assert!(
        table.contains("discover-test._otafleet._tcp")
            && table.contains("bench-relay._arduino._tcp"),
        "{table}"
    );
    peer.say("unregister");
}
