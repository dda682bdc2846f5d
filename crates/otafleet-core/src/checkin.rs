//! The native device protocol v1 (docs/protocols.md §1): check-in with trust-on-first-use device
//! tokens, and progress reports.
//!
//! Token rules: an unknown MAC that checks in without a token is enrolled and handed a fresh token
//! (we keep only its SHA-256). From then on a check-in for that MAC must carry that token. A token
//! presented for an unknown MAC, or for another MAC than the one it was issued to, is refused: a
//! second device cannot take over a first one's identity. Who may enrol at all (open enrolment, a
//! device's expected protocol, its project) is [`crate::trust`]'s rule.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db;
use crate::devices::{self, Device};
use crate::error::{CoreError, Result};
use crate::events::Event;
use crate::hot::{Entry, Heartbeat, Remembered};
use crate::updates::{self, Decision, Update, UpdateState};
use crate::{trust, validate, Fleet};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CheckinRequest {
    pub mac: String,
    pub chip: String,
    pub project: String,
    pub version: String,
    /// SHA-256 of the running image (whole file, or the appended digest).
    pub sha256: Option<String>,
    pub free_space: Option<i64>,
    pub ip: Option<String>,
    pub rssi: Option<i64>,
    pub uptime_s: Option<i64>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckinResponse {
    pub device_id: String,
    /// Present only on enrolment: the device must keep it and send it as a Bearer token.
    pub token: Option<String>,
    pub update: Option<Offer>,
    pub checkin_interval_s: u32,
    /// Someone watches this device's logs: send log lines (`POST /api/v1/device/logs`) until an
    /// answer says `false`. Devices without a log hook ignore it.
    #[serde(default)]
    pub logs: bool,
    /// Commands of this device that are queued or sent (not answered, cancelled or expired);
    /// 0 when none. When not 0, fetch them: `GET /api/v1/device/commands`.
    pub commands_pending: i64,
    /// The device's current config version ([`crate::config`]); null when its project defines
    /// no variables. When it differs from the version the device applied, the device reads
    /// `GET /api/v1/device/config` and confirms with `POST /api/v1/device/config`.
    pub config_version: Option<i64>,
}

/// An image offered to a device.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Offer {
    /// The update id to report progress against.
    pub id: i64,
    pub version: Option<String>,
    /// Path of the download, relative to the server (`/api/v1/device/firmware/<sha256>`).
    pub url: String,
    pub size: i64,
    pub sha256: String,
    pub md5: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ProgressRequest {
    pub update_id: i64,
    /// `downloading`, `verifying`, `flashing`, `rebooting`, `done` or `failed`.
    pub state: String,
    /// 0–100.
    pub progress: i64,
    pub error: Option<String>,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Unauthorized {
        code,
        message: message.into(),
    }
}

/// Validated form of a check-in, before anything is written.
struct Clean {
    mac: String,
    chip: String,
    project: String,
    version: String,
    sha256: Option<String>,
    ip: Option<String>,
    name: Option<String>,
    /// The check-in came over TLS (not part of the request body: how it reached the server).
    tls: bool,
}

fn clean(req: &CheckinRequest, remote_ip: Option<String>, tls: bool) -> Result<Clean> {
    let ip = match req.ip.as_deref() {
        Some(ip) => Some(
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| {
                    CoreError::invalid(
                        "invalid_ip",
                        format!("'{}' is not an IP address", validate::printable(ip, 40)),
                    )
                })?
                .to_string(),
        ),
        None => remote_ip,
    };
    if req.free_space.is_some_and(|f| f < 0) || req.uptime_s.is_some_and(|u| u < 0) {
        return Err(CoreError::invalid(
            "invalid_number",
            "free_space and uptime_s cannot be negative",
        ));
    }
    if req.rssi.is_some_and(|r| !(-150..=20).contains(&r)) {
        return Err(CoreError::invalid(
            "invalid_rssi",
            "rssi is a signal level in dBm, between -150 and 20",
        ));
    }
    Ok(Clean {
        mac: validate::mac(&req.mac)?,
        chip: devices::chip(&req.chip)?,
        project: validate::project(&req.project)?,
        version: validate::version(&req.version)?,
        sha256: req.sha256.as_deref().map(validate::sha256).transpose()?,
        ip,
        // An empty name says nothing: the device's reported name stays as it was.
        name: req
            .name
            .as_deref()
            .map(validate::name)
            .transpose()?
            .filter(|n| !n.is_empty()),
        tls,
    })
}

pub(crate) async fn checkin(
    fleet: &Fleet,
    req: CheckinRequest,
    token: Option<&str>,
    remote_ip: Option<String>,
    tls: bool,
) -> Result<CheckinResponse> {
    let c = clean(&req, remote_ip, tls)?;
    if let Some(answer) = token.and_then(|t| quiet(fleet, &c, &req, t)) {
        return Ok(answer);
    }
    // What memory knows of a restart goes when the device's lock is taken: asked first.
    let restarted = req
        .uptime_s
        .is_some_and(|u| fleet.hot().restarted(&c.mac, u));
    // Boxed: the database path's future is large, and every quiet check-in would otherwise
    // allocate and move it too.
    Box::pin(recorded(fleet, c, req, token, restarted)).await
}

/// The database path: authenticate, record the report, reconcile and decide, all in one
/// transaction under the writer's lock.
async fn recorded(
    fleet: &Fleet,
    c: Clean,
    req: CheckinRequest,
    token: Option<&str>,
    restarted: bool,
) -> Result<CheckinResponse> {
    let _writer = fleet.device_write_lock(&c.mac).await;
    let mut tx = crate::db::begin_write(fleet.db()).await?;
    let existing = devices::find(&mut tx, &c.mac).await?;
    let mut issued = None;
    let verdict = admit(&mut tx, &c, existing.as_ref(), token).await?;
    match verdict {
        Ok(true) => issued = Some(new_token()),
        Ok(false) => {}
        Err(e) => {
            if existing.is_some() {
                trust::record(&mut tx, &c.mac, "native", c.ip.as_deref(), &e).await?;
                tx.commit().await?;
                drop(_writer);
                fleet.publish_device(&c.mac).await;
            } else {
                tracing::warn!(mac = %c.mac, code = e.code(), error = %e, "check-in refused");
            }
            return Err(e);
        }
    }
    let now = crate::time::now();
    devices::record_native(
        &mut tx,
        &devices::NativeReport {
            mac: &c.mac,
            name: c.name.as_deref(),
            chip: &c.chip,
            project: &c.project,
            version: &c.version,
            sha256: c.sha256.as_deref(),
            ip: c.ip.as_deref(),
            rssi: req.rssi,
            free_space: req.free_space,
            uptime_s: req.uptime_s,
            token_hash: issued.as_deref().map(hash_token),
            tls: c.tls,
            restarted,
            now: &now,
        },
    )
    .await?;
    let device = devices::load(&mut tx, &c.mac).await?;
    let mut changed: Vec<Update> = Vec::new();
    if let Some(u) = updates::reconcile(&mut tx, &device).await? {
        changed.push(u);
    }
    let decided = updates::decide(&mut tx, &device).await?;
    changed.extend(decided.closed);
    let mut slot_wait = false;
    let (offer, applied) = match decided.decision {
        Decision::Offer { update, firmware } => {
            if decided.created {
                changed.push((*update).clone());
            }
            let offer = Offer {
                id: update.id,
                version: firmware.version,
                url: format!("/api/v1/device/firmware/{}", firmware.sha256),
                size: firmware.size,
                sha256: firmware.sha256,
                md5: firmware.md5,
            };
            (Some(offer), None)
        }
        Decision::Nothing { reason, verdict } => {
            tracing::debug!(mac = %c.mac, %reason, "no update offered");
            slot_wait = matches!(verdict, Some(crate::offer::Verdict::Queued { .. }));
            (
                None,
                updates::settles(verdict.as_ref(), decided.deployment_id),
            )
        }
    };
    let deployments = crate::deployments::after_change(&mut tx, &changed, applied).await?;
    let config_version =
        crate::config::checkin_version(&mut tx, &c.mac, device.project.as_deref()).await?;
    // The same report gets the same answer until something changes, so the next ones can be
    // answered from memory when the answer is "nothing" with nothing under way, or the offer of
    // the attempt just opened or still open (repeating it writes nothing: `reconcile` and
    // `decide` leave an offered attempt as it is for the same report). Anything else — an
    // attempt being installed, waiting for the device to come back — takes this path each time.
    // A device with commands pending is not remembered: queuing one forgets the device's answer
    // (`device_write_lock`), so a remembered answer always has none to tell.
    let commands_pending = crate::commands::pending(&mut tx, &c.mac, &now).await?;
    // Not a device waiting for a rollout's free slot: the slot frees when another device's
    // attempt ends, which changes no generation.
    let rememberable = device.token_hash.is_some()
        && !slot_wait
        && commands_pending == 0
        && (offer.is_some() || updates::open_for(&mut tx, &c.mac).await?.is_none());
    tx.commit().await?;
    // An enrolled device has a token: the one just issued or the one it presented.
    if let (true, Some(token)) = (rememberable, issued.as_deref().or(token)) {
        // Under the lock, after the commit: the generation read here is the committed state's.
        fleet.hot().record(
            &c.mac,
            Entry {
                generation: fleet.hot().generation(),
                digest: report_digest(&c, &req, token),
                last_event_ms: AtomicU64::new(fleet.hot().since_start_ms()),
                answer: offer.clone().map(|o| Arc::new(Remembered::Offer(o))),
                config_version,
                booted: req.uptime_s.and_then(crate::hot::booted_at),
                uptime_s: AtomicI64::new(req.uptime_s.unwrap_or(i64::MIN)),
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
    fleet.publish_device(&c.mac).await;
    let logs = fleet.logs_wanted(&c.mac);
    Ok(CheckinResponse {
        device_id: c.mac,
        token: issued,
        update: offer,
        checkin_interval_s: fleet.timing().checkin_interval_s,
        logs,
        commands_pending,
        config_version,
    })
}

/// Decide whether this check-in may go on: the token rules, then the trust rules
/// ([`crate::trust`]). `Ok(Ok(true))`: enrol (issue a token); `Ok(Ok(false))`: an enrolled
/// device with its token; `Ok(Err(refusal))`: refused.
async fn admit(
    tx: &mut crate::db::Conn,
    c: &Clean,
    existing: Option<&Device>,
    token: Option<&str>,
) -> Result<Result<bool>> {
    let mac = &c.mac;
    if let Some(d) = existing {
        // Before the token: an ESP Admin device's API key is stored like a token.
        if let Err(e) = trust::esp_admin_only(d, "native") {
            return Ok(Err(e));
        }
    }
    let authenticated = match (existing, token) {
        (Some(d), Some(t)) => {
            if d.token_hash.as_deref() != Some(hash_token(t).as_str()) {
                if d.token_hash.is_none() {
                    // Known device that never enrolled (added by the admin): the token it holds
                    // is not ours. Refuse rather than adopt a token we never issued.
                    return Ok(Err(unauthorized("token_unknown", format!("device {mac} presented a token otafleet did not issue; reset it on the device, or check in without a token to enrol"))));
                }
                return Ok(Err(unauthorized("token_mismatch", format!("the token does not belong to device {mac}; a device keeps the token it got at enrolment (reset enrolment in otafleet if it was re-flashed)"))));
            }
            true
        }
        (Some(d), None) => {
            if d.token_hash.is_some() {
                return Ok(Err(unauthorized("token_required", format!("device {mac} is enrolled; send its token as 'Authorization: Bearer <token>' (reset enrolment in otafleet if the device lost it)"))));
            }
            false
        }
        (None, Some(_)) => {
            return Ok(Err(unauthorized(
                "token_unknown",
                format!("device {mac} is not enrolled, but presented a token; check in without a token to enrol"),
            )));
        }
        (None, None) => false,
    };
    // The setting matters only for a MAC nobody has claimed yet.
    let open = match existing {
        Some(d) if d.expect_protocol.is_some() || d.token_hash.is_some() => true,
        _ => crate::settings::open_enrolment(tx).await?,
    };
    if let Err(e) = trust::judge(mac, existing, "native", open, authenticated) {
        return Ok(Err(e));
    }
    let allowed = crate::projects::enrolment_of(tx, &c.project).await?;
    if let Err(e) = trust::project_protocol(mac, Some(&c.project), allowed.as_deref(), "native") {
        return Ok(Err(e));
    }
    if let Some(d) = existing {
        if authenticated {
            if d.project.as_deref().is_some_and(|p| p != c.project) {
                // The holder of the device's token re-flashed it with another project: allowed,
                // and said.
                tracing::warn!(%mac, from = d.project.as_deref(), to = %c.project, "device now runs another project");
            }
        } else if let Err(e) = trust::project_change(mac, d.project.as_deref(), Some(&c.project)) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(!authenticated))
}

/// The digest a remembered answer is keyed by: the token, every field of the report that the
/// database path reads and the transport it came by, each length-prefixed so that no two reports
/// share a digest. (The transport: a device that moves from plain HTTP to HTTPS, or back, takes
/// the database path, which records it.)
fn report_digest(c: &Clean, req: &CheckinRequest, token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |v: Option<&[u8]>| match v {
        Some(v) => {
            h.update((v.len() as u64 + 1).to_le_bytes());
            h.update(v);
        }
        None => h.update(0u64.to_le_bytes()),
    };
    field(Some(token.as_bytes()));
    field(Some(c.chip.as_bytes()));
    field(Some(c.project.as_bytes()));
    field(Some(c.version.as_bytes()));
    field(c.sha256.as_deref().map(str::as_bytes));
    field(c.ip.as_deref().map(str::as_bytes));
    field(c.name.as_deref().map(str::as_bytes));
    field(Some(&[u8::from(c.tls)]));
    field(
        req.free_space
            .map(i64::to_le_bytes)
            .as_ref()
            .map(|b| &b[..]),
    );
    h.finalize().into()
}

/// Answer a check-in that repeats exactly what the database path last answered, from memory
/// ([`crate::hot`]). `None`: take the database path.
fn quiet(fleet: &Fleet, c: &Clean, req: &CheckinRequest, token: &str) -> Option<CheckinResponse> {
    // A different report — a wrong token included, which the database path refuses and logs —
    // takes the database path.
    let digest = report_digest(c, req, token);
    let now = crate::time::now();
    let (event_due, answer, config_version) = fleet.hot().answer(
        &c.mac,
        &digest,
        Heartbeat {
            last_seen: now.clone(),
            signal: Some((req.rssi, req.uptime_s)),
        },
    )?;
    let update = match answer.as_deref() {
        None => None,
        Some(Remembered::Offer(o)) => Some(o.clone()),
        // Only the native path records native entries; a stock client's entry for the same MAC
        // has another digest and never gets here.
        Some(Remembered::Field(_)) => return None,
    };
    if event_due && fleet.events().has_watchers() {
        fleet.events().publish(Event::Seen {
            mac: c.mac.clone(),
            last_seen: now,
            rssi: req.rssi,
            uptime_s: req.uptime_s,
        });
    }
    Some(CheckinResponse {
        device_id: c.mac.clone(),
        token: None,
        update,
        checkin_interval_s: fleet.timing().checkin_interval_s,
        logs: fleet.logs_wanted(&c.mac),
        // Only answers with no command pending are remembered (see `recorded`).
        commands_pending: 0,
        config_version,
    })
}

pub(crate) async fn progress(
    fleet: &Fleet,
    token: Option<&str>,
    req: ProgressRequest,
) -> Result<Update> {
    let token = token.ok_or_else(|| {
        unauthorized(
            "token_required",
            "progress reports need the device token as 'Authorization: Bearer <token>'",
        )
    })?;
    let reported = UpdateState::parse(&req.state)
        .filter(|s| updates::DEVICE_STATES.contains(s))
        .ok_or_else(|| {
            let names: Vec<&str> = updates::DEVICE_STATES.iter().map(|s| s.as_str()).collect();
            CoreError::invalid(
                "invalid_state",
                format!("state must be one of {}", names.join(", ")),
            )
        })?;
    if !(0..=100).contains(&req.progress) {
        return Err(CoreError::invalid(
            "invalid_progress",
            "progress is a percentage from 0 to 100",
        ));
    }
    let token_hash = hash_token(token);
    let mac = device_of(fleet, &token_hash).await?;
    record_progress(fleet, &mac, &token_hash, reported, req).await
}

fn token_unknown() -> CoreError {
    unauthorized(
        "token_unknown",
        "this device token is not known; check in first",
    )
}

/// Who a progress report comes from. Asked outside the writer's lock: a read never waits for the
/// writer (WAL), and the token index (migration 0012) makes it cost the same at any fleet size.
async fn device_of(fleet: &Fleet, token_hash: &str) -> Result<String> {
    devices::mac_by_token(fleet.db(), token_hash)
        .await?
        .ok_or_else(|| {
            tracing::warn!("progress report with an unknown device token refused");
            token_unknown()
        })
}

/// Record a progress report of device `mac`, found by [`device_of`] from `token_hash`.
async fn record_progress(
    fleet: &Fleet,
    mac: &str,
    token_hash: &str,
    reported: UpdateState,
    req: ProgressRequest,
) -> Result<Update> {
    let error = req.error.as_deref().map(|e| validate::printable(e, 500));
    // Progress changes only this device's rows: its memory is dropped, nobody else's.
    let _writer = fleet.device_write_lock(mac).await;
    let mut tx = crate::db::begin_write(fleet.db()).await?;
    // Between the lookup and the lock the admin may have reset the device's enrolment or deleted
    // it: the token must still be this device's now, under the lock, or nothing is written.
    if !devices::holds_token(&mut tx, mac, token_hash).await? {
        tracing::warn!(%mac, "progress report with a token reset meanwhile refused");
        return Err(token_unknown());
    }
    let update = updates::get(&mut tx, req.update_id).await?;
    if update.mac != mac {
        return Err(CoreError::not_found(format!(
            "update {} for device {}",
            req.update_id, mac
        )));
    }
    // What the report means for the update: a device's "done" is its last word before the
    // reboot; only a check-in on the new image confirms.
    let target = if reported == UpdateState::Done {
        UpdateState::Rebooting
    } else {
        reported
    };
    if update.is_finished() {
        if update.state == reported {
            // A repeat of the final state (a device saying "done" after its confirming check-in).
            return Ok(update);
        }
        tracing::warn!(%mac, update = update.id, state = %req.state, current = %update.state,
            "progress report for a finished update refused");
        return Err(CoreError::StaleReport {
            code: "update_finished",
            message: format!(
                "update {} is already {}; nothing more is recorded for it (check in to get a new offer)",
                update.id, update.state
            ),
        });
    }
    if target.stage() < update.state.stage() {
        // A late or reordered report: recording it would move the update back and hide what
        // already happened (a `rebooting` update going back to `flashing` would never be seen
        // to fail its boot).
        tracing::warn!(%mac, update = update.id, state = %req.state, current = %update.state,
            "progress report that would move an update backwards refused");
        return Err(CoreError::StaleReport {
            code: "update_moved_on",
            message: format!(
                "update {} is already {}, past '{}'; an update's state only moves forward (downloading, verifying, flashing, rebooting), so this report was not recorded",
                update.id, update.state, req.state
            ),
        });
    }
    let (state, progress, error) = match reported {
        // Only a check-in on the new image confirms; a device saying "done" is about to reboot.
        UpdateState::Done => (UpdateState::Rebooting, 100, None),
        UpdateState::Failed => (
            UpdateState::Failed,
            req.progress,
            Some(error.unwrap_or_else(|| "the device reported a failure without a reason".into())),
        ),
        s => (s, req.progress, None),
    };
    let why = match &error {
        Some(e) => updates::Why::failed(updates::UpdateFailure::DeviceReported, e),
        None => updates::Why::NONE,
    };
    let updated = updates::set_state(&mut tx, update.id, state, progress, why).await?;
    let deployments =
        crate::deployments::after_change(&mut tx, std::slice::from_ref(&updated), None).await?;
    let last_seen = crate::time::now();
    devices::touch(&mut tx, mac, &last_seen).await?;
    tx.commit().await?;
    drop(_writer);
    fleet.events().publish(Event::Update {
        update: Box::new(updated.clone()),
    });
    fleet.publish_deployments(deployments).await;
    Ok(updated)
}

/// The open attempt at image `sha256` of the device that holds `token`, for counting the bytes
/// of its download (docs/protocols.md §1). `None` for an unknown token or no such attempt: the
/// download is served all the same (images are public by hash), uncounted.
pub(crate) async fn download_attempt(
    fleet: &Fleet,
    token: &str,
    sha256: &str,
) -> Result<Option<Update>> {
    let Some(mac) = devices::mac_by_token(fleet.db(), &hash_token(token)).await? else {
        return Ok(None);
    };
    let mut conn = fleet.db().acquire().await?;
    Ok(updates::open_for(&mut conn, &mac)
        .await?
        .filter(|u| u.sha256 == sha256))
}

/// Count `bytes` more sent for a native device's attempt; a pass from byte 0 (`restart`)
/// starts the count afresh. Only the count: the device reports its own state and progress.
pub(crate) async fn download_sent(
    fleet: &Fleet,
    update: &Update,
    bytes: i64,
    restart: bool,
) -> Result<Update> {
    let u = {
        let _writer = fleet.device_write_lock(&update.mac).await;
        let mut conn = fleet.db().acquire().await?;
        db::query(
            "UPDATE updates SET bytes_sent = CASE WHEN ? THEN 0 ELSE bytes_sent END + ? \
             WHERE id = ? AND state NOT IN ('done','failed','cancelled')",
        )
        .bind(restart)
        .bind(bytes)
        .bind(update.id)
        .execute(&mut *conn)
        .await?;
        updates::get(&mut conn, update.id).await?
    };
    fleet.events().publish(Event::Update {
        update: Box::new(u.clone()),
    });
    Ok(u)
}

#[cfg(test)]
mod tests;
