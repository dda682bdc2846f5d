//! `--commands`: a native sim device takes commands from the real server (in-process on
//! 127.0.0.1:0): a restart is answered `done`, the device reboots and checks in again with its
//! uptime started over; a custom command is answered with its key. Every wait is for a
//! condition, up to [`DEADLINE`]; nothing asserts on time.

use std::time::{Duration, Instant};

mod support;

use clap::Parser;
use otafleet_sim::{Args, Config};
use serde_json::{json, Value};
use support::Served;
use tokio::sync::oneshot;

const ADMIN: &str = "sim-commands-test-admin";
const DEADLINE: Duration = Duration::from_secs(60);

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn queue(&self, mac: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/api/v1/devices/{mac}/commands", self.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    /// Wait until `f` gives something, polling every 50 ms.
    async fn until<T>(&self, what: &str, mut f: impl AsyncFnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(v) = f(self).await {
                return v;
            }
            assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn command(&self, mac: &str, id: &Value) -> Value {
        self.get(&format!("/api/v1/devices/{mac}/commands")).await["commands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| &c["id"] == id)
            .cloned()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reaches_the_device_which_checks_in_again_with_its_uptime_reset() {
    let served = Served::start(ADMIN).await;
    let base = served.base.clone();

    let argv = [
        "otafleet-sim",
        "--server",
        &base,
        "--wait-for-deployment",
        "--devices",
        "1",
        "--interval",
        "0.2",
        "--reboot-ms",
        "50",
        "--forever",
        "--commands",
        "--no-progress",
        "--seed",
        "15",
    ];
    let cfg = Config::from_args(Args::parse_from(argv)).unwrap();
    let (stop_sim, sim_stopped) = oneshot::channel::<()>();
    let sim = tokio::spawn(otafleet_sim::run_until(cfg, async {
        let _ = sim_stopped.await;
    }));

    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    // The device enrolled and has been up a while (uptime only grows until it restarts).
    let (mac, before) = api
        .until("the device enrols and runs 2 s", async |api| {
            let list = api.get("/api/v1/devices").await;
            let d = list.as_array()?.first()?.clone();
            let up = d["uptime_s"].as_i64()?;
            (d["auth"] == "token" && up >= 2).then(|| (d["mac"].as_str().unwrap().to_string(), up))
        })
        .await;

    let c = api.queue(&mac, json!({"kind": "restart"})).await;
    let id = c["id"].clone();
    api.until("the restart is answered done", async |api| {
        (api.command(&mac, &id).await["state"] == "done").then_some(())
    })
    .await;
    assert_eq!(api.command(&mac, &id).await["result"], "restarting");
    // It rebooted and checked in again: its uptime started over.
    api.until("the device checks in with its uptime reset", async |api| {
        let d = api.get(&format!("/api/v1/devices/{mac}")).await;
        d["uptime_s"].as_i64().filter(|up| *up < before)
    })
    .await;

    let c = api
        .queue(
            &mac,
            json!({"kind": "custom", "key": "blink", "payload": {"n": 3}}),
        )
        .await;
    let id = c["id"].clone();
    let done = api
        .until("the custom command is answered", async |api| {
            let c = api.command(&mac, &id).await;
            (c["state"] == "done").then_some(c)
        })
        .await;
    assert_eq!(done["result"], "custom blink");
    let c = api
        .queue(&mac, json!({"kind": "log", "payload": {"on": true}}))
        .await;
    let id = c["id"].clone();
    api.until("the log command is answered", async |api| {
        (api.command(&mac, &id).await["state"] == "done").then_some(())
    })
    .await;

    for (body, result) in [
        (json!({"kind": "update_abort"}), "no update in progress"),
        (
            json!({"kind": "config"}),
            "config noted (the simulator does not fetch configs yet)",
        ),
    ] {
        let c = api.queue(&mac, body).await;
        let id = c["id"].clone();
        let done = api
            .until("the command is answered", async |api| {
                let c = api.command(&mac, &id).await;
                (c["state"] == "done").then_some(c)
            })
            .await;
        assert_eq!(done["result"], result);
    }

    let _ = stop_sim.send(());
    sim.await.unwrap().expect("the run completes");
    served.stop().await;
}
