//! Field protocols: devices that run a stock updater and cannot be changed (Arduino `HTTPUpdate`,
//! `ESP8266httpUpdate`, esp32FOTA, the legacy "ESP32 OTA Update Server" firmware). docs/protocols.md
//! §2–4.
//!
//! These clients say little: a MAC, sometimes the running image's MD5 or SHA-256, sometimes a
//! free-text version, never the chip (only ESP8266httpUpdate's headers name its family, and that
//! family has one chip). [`check`] turns one such request into the same rules the
//! native protocol follows: the device is registered (or refreshed) by MAC; when its hash matches
//! a library image, chip, project and version come from that image; an open attempt is
//! reconciled (`done` when it runs the new image, `failed` when it came back on the old one after
//! a full download); then [`updates::decide`] picks the offer. When a deployment targets the device
//! but nothing can be offered (free space too small, chip unknown, filesystem mode), the reason is
//! kept in `devices.hold` so the UI can show it.
//!
//! These clients report no progress either, so the server counts what it sends: see
//! [`download_for`], [`download_started`], [`download_bytes`] and [`download_ended`].

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;

use crate::db::Conn;

use crate::db;
use crate::devices::{self, Device};
use crate::error::{CoreError, Result};
use crate::events::Event;
use crate::firmware::{self, Firmware};
use crate::hot::{Entry, Heartbeat, Remembered};
use crate::updates::{self, Decision, Update, UpdateFailure, UpdateState, Why};
use crate::{trust, validate, Fleet};

/// What the device asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMode {
    /// An application image (`x-…-mode: sketch`, esp32FOTA, legacy).
    App,
    /// A filesystem image (`x-…-mode: spiffs`): not served yet.
    Filesystem,
    /// Only the version it would get (ESP8266 `x-ESP8266-mode: version`); no attempt is opened.
    VersionOnly,
    /// esp32FOTA's manifest for a device that named itself (`?id=`): what it may install, no
    /// attempt opened (it fetches the image by itself, which opens one).
    Manifest,
}

/// One request of a field client, as parsed by the server.
#[derive(Debug, Clone)]
pub struct FieldCheck {
    pub mac: String,
    /// `arduino`, `esp8266`, `esp32fota` or `legacy`.
    pub protocol: &'static str,
    pub mode: FieldMode,
    pub md5: Option<String>,
    pub sha256: Option<String>,
    pub version: Option<String>,
    pub free_space: Option<i64>,
    pub ip: Option<String>,
    /// Enrol an unknown MAC (stock updaters). Legacy devices must be added by the admin first.
    pub register: bool,
    /// The device authenticated with the forgeable legacy shared secret.
    pub weak_auth: bool,
    /// The request came over TLS (recorded as the device's `tls`).
    pub tls: bool,
}

#[derive(Debug, Clone)]
pub enum FieldAnswer {
    /// Install this image; the update row tracks the attempt.
    Offer {
        update: Box<Update>,
        firmware: Box<Firmware>,
    },
    /// [`FieldMode::VersionOnly`]: the image the device would get.
    Target { firmware: Box<Firmware> },
    /// Nothing to do, and why.
    Nothing { reason: String },
    /// [`FieldMode::Manifest`]: the `(type, image)` entries of its esp32FOTA manifest.
    Manifest { entries: Vec<(String, Firmware)> },
}

fn md5(input: &str) -> Result<String> {
    let s = input.trim();
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CoreError::invalid(
            "invalid_md5",
            format!(
                "'{}' is not an MD5: it must be 32 hexadecimal characters",
                validate::printable(input, 40)
            ),
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// Register or refresh the device, reconcile its open attempt, and decide what it gets. Returns
/// the device's MAC as otafleet writes it and the answer.
///
/// A request that repeats exactly what the database path last answered (same protocol, mode,
/// MAC, hashes, version, free space, address, transport) is answered from memory ([`crate::hot`]): for a
/// stock client as for a native one, the same report gets the same answer until something
/// changes, and whatever changes it forgets the memory first. Only its time seen is written,
/// with the other heartbeats.
pub(crate) async fn check(fleet: &Fleet, req: FieldCheck) -> Result<(String, FieldAnswer)> {
    let mac = validate::mac(&req.mac)?;
    let md5 = req.md5.as_deref().map(md5).transpose()?;
    let sha = req.sha256.as_deref().map(validate::sha256).transpose()?;
    if req.free_space.is_some_and(|f| f < 0) {
        return Err(CoreError::invalid(
            "invalid_free_space",
            "free space cannot be negative",
        ));
    }
    let digest = field_digest(&mac, &req, md5.as_deref(), sha.as_deref());
    if let Some(answer) = quiet(fleet, &mac, &digest) {
        return Ok((mac, answer));
    }
    // Boxed: the database path's future is large, and a quiet check would otherwise move it too.
    let answer = Box::pin(recorded(fleet, &mac, req, md5, sha, digest)).await?;
    Ok((mac, answer))
}

/// The digest a stock client's remembered answer is keyed by: everything of the request the
/// database path reads, each field length-prefixed so that no two requests share a digest.
fn field_digest(mac: &str, req: &FieldCheck, md5: Option<&str>, sha: Option<&str>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |v: Option<&[u8]>| match v {
        Some(v) => {
            h.update((v.len() as u64 + 1).to_le_bytes());
            h.update(v);
        }
        None => h.update(0u64.to_le_bytes()),
    };
    // A prefix no native digest starts with (that one starts with a token's length).
    field(Some(b"stock client"));
    field(Some(req.protocol.as_bytes()));
    field(Some(&[
        req.mode as u8,
        u8::from(req.register),
        u8::from(req.weak_auth),
        // A device that moves between plain HTTP and HTTPS takes the database path, which
        // records its transport.
        u8::from(req.tls),
    ]));
    field(Some(mac.as_bytes()));
    field(md5.map(str::as_bytes));
    field(sha.map(str::as_bytes));
    field(req.version.as_deref().map(str::as_bytes));
    field(
        req.free_space
            .map(i64::to_le_bytes)
            .as_ref()
            .map(|b| &b[..]),
    );
    field(req.ip.as_deref().map(str::as_bytes));
    h.finalize().into()
}

/// The answer from memory, if this exact request was answered before and nothing changed since.
fn quiet(fleet: &Fleet, mac: &str, digest: &[u8; 32]) -> Option<FieldAnswer> {
    let now = crate::time::now();
    let (event_due, answer, _) = fleet.hot().answer(
        mac,
        digest,
        Heartbeat {
            last_seen: now.clone(),
            signal: None,
        },
    )?;
    let Some(Remembered::Field(answer)) = answer.as_deref() else {
        return None;
    };
    if event_due && fleet.events().has_watchers() {
        fleet.events().publish(Event::Seen {
            mac: mac.to_string(),
            last_seen: now,
            rssi: None,
            uptime_s: None,
        });
    }
    Some(answer.clone())
}

/// The database path: register or refresh, reconcile, decide, all in one transaction under the
/// writer's lock (for this device only: nothing here changes another device's answer).
async fn recorded(
    fleet: &Fleet,
    mac: &str,
    req: FieldCheck,
    md5: Option<String>,
    sha: Option<String>,
    digest: [u8; 32],
) -> Result<FieldAnswer> {
    // The image lookups below read outside the lock: an answer is remembered only if no writer
    // that may change it (an import, a delete) ran since they started.
    let generation = fleet.hot().generation();
    // A sketch's version header is free text; an unusable one is ignored, not fatal.
    let version = req
        .version
        .as_deref()
        .and_then(|v| validate::version(v).ok());
    let by_sha = match &sha {
        Some(s) => firmware::by_any_hash(fleet.db(), s).await?,
        None => None,
    };
    let running = match (by_sha, &md5) {
        (Some(fw), _) => Some(fw),
        (None, Some(m)) => firmware::by_any_hash(fleet.db(), m).await?,
        (None, None) => None,
    };
    let reported_hash = running.as_ref().map(|f| f.sha256.clone()).or(sha).or(md5);
    let _writer = fleet.device_write_lock(mac).await;
    let mut tx = crate::db::begin_write(fleet.db()).await?;
    let existing = devices::find(&mut tx, mac).await?;
    if existing.is_none() && !req.register {
        return Err(CoreError::not_found(format!("device {mac}")));
    }
    // ESP8266httpUpdate names its chip family in every header (`x-ESP8266-…`) and there is one
    // ESP8266 family, so its chip is known even when its sketch is not in the library. (The ESP32
    // headers are sent by every ESP32-family chip alike, so they say nothing about the chip.)
    let chip = running
        .as_ref()
        .map(|f| f.chip.clone())
        .or_else(|| (req.protocol == "esp8266").then(|| "esp8266".to_string()));
    let project = running.as_ref().and_then(|f| f.project.clone());
    if let Err(e) = admit(&mut tx, mac, existing.as_ref(), &req, running.as_ref()).await? {
        if existing.is_some() {
            trust::record(&mut tx, mac, req.protocol, req.ip.as_deref(), &e).await?;
            tx.commit().await?;
            drop(_writer);
            fleet.publish_device(mac).await;
        } else {
            tracing::warn!(%mac, protocol = req.protocol, code = e.code(), error = %e, "field request refused");
        }
        return Err(e);
    }
    let version = running.as_ref().and_then(|f| f.version.clone()).or(version);
    let now = crate::time::now();
    devices::record_field(
        &mut tx,
        &devices::FieldReport {
            mac,
            chip: chip.as_deref(),
            project: project.as_deref(),
            version: version.as_deref(),
            sha256: reported_hash.as_deref(),
            ip: req.ip.as_deref(),
            free_space: req.free_space,
            protocol: req.protocol,
            weak_auth: req.weak_auth,
            tls: req.tls,
            now: &now,
        },
    )
    .await?;
    let mut device = devices::load(&mut tx, mac).await?;
    let mut changed: Vec<Update> = Vec::new();
    if reported_hash.is_some() || device_reported_version(&req) {
        changed.extend(updates::reconcile(&mut tx, &device).await?);
    } else {
        // esp32FOTA reports nothing about itself. A device that asks again after a complete
        // download has rebooted; we infer it runs the new image (if it does not, it downloads
        // the image again, which opens a new pass).
        if let Some(open) = updates::open_for(&mut tx, mac).await? {
            if open.state == UpdateState::Installing {
                changed.push(
                    updates::set_state(&mut tx, open.id, UpdateState::Done, 100, Why::NONE).await?,
                );
                devices::set_running(&mut tx, mac, &open.sha256, open.version.as_deref()).await?;
                device = devices::load(&mut tx, mac).await?;
            }
        }
    }
    let target = updates::target_for(&mut tx, &device).await?;
    let wanted = target
        .as_ref()
        .is_some_and(|(_, fw)| !updates::runs(&device, fw));
    let mut applied = None;
    let mut slot_wait = false;
    let answer = match req.mode {
        FieldMode::Filesystem => FieldAnswer::Nothing {
            reason: "the device asked for a filesystem image (mode spiffs); otafleet serves application images only for now".into(),
        },
        FieldMode::VersionOnly => match target {
            Some((_, fw)) if device.chip.as_deref() == Some(fw.chip.as_str()) => {
                FieldAnswer::Target {
                    firmware: Box::new(fw),
                }
            }
            _ => FieldAnswer::Nothing {
                reason: "no image is deployed for this device".into(),
            },
        },
        FieldMode::Manifest => FieldAnswer::Manifest {
            entries: crate::manifest::entries_on(&mut tx, Some(&device)).await?,
        },
        FieldMode::App => {
            let decided = updates::decide(&mut tx, &device).await?;
            changed.extend(decided.closed);
            match decided.decision {
                Decision::Offer { update, firmware } => {
                    if decided.created {
                        changed.push((*update).clone());
                    }
                    FieldAnswer::Offer { update, firmware }
                }
                Decision::Nothing { reason, verdict } => {
                    applied = updates::settles(verdict.as_ref(), decided.deployment_id);
                    slot_wait = matches!(verdict, Some(crate::offer::Verdict::Queued { .. }));
                    FieldAnswer::Nothing { reason }
                }
            }
        }
    };
    let deployments = crate::deployments::after_change(&mut tx, &changed, applied).await?;
    let hold = match &answer {
        // Version queries (ESP8266 `mode: version`, esp32FOTA manifests) start nothing, so
        // there is nothing to hold.
        FieldAnswer::Nothing { reason }
            if (wanted && req.mode == FieldMode::App) || req.mode == FieldMode::Filesystem =>
        {
            Some(reason.clone())
        }
        _ => None,
    };
    if let Some(reason) = &hold {
        tracing::info!(%mac, protocol = req.protocol, %reason, "device not offered its deployed image");
    }
    devices::set_hold(&mut tx, mac, hold.as_deref()).await?;
    tx.commit().await?;
    // The same request now gets the same answer (what was just written is a fixed point: an
    // attempt closed or opened here stays as it is for the same report) until a writer changes
    // something, so it is remembered — under the lock, after the commit, and only if no writer
    // ran since the image lookups above.
    // A device waiting for a rollout's free slot is not remembered: the slot frees when another
    // device's attempt ends, which changes no generation.
    if fleet.hot().generation() == generation && !slot_wait {
        fleet.hot().record(
            mac,
            Entry {
                generation,
                digest,
                last_event_ms: AtomicU64::new(fleet.hot().since_start_ms()),
                answer: Some(Arc::new(Remembered::Field(answer.clone()))),
                config_version: None,
                booted: None,
                uptime_s: AtomicI64::new(i64::MIN),
            },
        );
    }
    drop(_writer);
    for u in changed {
        fleet.events().publish(Event::Update {
            update: Box::new(u),
        });
    }
    fleet.publish_deployments(deployments).await;
    fleet.publish_device(mac).await;
    Ok(answer)
}

/// The trust rules for a stock client ([`crate::trust`]): no token-enrolled device, only the
/// expected protocol, enrolment open for new MACs, and no project change unless the device runs
/// an image this server sent it (an admin's deployment of another project). The outer `Result`
/// is the database's; the inner one the verdict.
async fn admit(
    conn: &mut Conn,
    mac: &str,
    existing: Option<&Device>,
    req: &FieldCheck,
    running: Option<&Firmware>,
) -> Result<Result<()>> {
    let open = match existing {
        Some(d) if d.expect_protocol.is_some() || d.token_hash.is_some() => true,
        _ => crate::settings::open_enrolment(conn).await?,
    };
    if let Err(e) = trust::judge(mac, existing, req.protocol, open, false) {
        return Ok(Err(e));
    }
    let project = running
        .and_then(|fw| fw.project.as_deref())
        .or(existing.and_then(|d| d.project.as_deref()));
    if let Some(p) = project {
        let allowed = crate::projects::enrolment_of(conn, p).await?;
        if let Err(e) = trust::project_protocol(mac, Some(p), allowed.as_deref(), req.protocol) {
            return Ok(Err(e));
        }
    }
    if let (Some(d), Some(fw)) = (existing, running) {
        if let Err(e) = trust::project_change(mac, d.project.as_deref(), fw.project.as_deref()) {
            if !updates::was_sent(conn, mac, &fw.sha256).await? {
                return Ok(Err(e));
            }
        }
    }
    Ok(Ok(()))
}

fn device_reported_version(req: &FieldCheck) -> bool {
    req.version.is_some()
}

/// Who asks for a per-device download: the protocol of the route, the native device token when
/// one was sent, and the address the request came from (for the refusal record).
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub protocol: &'static str,
    pub token: Option<&'a str>,
    pub from: Option<&'a str>,
}

/// The attempt a per-device download belongs to: the device's open update for this image, or a
/// new one from [`updates::decide`] when the device's target is this image. A device whose chip
/// is unknown and who fetches an image by itself (esp32FOTA picked it by its project name) is
/// taken to be of that image's chip and project. `None`: the bytes are served uncounted (an
/// unknown MAC). A device the trust rules do not let `asker` speak for ([`crate::trust`]: a
/// token-enrolled device without its token, another expected protocol) is refused with
/// [`CoreError::Refused`], recorded, and nothing of it changes.
pub(crate) async fn download_for(
    fleet: &Fleet,
    mac: &str,
    fw: &Firmware,
    asker: Asker<'_>,
) -> Result<Option<Update>> {
    let mac = validate::mac(mac)?;
    // Only this device's rows change (its chip adopted, its attempt opened).
    let _writer = fleet.device_write_lock(&mac).await;
    let mut tx = crate::db::begin_write(fleet.db()).await?;
    let Some(mut device) = devices::find(&mut tx, &mac).await? else {
        return Ok(None);
    };
    let authenticated = asker.token.is_some_and(|t| {
        device.token_hash.as_deref() == Some(crate::checkin::hash_token(t).as_str())
    });
    if !authenticated {
        if let Err(e) = trust::judge(&mac, Some(&device), asker.protocol, true, false) {
            trust::record(&mut tx, &mac, asker.protocol, asker.from, &e).await?;
            tx.commit().await?;
            drop(_writer);
            fleet.publish_device(&mac).await;
            return Err(e);
        }
    }
    // An esp32FOTA device says nothing about itself: its attempt was taken as installed when it
    // asked again after the whole image was sent. Fetching that image again proves it is not
    // installed (the last bytes were sent but never reached it, or its updater refused them).
    let mut unconfirmed = None;
    if device.protocol.as_deref() == Some("esp32fota")
        && device.sha256.as_deref() == Some(fw.sha256.as_str())
    {
        if let Some(u) = updates::unconfirm_inferred(&mut tx, &mac, &fw.sha256).await? {
            devices::restore_running(
                &mut tx,
                &mac,
                u.from_sha256.as_deref(),
                u.from_version.as_deref(),
            )
            .await?;
            device = devices::load(&mut tx, &mac).await?;
            tracing::info!(%mac, update = u.id, "esp32FOTA device fetched again the image it was taken to have installed: the attempt is failed and a new one opens");
            unconfirmed = Some(u);
        }
    }
    if unconfirmed.is_none() {
        if let Some(open) = updates::open_for(&mut tx, &mac).await? {
            if open.sha256 == fw.sha256 {
                return Ok(Some(open));
            }
        }
    }
    if device.chip.is_none() {
        devices::adopt_image(&mut tx, &mac, &fw.chip, fw.project.as_deref()).await?;
        device = devices::load(&mut tx, &mac).await?;
    }
    let decided = updates::decide(&mut tx, &device).await?;
    let update = match decided.decision {
        Decision::Offer { update, firmware } if firmware.sha256 == fw.sha256 => Some(*update),
        _ => None,
    };
    let deployments = match &unconfirmed {
        Some(u) => crate::deployments::after_change(&mut tx, std::slice::from_ref(u), None).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    if let Some(u) = unconfirmed {
        // What it was remembered to run is no longer true.
        fleet.hot().forget(&mac);
        drop(_writer);
        fleet.events().publish(Event::Update {
            update: Box::new(u),
        });
        fleet.publish_deployments(deployments).await;
        fleet.publish_device(&mac).await;
    }
    for u in decided.closed {
        fleet.events().publish(Event::Update {
            update: Box::new(u),
        });
    }
    if let (Some(u), true) = (&update, decided.created) {
        fleet.events().publish(Event::Update {
            update: Box::new(u.clone()),
        });
    }
    Ok(update)
}

/// A counted response starts sending: the attempt is `downloading`. A pass from byte 0 starts
/// the byte count afresh, so a restarted download does not count its first bytes twice.
pub(crate) async fn download_started(fleet: &Fleet, update_id: i64, start: u64) -> Result<Update> {
    // Only this attempt's device's answer changes: its memory is dropped before the write.
    let _writer = fleet.quiet_write_lock().await;
    let mut conn = fleet.db().acquire().await?;
    let u = updates::get(&mut conn, update_id).await?;
    fleet.hot().forget(&u.mac);
    // A range that starts mid-image after the last byte went out is a straggler of the same
    // pass (ranges are recorded by separate tasks); it must not undo `installing`.
    if u.is_finished() || (start > 0 && u.state == UpdateState::Installing) {
        return Ok(u);
    }
    if start == 0 {
        db::query("UPDATE updates SET bytes_sent = 0 WHERE id = ?")
            .bind(update_id)
            .execute(&mut *conn)
            .await?;
    }
    let progress = if start == 0 { 0 } else { u.progress };
    let u = updates::set_state(
        &mut conn,
        update_id,
        UpdateState::Downloading,
        progress,
        Why::NONE,
    )
    .await?;
    drop(_writer);
    publish(fleet, u.clone()).await;
    Ok(u)
}

/// Record `bytes` more sent for an attempt at an image of `size` bytes.
pub(crate) async fn download_bytes(
    fleet: &Fleet,
    update_id: i64,
    bytes: i64,
    size: i64,
) -> Result<()> {
    let u = {
        // A byte count changes no answer; the device's memory is dropped all the same, under the
        // lock, so nothing remembered ever holds an older row than the database.
        let _writer = fleet.quiet_write_lock().await;
        let mut conn = fleet.db().acquire().await?;
        let u = updates::add_bytes(&mut conn, update_id, bytes, size).await?;
        fleet.hot().forget(&u.mac);
        u
    };
    fleet.events().publish(Event::Update {
        update: Box::new(u),
    });
    Ok(())
}

/// A counted response ended. Cut short → `interrupted`; delivered whole up to the image's last
/// byte → `installing` (the device flashes and reboots; its next request confirms).
pub(crate) async fn download_ended(
    fleet: &Fleet,
    update_id: i64,
    complete: bool,
    reached_end: bool,
) -> Result<()> {
    let u = {
        let _writer = fleet.quiet_write_lock().await;
        let mut conn = fleet.db().acquire().await?;
        let u = updates::get(&mut conn, update_id).await?;
        if u.is_finished() {
            return Ok(());
        }
        fleet.hot().forget(&u.mac);
        if !complete {
            updates::set_state(
                &mut conn,
                update_id,
                UpdateState::Interrupted,
                u.progress,
                Why::failed(
                    UpdateFailure::DownloadCut,
                    "the connection closed before the whole image was sent",
                ),
            )
            .await?
        } else if reached_end {
            // The image's last byte went out whole. Earlier ranges may still be counting in
            // their own tasks; their bytes land after this and bring the count to the size.
            updates::set_state(
                &mut conn,
                update_id,
                UpdateState::Installing,
                100,
                Why::NONE,
            )
            .await?
        } else {
            return Ok(());
        }
    };
    publish(fleet, u).await;
    Ok(())
}

async fn publish(fleet: &Fleet, u: Update) {
    let mac = u.mac.clone();
    fleet.events().publish(Event::Update {
        update: Box::new(u),
    });
    fleet.publish_device(&mac).await;
}
