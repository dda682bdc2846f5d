//! Every verdict, for every protocol a device may speak (and for a device that never checked
//! in): one table, one row per (protocol, situation), each with the verdict it must give.

use super::*;
use crate::firmware::IdentitySource;
use crate::updates::{Update, UpdateState};

const PROTOCOLS: [&str; 5] = ["native", "arduino", "esp8266", "esp32fota", "legacy"];

fn image(chip: &str, project: &str, version: Option<&str>) -> Firmware {
    Firmware {
        id: 7,
        filename: "app.bin".into(),
        size: 100_000,
        sha256: "a".repeat(64),
        md5: "b".repeat(32),
        chip: chip.into(),
        format: "esp32_app".into(),
        project: Some(project.into()),
        project_source: IdentitySource::AppDesc,
        version: version.map(Into::into),
        version_source: IdentitySource::AppDesc,
        idf_version: None,
        build_date: None,
        build_time: None,
        secure_version: None,
        elf_sha256: None,
        appended_sha256: Some("c".repeat(64)),
        source: "upload".into(),
        source_path: None,
        uploaded_at: "2026-01-01T00:00:00Z".into(),
        devices_running: 0,
    }
}

/// A device of `protocol` on chip `chip` (esp8266 devices are ESP8266s), project `climate`,
/// running 1.0.0 from another image.
fn device(protocol: Option<&str>) -> Device {
    let chip = if protocol == Some("esp8266") {
        "esp8266"
    } else {
        "esp32"
    };
    Device {
        mac: "24:0A:C4:00:00:01".into(),
        name: None,
        name_source: None,
        admin_name: None,
        reported_name: None,
        notes: None,
        tags: Default::default(),
        chip: Some(chip.into()),
        project: Some("climate".into()),
        version: Some("1.0.0".into()),
        sha256: Some("d".repeat(64)),
        ip: None,
        rssi: None,
        free_space: Some(1_000_000),
        uptime_s: None,
        token_hash: None,
        protocol: protocol.map(Into::into),
        weak_auth: false,
        tls: None,
        source: "checkin".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        last_seen: None,
        last_reset_at: None,
        hold: None,
        hostname: None,
        mdns_service: None,
        mdns_instance: None,
        mdns_port: None,
        mdns_txt: None,
        mdns_seen: None,
        mdns_gone: None,
        expect_protocol: None,
        mqtt_id: None,
        mqtt_connected_at: None,
        mqtt_gone_at: None,
        online: false,
        enrolled: false,
        auth: Default::default(),
        update: None,
        refused: None,
    }
}

fn attempt(id: i64, deployment: i64, state: UpdateState, retry: bool) -> Update {
    Update {
        id,
        mac: "24:0A:C4:00:00:01".into(),
        firmware_id: Some(7),
        deployment_id: Some(deployment),
        sha256: "a".repeat(64),
        version: Some("1.1.0".into()),
        from_version: Some("1.0.0".into()),
        from_sha256: None,
        state,
        progress: 40,
        bytes_sent: 0,
        error: None,
        failure: None,
        retry,
        created_at: String::new(),
        updated_at: String::new(),
        finished_at: None,
    }
}

const RULE: Rule = Rule {
    deployment_id: 3,
    rollback: false,
    allow_other_project: false,
};

/// One situation: how to change the device, image, rule and history from the baseline (a
/// climate 1.0.0 device of `protocol`, a climate 1.1.0 image for its chip, no history).
struct Case {
    what: &'static str,
    setup: fn(&mut Device, &mut Firmware, &mut Rule, &mut Vec<Update>),
    /// The verdict per protocol, in [`PROTOCOLS`] order.
    expect: [VerdictKind; 5],
}

fn chip_of(d: &Device) -> String {
    d.chip.clone().unwrap_or_default()
}

use VerdictKind::*;

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "a newer version of its project",
            setup: |_, _, _, _| {},
            expect: [Offer; 5],
        },
        Case {
            what: "running the image (by hash)",
            setup: |d, f, _, _| d.sha256 = Some(f.sha256.clone()),
            expect: [AlreadyRunning; 5],
        },
        Case {
            what: "running the image (by the appended digest Arduino reports)",
            setup: |d, f, _, _| d.sha256 = f.appended_sha256.clone(),
            expect: [AlreadyRunning; 5],
        },
        Case {
            what: "running the image (by MD5, ESP8266 and legacy)",
            setup: |d, f, _, _| d.sha256 = Some(f.md5.clone()),
            expect: [AlreadyRunning; 5],
        },
        Case {
            what: "running the image (by version, no hash reported)",
            setup: |d, _, _, _| {
                d.sha256 = None;
                d.version = Some("1.1.0".into());
            },
            expect: [AlreadyRunning; 5],
        },
        Case {
            what: "an attempt under way",
            setup: |_, _, _, h| h.push(attempt(1, 3, UpdateState::Downloading, false)),
            expect: [InProgress; 5],
        },
        Case {
            what: "a newer version running",
            setup: |d, _, _, _| d.version = Some("2.0.0".into()),
            expect: [NewerRunning; 5],
        },
        Case {
            what: "a newer version running, deployed as a rollback",
            setup: |d, _, r, _| {
                d.version = Some("2.0.0".into());
                r.rollback = true;
            },
            // Neither the legacy sketch nor esp32FOTA installs an older version.
            expect: [Offer, Offer, Offer, Unsupported, Unsupported],
        },
        Case {
            what: "the same version, another build",
            setup: |d, _, _, _| d.version = Some("1.1.0".into()),
            expect: [Offer, Offer, Offer, Unsupported, Unsupported],
        },
        Case {
            what: "an image without a version",
            setup: |_, f, _, _| f.version = None,
            expect: [Offer, Offer, Offer, Unsupported, Unsupported],
        },
        Case {
            what: "another chip",
            setup: |d, f, _, _| {
                f.chip = if chip_of(d) == "esp32" {
                    "esp32c3".into()
                } else {
                    "esp32".into()
                }
            },
            expect: [OtherChip; 5],
        },
        Case {
            what: "another project",
            setup: |_, f, _, _| f.project = Some("benchlab".into()),
            expect: [OtherProject; 5],
        },
        Case {
            what: "another project, allowed",
            setup: |_, f, r, _| {
                f.project = Some("benchlab".into());
                r.allow_other_project = true;
            },
            expect: [Offer; 5],
        },
        Case {
            what: "another project with a lower version, allowed (not a downgrade)",
            setup: |_, f, r, _| {
                f.project = Some("benchlab".into());
                f.version = Some("0.9.0".into());
                r.allow_other_project = true;
            },
            // The legacy sketch and esp32FOTA compare the numbers themselves.
            expect: [Offer, Offer, Offer, Unsupported, Unsupported],
        },
        Case {
            what: "too big for its free space",
            setup: |d, _, _, _| d.free_space = Some(50_000),
            expect: [TooBig; 5],
        },
        Case {
            what: "3 failed attempts in this deployment",
            setup: |_, _, _, h| {
                for id in 1..=3 {
                    h.push(attempt(id, 3, UpdateState::Failed, false));
                }
            },
            expect: [Failed; 5],
        },
        Case {
            what: "2 failed attempts",
            setup: |_, _, _, h| {
                for id in 1..=2 {
                    h.push(attempt(id, 3, UpdateState::Failed, false));
                }
            },
            expect: [Offer; 5],
        },
        Case {
            what: "3 failed attempts in an older deployment (a re-deploy counts afresh)",
            setup: |_, _, _, h| {
                for id in 1..=3 {
                    h.push(attempt(id, 2, UpdateState::Failed, false));
                }
            },
            expect: [Offer; 5],
        },
        Case {
            what: "3 failed attempts, then a Retry that failed once",
            setup: |_, _, _, h| {
                for id in 1..=3 {
                    h.push(attempt(id, 3, UpdateState::Failed, false));
                }
                h.push(attempt(4, 3, UpdateState::Failed, true));
            },
            expect: [Offer; 5],
        },
        Case {
            what: "3 failed attempts, then a Retry that is under way",
            setup: |_, _, _, h| {
                for id in 1..=3 {
                    h.push(attempt(id, 3, UpdateState::Failed, false));
                }
                h.push(attempt(4, 3, UpdateState::Offered, true));
            },
            expect: [InProgress; 5],
        },
        Case {
            what: "cancelled attempts",
            setup: |_, _, _, h| {
                for id in 1..=4 {
                    h.push(attempt(id, 3, UpdateState::Cancelled, false));
                }
            },
            expect: [Offer; 5],
        },
        Case {
            what: "chip unknown",
            setup: |d, _, _, _| d.chip = None,
            // esp32FOTA devices never say their chip; one of a known project takes the image by
            // name (a download then sets its chip).
            expect: [
                ChipUnknown,
                ChipUnknown,
                ChipUnknown,
                ChipUnknown,
                ChipUnknown,
            ],
        },
        Case {
            what: "project unknown",
            setup: |d, _, _, _| d.project = None,
            expect: [Offer, Offer, Offer, Waiting, Offer],
        },
        Case {
            what: "chip and project unknown",
            setup: |d, _, _, _| {
                d.chip = None;
                d.project = None;
            },
            expect: [ChipUnknown, ChipUnknown, ChipUnknown, Waiting, ChipUnknown],
        },
    ]
}

#[test]
fn every_verdict_for_every_protocol() {
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases() {
        for (i, protocol) in PROTOCOLS.iter().enumerate() {
            let mut d = device(Some(protocol));
            let mut f = image(&chip_of(&d), "climate", Some("1.1.0"));
            let (mut r, mut h) = (RULE, Vec::new());
            (case.setup)(&mut d, &mut f, &mut r, &mut h);
            let v = verdict(&d, &r, &f, &h);
            seen.insert(v.kind());
            if v.kind() != case.expect[i] {
                failures.push(format!(
                    "{protocol}, {}: expected {:?}, got {v:?}",
                    case.what, case.expect[i]
                ));
            }
            // Every verdict explains itself in a sentence.
            assert!(!v.reason().is_empty());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Superseded is the deployment list's verdict, never the check-in's.
    let all = [
        Offer,
        InProgress,
        AlreadyRunning,
        NewerRunning,
        OtherChip,
        OtherProject,
        TooBig,
        Failed,
        ChipUnknown,
        Unsupported,
    ];
    for k in all {
        assert!(seen.contains(&k), "no case gives {k:?}");
    }
}

#[test]
fn a_device_that_never_checked_in_waits() {
    let mut d = device(None);
    d.chip = None;
    let f = image("esp32", "climate", Some("1.1.0"));
    assert_eq!(verdict(&d, &RULE, &f, &[]).kind(), Waiting);
    // With its chip set by the admin, it is offered the image at its first check-in.
    d.chip = Some("esp32".into());
    assert_eq!(verdict(&d, &RULE, &f, &[]).kind(), Offer);
}

#[test]
fn failures_count_back_to_the_newest_retry() {
    let f = image("esp32", "climate", Some("1.1.0"));
    let h = vec![
        attempt(1, 3, UpdateState::Failed, false),
        attempt(2, 3, UpdateState::Failed, true),
        attempt(3, 3, UpdateState::Failed, false),
        attempt(4, 9, UpdateState::Failed, false),
    ];
    assert_eq!(failures(&RULE, &f, &h), 2);
}

#[test]
fn the_attempt_limit_names_its_count_and_the_way_out() {
    let f = image("esp32", "climate", Some("1.1.0"));
    let h: Vec<Update> = (1..=3)
        .map(|id| attempt(id, 3, UpdateState::Failed, false))
        .collect();
    let v = verdict(&device(Some("native")), &RULE, &f, &h);
    assert_eq!(v, Verdict::Failed { attempts: 3 });
    assert!(v.reason().contains("Retry"), "{}", v.reason());
}
