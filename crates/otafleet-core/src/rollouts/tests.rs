//! Rollouts: placing devices in waves (pure), the gate (pure), and whole rollouts on a real
//! fleet (SQLite in a temp dir): wave by wave, the error limit pausing at the failed attempt
//! that crosses it, a crash after the update counting as a failure, late joiners, resume.

use super::*;
use crate::checkin::{CheckinRequest, ProgressRequest};
use crate::db;
use crate::deployments::{DeploymentStatus, NewDeployment};
use crate::devices::DevicePatch;
use crate::firmware::{Firmware, ImportRequest, ImportSource};
use crate::{Fleet, Settings};
use otafleet_image::{synth, Chip};

fn cands<'a>(macs: &'a [String], tags: &'a [Vec<String>]) -> Vec<Candidate<'a>> {
    macs.iter()
        .zip(tags)
        .map(|(m, t)| Candidate { mac: m, tags: t })
        .collect()
}

fn plan(waves: Vec<WaveSpec>) -> RolloutPlan {
    RolloutPlan {
        waves,
        ..Preset::AllAtOnce.plan()
    }
}

#[test]
fn waves_take_the_tag_then_cumulative_shares_and_the_last_takes_the_rest() {
    let macs: Vec<String> = (0..20).map(|i| format!("24:0A:C4:00:00:{i:02X}")).collect();
    let mut tags = vec![Vec::new(); 20];
    tags[7] = vec!["Canary".to_string()];
    tags[13] = vec!["canary".to_string(), "rack-3".to_string()];
    let p = Preset::Canary.plan();
    let placed = assign(&p, 1, &cands(&macs, &tags));
    assert_eq!(placed.len(), 20, "every device is placed once");
    let wave = |w: i64| -> Vec<&str> {
        placed
            .iter()
            .filter(|(_, x)| *x == w)
            .map(|(m, _)| m.as_str())
            .collect()
    };
    assert_eq!(wave(1), vec![macs[7].as_str(), macs[13].as_str()]);
    // Up to 10 % of 20 = 2 devices by the end of wave 2: the canaries are those already.
    assert!(wave(2).is_empty(), "{:?}", wave(2));
    // Up to 50 %: 10 in waves 1–3.
    assert_eq!(wave(3).len(), 8);
    assert_eq!(wave(4).len(), 10);
    // The same rollout places the same way; another rollout spreads differently.
    assert_eq!(placed, assign(&p, 1, &cands(&macs, &tags)));
    assert_ne!(placed, assign(&p, 2, &cands(&macs, &tags)));
}

#[test]
fn counts_take_the_next_devices_and_a_plan_is_checked() {
    let macs: Vec<String> = (0..5).map(|i| format!("24:0A:C4:00:01:{i:02X}")).collect();
    let tags = vec![Vec::new(); 5];
    let p = plan(vec![
        WaveSpec::Count { count: 1 },
        WaveSpec::Count { count: 2 },
        WaveSpec::Count { count: 1 },
    ]);
    let placed = assign(&p, 9, &cands(&macs, &tags));
    let n = |w| placed.iter().filter(|(_, x)| *x == w).count();
    assert_eq!(
        (n(1), n(2), n(3)),
        (1, 2, 2),
        "the last wave takes the rest"
    );
    let bad = plan(vec![
        WaveSpec::Percent { percent: 50 },
        WaveSpec::Percent { percent: 20 },
    ]);
    assert_eq!(bad.validate().unwrap_err().code(), "invalid_plan");
    assert!(plan(vec![]).validate().is_err());
    assert!(plan(vec![WaveSpec::Count { count: 0 }]).validate().is_err());
    assert!(Preset::Canary.plan().validate().is_ok());
}

#[test]
fn the_gate_holds_offers_only() {
    let stage = Stage {
        current: 1,
        waves: 3,
        paused: None,
        max_parallel: Some(2),
    };
    assert_eq!(gate(Verdict::Offer, &stage, 1, 0), Verdict::Offer);
    assert_eq!(
        gate(Verdict::Offer, &stage, 2, 0),
        Verdict::WaitingForWave {
            wave: 2,
            current: 1
        }
    );
    assert_eq!(
        gate(Verdict::Offer, &stage, 1, 2),
        Verdict::Queued { max: 2 }
    );
    let paused = Stage {
        paused: Some("error limit crossed".into()),
        ..stage.clone()
    };
    assert!(matches!(
        gate(Verdict::Offer, &paused, 1, 0),
        Verdict::Paused { .. }
    ));
    // An attempt under way goes on, paused or not.
    let going = Verdict::InProgress {
        state: crate::updates::UpdateState::Downloading,
        progress: 10,
    };
    assert_eq!(gate(going.clone(), &paused, 1, 0), going);
    assert_eq!(late_wave(1, 3), 2);
    assert_eq!(late_wave(3, 3), 3);
}

// --- on a real fleet ---------------------------------------------------------------------

fn report(mac: &str, version: &str, sha256: Option<&str>, uptime_s: i64) -> CheckinRequest {
    CheckinRequest {
        mac: mac.into(),
        chip: "esp32".into(),
        project: "blink".into(),
        version: version.into(),
        sha256: sha256.map(str::to_string),
        free_space: None,
        ip: None,
        rssi: None,
        uptime_s: Some(uptime_s),
        name: None,
    }
}

struct Bench {
    fleet: Fleet,
    _dir: tempfile::TempDir,
    macs: Vec<String>,
    tokens: Vec<String>,
    fw: Firmware,
}

/// A fleet with `n` native devices on blink 1.0.0 and the image of blink 2.0.0.
async fn bench(n: usize) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    let mut macs = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..n {
        let mac = format!("24:0A:C4:00:02:{i:02X}");
        let r = fleet
            .checkin(report(&mac, "1.0.0", None, 100), None, None, false)
            .await
            .unwrap();
        tokens.push(r.token.unwrap());
        macs.push(mac);
    }
    let image = synth::AppImage::new(Chip::Esp32)
        .project("blink")
        .version("2.0.0")
        .payload_len(20_000)
        .build();
    let fw = fleet
        .import(
            ImportRequest {
                filename: "blink-2.bin".into(),
                project: None,
                version: None,
                source: ImportSource::Upload,
                source_path: None,
                only_project: None,
            },
            &image[..],
        )
        .await
        .unwrap()
        .firmware;
    Bench {
        fleet,
        _dir: dir,
        macs,
        tokens,
        fw,
    }
}

impl Bench {
    async fn checkin(&self, i: usize, version: &str, uptime_s: i64) -> Option<i64> {
        let sha = (version == "2.0.0").then_some(self.fw.sha256.as_str());
        self.fleet
            .checkin(
                report(&self.macs[i], version, sha, uptime_s),
                Some(&self.tokens[i]),
                None,
                false,
            )
            .await
            .unwrap()
            .update
            .map(|o| o.id)
    }

    async fn progress(&self, i: usize, update_id: i64, state: &str) {
        self.fleet
            .progress(
                Some(&self.tokens[i]),
                ProgressRequest {
                    update_id,
                    state: state.into(),
                    progress: if state == "failed" { 0 } else { 50 },
                    error: (state == "failed").then(|| "boot failed: rolled back".to_string()),
                },
            )
            .await
            .unwrap();
    }

    /// Device `i` takes its offer and comes back on the image (its uptime starting again).
    async fn update(&self, i: usize) {
        let id = self.checkin(i, "1.0.0", 200).await.expect("an offer");
        self.progress(i, id, "downloading").await;
        assert_eq!(self.checkin(i, "2.0.0", 1).await, None);
    }

    async fn wave_of(&self, id: i64, i: usize) -> i64 {
        let d = self.fleet.deployment(id).await.unwrap();
        d.rollout
            .unwrap()
            .waves
            .iter()
            .find(|w| w.devices.iter().any(|m| m.mac == self.macs[i]))
            .unwrap()
            .number
    }

    async fn verdict(&self, i: usize) -> Verdict {
        self.fleet
            .device_target(&self.macs[i])
            .await
            .unwrap()
            .unwrap()
            .verdict
    }
}

#[tokio::test]
async fn a_rollout_goes_wave_by_wave_and_pauses_at_the_failure_that_crosses_its_limit() {
    let b = bench(6).await;
    b.fleet
        .device_patch(
            &b.macs[0],
            DevicePatch {
                tags: Some(vec!["canary".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = RolloutPlan {
        waves: vec![
            WaveSpec::Tag {
                tag: "canary".into(),
            },
            WaveSpec::Count { count: 2 },
            WaveSpec::Percent { percent: 100 },
        ],
        soak_s: 0,
        error_limit: ErrorLimit {
            devices: Some(0),
            percent: None,
        },
        ..Preset::AllAtOnce.plan()
    };
    let new = NewDeployment {
        firmware_id: b.fw.id,
        plan: Some(p),
        ..NewDeployment::default()
    };
    // The dry run places the devices as the rollout then does.
    let dry = b.fleet.deployment_plan(&new).await.unwrap();
    let dry_waves: Vec<usize> = dry
        .rollout
        .as_ref()
        .unwrap()
        .waves
        .iter()
        .map(|w| w.devices.len())
        .collect();
    assert_eq!(dry_waves, vec![1, 2, 3]);
    let d = b.fleet.deployment_create(new).await.unwrap();
    assert_eq!(d.wave, 1);
    let detail = b.fleet.deployment(d.id).await.unwrap();
    let waves: Vec<usize> = detail
        .rollout
        .as_ref()
        .unwrap()
        .waves
        .iter()
        .map(|w| w.devices.len())
        .collect();
    assert_eq!(waves, dry_waves);
    assert_eq!(b.wave_of(d.id, 0).await, 1);
    let in_wave = |w: i64| {
        let waves = &detail.rollout.as_ref().unwrap().waves[(w - 1) as usize];
        waves
            .devices
            .iter()
            .map(|m| b.macs.iter().position(|x| *x == m.mac).unwrap())
            .collect::<Vec<usize>>()
    };
    let (w2, w3) = (in_wave(2), in_wave(3));

    // Only the canary is offered the image; the others hear why not.
    for &i in w2.iter().chain(&w3) {
        assert_eq!(b.checkin(i, "1.0.0", 150).await, None, "device {i}");
    }
    assert!(matches!(
        b.verdict(w3[0]).await,
        Verdict::WaitingForWave {
            wave: 3,
            current: 1
        }
    ));
    b.update(0).await;
    // Soak time 0: the next step counts the canary and starts wave 2.
    b.fleet.step_rollouts().await.unwrap();
    let d2 = b.fleet.deployment(d.id).await.unwrap().deployment;
    assert_eq!(d2.wave, 2, "{d2:?}");
    assert_eq!(d2.status, DeploymentStatus::Active);

    // Wave 2: one update fails; that failure pauses the rollout at once (no step needed).
    let first = b
        .checkin(w2[0], "1.0.0", 160)
        .await
        .expect("wave 2 offered");
    let second = b
        .checkin(w2[1], "1.0.0", 160)
        .await
        .expect("wave 2 offered");
    b.progress(w2[0], first, "failed").await;
    let paused = b.fleet.deployment(d.id).await.unwrap().deployment;
    assert_eq!(paused.status, DeploymentStatus::Paused, "{paused:?}");
    let reason = paused.pause_reason.clone().unwrap();
    assert!(
        reason.contains("error limit crossed") && reason.contains(&b.macs[w2[0]]),
        "{reason}"
    );
    // Nothing outside the started waves is offered; the attempt under way goes on.
    for &i in &w3 {
        assert_eq!(b.checkin(i, "1.0.0", 170).await, None);
    }
    assert!(matches!(b.verdict(w3[0]).await, Verdict::Paused { .. }));
    assert_eq!(b.checkin(w2[1], "1.0.0", 170).await, Some(second));
    // The pause is in the audit log, with otafleet as the actor.
    let audit = b
        .fleet
        .audit_list(&crate::audit::AuditFilter {
            action: Some("rollout_paused".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "otafleet");

    // Resume with retry: the failed device counts afresh and is offered again.
    let (resumed, _) = b.fleet.deployment_resume(d.id, true).await.unwrap();
    assert_eq!(resumed.status, DeploymentStatus::Active);
    assert!(b.checkin(w2[0], "1.0.0", 180).await.is_some());
    b.fleet.close().await;
}

#[tokio::test]
async fn a_restart_the_server_did_not_ask_for_after_the_update_is_a_failure() {
    let b = bench(2).await;
    let p = RolloutPlan {
        waves: vec![
            WaveSpec::Count { count: 1 },
            WaveSpec::Percent { percent: 100 },
        ],
        soak_s: 3600,
        error_limit: ErrorLimit {
            devices: Some(0),
            percent: None,
        },
        ..Preset::AllAtOnce.plan()
    };
    let d = b
        .fleet
        .deployment_create(NewDeployment {
            firmware_id: b.fw.id,
            plan: Some(p),
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    let first = if b.wave_of(d.id, 0).await == 1 { 0 } else { 1 };
    b.update(first).await;
    // Still running since the update's own reboot: soaking.
    assert_eq!(b.checkin(first, "2.0.0", 30).await, None);
    b.fleet.step_rollouts().await.unwrap();
    let soaking = b.fleet.deployment(d.id).await.unwrap();
    assert_eq!(soaking.deployment.status, DeploymentStatus::Active);
    assert_eq!(soaking.rollout.unwrap().waves[0].soaking, 1);
    // Its uptime goes back to 0 on the new image: a crash, not a success.
    assert_eq!(b.checkin(first, "2.0.0", 0).await, None);
    let dev = b.fleet.device(&b.macs[first]).await.unwrap();
    assert!(dev.last_reset_at.is_some(), "the restart is recorded");
    b.fleet.step_rollouts().await.unwrap();
    let failed = b.fleet.deployment(d.id).await.unwrap();
    assert_eq!(failed.deployment.status, DeploymentStatus::Paused);
    let w1 = &failed.rollout.unwrap().waves[0];
    assert_eq!(w1.failed, 1);
    let why = w1.devices[0].reason.clone().unwrap();
    assert!(why.contains("uptime went back"), "{why}");
    b.fleet.close().await;
}

#[tokio::test]
async fn a_device_that_joins_after_the_rollout_began_waits_for_a_later_wave() {
    let b = bench(3).await;
    let d = b
        .fleet
        .deployment_create(NewDeployment {
            firmware_id: b.fw.id,
            plan: Some(RolloutPlan {
                waves: vec![
                    WaveSpec::Count { count: 1 },
                    WaveSpec::Percent { percent: 100 },
                ],
                soak_s: 0,
                ..Preset::AllAtOnce.plan()
            }),
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    // A new device on the LAN, of the same project.
    let mac = "24:0A:C4:00:03:01";
    let r = b
        .fleet
        .checkin(report(mac, "1.0.0", None, 50), None, None, false)
        .await
        .unwrap();
    assert!(r.update.is_none(), "not offered while wave 1 runs");
    let detail = b.fleet.deployment(d.id).await.unwrap();
    let rollout = detail.rollout.unwrap();
    let late = rollout.waves[1]
        .devices
        .iter()
        .find(|m| m.mac == mac)
        .expect("in wave 2");
    assert!(late.late);
    assert_eq!(late.state, MemberState::Waiting);
    let first = (0..3)
        .find(|&i| rollout.waves[0].devices[0].mac == b.macs[i])
        .unwrap();
    b.update(first).await;
    b.fleet.step_rollouts().await.unwrap();
    let token = r.token.unwrap();
    let again = b
        .fleet
        .checkin(report(mac, "1.0.0", None, 60), Some(&token), None, false)
        .await
        .unwrap();
    assert!(again.update.is_some(), "offered once wave 2 started");
    b.fleet.close().await;
}

#[tokio::test]
async fn rolling_back_returns_each_device_to_its_own_previous_image() {
    let b = bench(0).await;
    let import = |version: &'static str| {
        let fleet = b.fleet.clone();
        async move {
            let image = synth::AppImage::new(Chip::Esp32)
                .project("blink")
                .version(version)
                .payload_len(20_000)
                .build();
            fleet
                .import(
                    ImportRequest {
                        filename: format!("blink-{version}.bin"),
                        project: None,
                        version: None,
                        source: ImportSource::Upload,
                        source_path: None,
                        only_project: None,
                    },
                    &image[..],
                )
                .await
                .unwrap()
                .firmware
        }
    };
    let v10 = import("1.0.0").await;
    let v11 = import("1.1.0").await;
    // Three devices: two on 1.0.0, one on 1.1.0, each reporting its image's hash.
    let devices: Vec<(String, &Firmware)> = vec![
        ("24:0A:C4:00:04:01".into(), &v10),
        ("24:0A:C4:00:04:02".into(), &v10),
        ("24:0A:C4:00:04:03".into(), &v11),
    ];
    let mut tokens = Vec::new();
    let checkin = |mac: &str, fw: &Firmware, token: Option<&str>, uptime: i64| {
        let fleet = b.fleet.clone();
        let req = report(
            mac,
            fw.version.as_deref().unwrap(),
            Some(&fw.sha256),
            uptime,
        );
        let token = token.map(str::to_string);
        async move {
            fleet
                .checkin(req, token.as_deref(), None, false)
                .await
                .unwrap()
        }
    };
    for (mac, fw) in &devices {
        tokens.push(checkin(mac, fw, None, 100).await.token.unwrap());
    }
    let d = b
        .fleet
        .deployment_create(NewDeployment {
            firmware_id: b.fw.id,
            preset: Some(Preset::AllAtOnce),
            ..NewDeployment::default()
        })
        .await
        .unwrap();
    let downloading = |token: &str, update_id: i64| {
        let fleet = b.fleet.clone();
        let token = token.to_string();
        async move {
            let report = ProgressRequest {
                update_id,
                state: "downloading".into(),
                progress: 10,
                error: None,
            };
            fleet.progress(Some(&token), report).await.unwrap();
        }
    };
    // Every device takes 2.0.0.
    for ((mac, fw), token) in devices.iter().zip(&tokens) {
        let offer = checkin(mac, fw, Some(token), 110)
            .await
            .update
            .expect("offered");
        downloading(token, offer.id).await;
        assert!(checkin(mac, &b.fw, Some(token), 1).await.update.is_none());
    }
    let rolled = b.fleet.deployment_rollback(d.id, None, None).await.unwrap();
    assert_eq!(rolled.stopped.status, DeploymentStatus::Stopped);
    assert!(rolled.left.is_empty(), "{:?}", rolled.left);
    assert_eq!(rolled.created.len(), 2, "one rollback per earlier image");
    // Each device is offered the image it ran before, and comes back on it.
    for ((mac, fw), token) in devices.iter().zip(&tokens) {
        let offer = checkin(mac, &b.fw, Some(token), 5)
            .await
            .update
            .unwrap_or_else(|| panic!("{mac} offered its earlier image"));
        assert_eq!(offer.sha256, fw.sha256, "{mac}");
        downloading(token, offer.id).await;
        assert!(checkin(mac, fw, Some(token), 1).await.update.is_none());
        let dev = b.fleet.device(mac).await.unwrap();
        assert_eq!(dev.sha256.as_deref(), Some(fw.sha256.as_str()));
    }
    // Nothing left to roll back twice.
    let again = b
        .fleet
        .deployment_rollback(rolled.created[0].id, None, None)
        .await;
    assert!(
        again.is_ok(),
        "a rollback can itself be rolled back: {again:?}"
    );
    b.fleet.close().await;
}

#[tokio::test]
async fn sqlite_a_step_reads_each_members_attempts_through_its_own_index() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
    let rows: Vec<(i64, i64, i64, String)> = db::query_as(&format!("EXPLAIN QUERY PLAN {FACTS}"))
        .bind(1_i64)
        .bind(1_i64)
        .fetch_all(fleet.db())
        .await
        .unwrap();
    let plan = rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ");
    assert!(
        plan.contains("updates_mac") && !plan.contains("updates_deployment"),
        "a member's attempts must be found through its own, not by reading the rollout's: {plan}"
    );
    assert!(
        !plan.contains("SCAN f") && !plan.contains("SCAN x") && !plan.contains("SCAN u"),
        "{plan}"
    );
    fleet.close().await;
}
