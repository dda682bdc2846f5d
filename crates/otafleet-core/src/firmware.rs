//! The firmware library: importing images (from an upload stream or a local path), reading what
//! they are, listing and deleting them.
//!
//! Import order is what makes it crash-safe: stream to a temporary file while hashing → inspect the
//! bytes (`otafleet_image::inspect`) → if the same SHA-256 is already in the library, return that
//! record and drop the copy → rename into the blob store → insert the row. Until the row exists
//! nothing can list or serve the image, and the row is written only once the blob is whole.
//!
//! Arduino builds carry the core's descriptor (`arduino-lib-builder`), not the sketch's, so project
//! and version come, in order, from explicit overrides, from the file name (`blink_v1.2.3.bin`) and
//! from the descriptor; each value records where it came from (`project_source`, `version_source`).
//! A generic build-output name (`firmware.bin`, `app.bin`: [`validate::is_generic_name`]) gives
//! no project, so the UI asks instead of showing a guess. The admin corrects an image's project,
//! version or file name afterwards with [`patch`] (source `admin`).

use crate::db::Db;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::blobs::BlobStore;
use crate::db;
use crate::error::{CoreError, Result};
use crate::updates::{self, Update, UpdateFailure, UpdateState, Why};
use crate::validate;

/// Where an image's project or version came from. Stored by name (`project_source`,
/// `version_source`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum IdentitySource {
    /// Given with the upload (`project` / `version` fields or query parameters).
    Override,
    /// Read from the image's ESP-IDF app descriptor.
    AppDesc,
    /// Read from the file name (`blink_v1.2.3.bin`); never from a generic one (`firmware.bin`).
    Filename,
    /// Set or corrected by the admin (`PATCH /api/v1/firmware/{id}`).
    Admin,
    /// Nothing said it: the value is null (the UI asks for it).
    None,
}

/// One image in the library.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Firmware {
    pub id: i64,
    pub filename: String,
    pub size: i64,
    /// SHA-256 of the whole file, lower-case hex; also its ETag and download name.
    pub sha256: String,
    pub md5: String,
    /// `esp32`, `esp32s3`, …, `esp8266`, or `unknown-0x00NN`.
    pub chip: String,
    /// `esp32_app` or `esp8266`.
    pub format: String,
    pub project: Option<String>,
    /// Where `project` came from.
    pub project_source: IdentitySource,
    pub version: Option<String>,
    /// Where `version` came from.
    pub version_source: IdentitySource,
    pub idf_version: Option<String>,
    pub build_date: Option<String>,
    pub build_time: Option<String>,
    pub secure_version: Option<i64>,
    pub elf_sha256: Option<String>,
    /// The 32 bytes appended to the image (what Arduino's `x-ESP32-sketch-sha256` reports).
    pub appended_sha256: Option<String>,
    /// How it arrived: `upload`, `path` or `watch`.
    pub source: String,
    pub source_path: Option<String>,
    pub uploaded_at: String,
    /// Devices whose last check-in reported this image.
    #[sqlx(default)]
    pub devices_running: i64,
}

/// Where an import comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSource {
    Upload,
    Path,
    Watch,
}

impl ImportSource {
    fn as_str(self) -> &'static str {
        match self {
            ImportSource::Upload => "upload",
            ImportSource::Path => "path",
            ImportSource::Watch => "watch",
        }
    }
}

/// What the caller knows besides the bytes.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub filename: String,
    pub project: Option<String>,
    pub version: Option<String>,
    pub source: ImportSource,
    pub source_path: Option<String>,
    /// Refuse (403 `token_scope`, nothing stored) unless the image's project is this one: the
    /// upload of a token scoped to `upload:<project>` ([`crate::access::Scope`]).
    pub only_project: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportOutcome {
    pub firmware: Firmware,
    /// False when the same bytes were already in the library (nothing new was stored).
    pub created: bool,
}

/// An image with its running count: the devices that reported its SHA-256, plus those that
/// reported no hash but its project, version and chip. Two counts, not one with `OR`, so that each
/// searches its own index (migration 0028: `devices_sha256`, `devices_unhashed`) and reads only
/// the devices it counts; the halves are disjoint (a device has a hash or has none).
pub(crate) const SELECT: &str = "SELECT f.*, CAST(\
    (SELECT COUNT(*) FROM devices d WHERE d.sha256 = f.sha256) \
    + (SELECT COUNT(*) FROM devices d WHERE d.sha256 IS NULL AND d.project = f.project \
       AND d.version = f.version AND d.chip = f.chip) AS BIGINT) AS devices_running \
    FROM firmware f";

pub(crate) async fn list(db: &Db) -> Result<Vec<Firmware>> {
    db::query_as(&format!("{SELECT} ORDER BY f.id DESC"))
        .fetch_all(db)
        .await
}

pub(crate) async fn get(db: &Db, id: i64) -> Result<Firmware> {
    db::query_as(&format!("{SELECT} WHERE f.id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("firmware {id}")))
}

pub(crate) async fn by_sha256(db: &Db, sha256: &str) -> Result<Option<Firmware>> {
    db::query_as(&format!("{SELECT} WHERE f.sha256 = ?"))
        .bind(sha256)
        .fetch_optional(db)
        .await
}

/// Find the library image a device runs, by any hash a device might report: the whole-file SHA-256,
/// the appended SHA-256 (Arduino's sketch SHA), or the MD5 (Arduino's sketch MD5).
/// Its `devices_running` is 0: counting reads every device, and the callers (a stock client's
/// check, a rollback) need the image, not the count.
pub(crate) async fn by_any_hash(db: &Db, hash: &str) -> Result<Option<Firmware>> {
    let hash = hash.to_ascii_lowercase();
    db::query_as(
        "SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware \
         WHERE sha256 = ?1 OR appended_sha256 = ?1 OR md5 = ?1 LIMIT 1",
    )
    .bind(hash)
    .fetch_optional(db)
    .await
}

/// A scoped upload's image must be of the scope's project.
fn check_scope(only: Option<&str>, project: Option<&str>) -> Result<()> {
    match only {
        Some(only) if project != Some(only) => Err(CoreError::Forbidden {
            code: "token_scope",
            message: format!(
                "this token may only upload images of the project '{only}', and this image is {}: upload it with a token of its project, or give ?project={only} if it really belongs there",
                project.map_or("of no project".to_owned(), |p| format!("of '{p}'"))
            ),
        }),
        _ => Ok(()),
    }
}

/// An upload that is staged and inspected but not yet part of the library.
pub struct Prepared {
    staged: crate::blobs::Staged,
    info: otafleet_image::ImageInfo,
    req: ImportRequest,
    filename: String,
    project_override: Option<String>,
    version_override: Option<String>,
}

/// Validate the request, stream the bytes to a temporary file and inspect them. Touches no
/// database, so callers run it without holding the writer lock (an upload may be slow).
pub(crate) async fn prepare<R: AsyncRead + Unpin>(
    blobs: &BlobStore,
    max_size: u64,
    req: ImportRequest,
    reader: R,
) -> Result<Prepared> {
    let filename = validate::filename(&req.filename)?;
    let project_override = req.project.as_deref().map(validate::project).transpose()?;
    let version_override = req.version.as_deref().map(validate::version).transpose()?;

    let staged = blobs.stage(reader, max_size).await?;
    if staged.size == 0 {
        staged.discard().await;
        return Err(otafleet_image::RejectReason::Empty.into());
    }
    let bytes = tokio::fs::read(&staged.path).await?;
    let info = match tokio::task::spawn_blocking(move || otafleet_image::inspect(&bytes))
        .await
        .map_err(std::io::Error::other)?
    {
        Ok(info) => info,
        Err(reason) => {
            staged.discard().await;
            return Err(reason.into());
        }
    };
    Ok(Prepared {
        staged,
        info,
        req,
        filename,
        project_override,
        version_override,
    })
}

/// Make a prepared image part of the library (or return the record of the same bytes).
pub(crate) async fn store(db: &Db, blobs: &BlobStore, prepared: Prepared) -> Result<ImportOutcome> {
    let Prepared {
        staged,
        info,
        req,
        filename,
        project_override,
        version_override,
    } = prepared;
    if let Some(existing) = by_sha256(db, &staged.sha256).await? {
        if let Err(e) = check_scope(req.only_project.as_deref(), existing.project.as_deref()) {
            staged.discard().await;
            return Err(e);
        }
        if blobs.exists(&existing.sha256).await? {
            staged.discard().await;
        } else {
            // The row outlived its bytes (a disk restored from backup, a blob deleted by hand):
            // the same bytes put them back, or downloads would keep failing while the library
            // says the image is there.
            tracing::warn!(id = existing.id, sha256 = %existing.sha256, "the image's stored file was missing; restored from this upload");
            blobs.commit(staged).await?;
        }
        return Ok(ImportOutcome {
            firmware: existing,
            created: false,
        });
    }

    let desc = info.app_desc.as_ref();
    let arduino = desc.is_some_and(|d| d.is_arduino());
    let (name_project, name_version) = validate::split_filename(&filename);
    // For IDF apps the descriptor is the truth; for Arduino it names the core, so the file name
    // wins over it.
    let desc_project = desc
        .filter(|_| !arduino)
        .and_then(|d| validate::project(&d.project_name).ok());
    let desc_version = desc
        .filter(|_| !arduino)
        .and_then(|d| validate::version(&d.version).ok());
    let (project, project_source) = pick([
        (project_override, IdentitySource::Override),
        (desc_project, IdentitySource::AppDesc),
        (name_project, IdentitySource::Filename),
    ]);
    let (version, version_source) = pick([
        (version_override, IdentitySource::Override),
        (desc_version, IdentitySource::AppDesc),
        (name_version, IdentitySource::Filename),
    ]);
    if let Err(e) = check_scope(req.only_project.as_deref(), project.as_deref()) {
        staged.discard().await;
        return Err(e);
    }
    let format = serde_json::to_value(info.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());

    let sha256 = staged.sha256.clone();
    let md5 = staged.md5.clone();
    let size = staged.size as i64;
    blobs.commit(staged).await?;

    // A write transaction, as the collector's deletions are (`BlobStore::ensure_stored`).
    let mut tx = db::begin_write(db).await?;
    let inserted = db::query(
        "INSERT INTO firmware (sha256, md5, size, filename, chip, format, project, project_source, \
         version, version_source, idf_version, build_date, build_time, secure_version, elf_sha256, \
         appended_sha256, source, source_path, uploaded_at) \
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(&sha256)
    .bind(&md5)
    .bind(size)
    .bind(&filename)
    .bind(info.chip.name())
    .bind(format)
    .bind(project)
    .bind(project_source)
    .bind(version)
    .bind(version_source)
    .bind(desc.map(|d| d.idf_ver.clone()).filter(|s| !s.is_empty()))
    .bind(desc.map(|d| d.date.clone()).filter(|s| !s.is_empty()))
    .bind(desc.map(|d| d.time.clone()).filter(|s| !s.is_empty()))
    .bind(desc.map(|d| i64::from(d.secure_version)))
    .bind(desc.map(|d| d.app_elf_sha256.clone()))
    .bind(info.appended_sha256.clone())
    .bind(req.source.as_str())
    .bind(req.source_path)
    .bind(crate::time::now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    blobs.ensure_stored(&sha256).await?;
    let firmware = by_sha256(db, &sha256)
        .await?
        .ok_or_else(|| CoreError::not_found("firmware just imported"))?;
    Ok(ImportOutcome {
        firmware,
        // A concurrent import of the same bytes may have won the race: then it is not new.
        created: inserted.rows_affected() == 1,
    })
}

fn pick<const N: usize>(
    candidates: [(Option<String>, IdentitySource); N],
) -> (Option<String>, IdentitySource) {
    candidates
        .into_iter()
        .find_map(|(v, src)| v.map(|v| (Some(v), src)))
        .unwrap_or((None, IdentitySource::None))
}

/// The admin's correction of an image's identity (`PATCH /api/v1/firmware/{id}`): each field
/// given is set, with its source `admin`; an absent (or null) field stays as it is.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwarePatch {
    /// The project: 1 to 64 letters, digits, `.`, `_` or `-`. Devices of stock updaters that
    /// run this image take it too (their project comes from the image they run), which changes
    /// which project-wide deployments cover them. Refused (409) while a project-wide deployment
    /// of this image covers the image's current project: stop it first.
    pub project: Option<String>,
    /// The version: 1 to 31 printable characters without spaces (`1.4.2`, `v2.0.0-rc1`).
    /// Devices of stock updaters that run this image, and every attempt at it, take it too.
    pub version: Option<String>,
    /// The file name shown and used in the legacy `/firmware/<name>` URLs: one plain file name,
    /// no folders.
    pub filename: Option<String>,
}

/// A [`FirmwarePatch`], validated.
pub(crate) struct CleanPatch {
    pub project: Option<String>,
    pub version: Option<String>,
    pub filename: Option<String>,
}

impl FirmwarePatch {
    /// Validate every field before anything is written.
    pub(crate) fn clean(&self) -> Result<CleanPatch> {
        Ok(CleanPatch {
            project: self.project.as_deref().map(validate::project).transpose()?,
            version: self.version.as_deref().map(validate::version).transpose()?,
            filename: self
                .filename
                .as_deref()
                .map(validate::filename)
                .transpose()?,
        })
    }
}

/// Image `id` (without its running count), in the caller's transaction.
pub(crate) async fn load(conn: &mut crate::db::Conn, id: i64) -> Result<Firmware> {
    db::query_as("SELECT *, CAST(0 AS BIGINT) AS devices_running FROM firmware WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("firmware {id}")))
}

/// Set the fields of `p` on image `id` (sources `admin`), in the caller's transaction.
pub(crate) async fn set_identity(
    conn: &mut crate::db::Conn,
    id: i64,
    p: &CleanPatch,
) -> Result<()> {
    db::query(
        "UPDATE firmware SET \
           project = COALESCE(?1, project), \
           project_source = CASE WHEN ?1 IS NULL THEN project_source ELSE ?4 END, \
           version = COALESCE(?2, version), \
           version_source = CASE WHEN ?2 IS NULL THEN version_source ELSE ?4 END, \
           filename = COALESCE(?3, filename) \
         WHERE id = ?5",
    )
    .bind(&p.project)
    .bind(&p.version)
    .bind(&p.filename)
    .bind(IdentitySource::Admin)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Delete an image, refused while an active deployment uses it. Attempts still open for it end
/// as cancelled (the device can no longer download it); they are returned so the caller can publish
/// them.
pub(crate) async fn delete(db: &Db, blobs: &BlobStore, id: i64) -> Result<(Firmware, Vec<Update>)> {
    let fw = get(db, id).await?;
    let mut tx = crate::db::begin_write(db).await?;
    let deployed: i64 = db::query_scalar(
        "SELECT COUNT(*) FROM deployments WHERE firmware_id = ? AND status != 'stopped'",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if deployed > 0 {
        return Err(CoreError::conflict(format!(
            "firmware {id} ({}) is deployed; stop its deployment first, then delete it",
            fw.filename
        )));
    }
    let open: Vec<i64> = db::query_scalar(
        "SELECT id FROM updates WHERE firmware_id = ? AND state NOT IN ('done','failed','cancelled')",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let mut ended = Vec::with_capacity(open.len());
    for update in open {
        ended.push(
            updates::set_state(
                &mut tx,
                update,
                UpdateState::Cancelled,
                0,
                Why::failed(
                    UpdateFailure::ImageDeleted,
                    "the image was deleted from the library",
                ),
            )
            .await?,
        );
    }
    db::query("DELETE FROM firmware WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    blobs.remove(&fw.sha256).await?;
    Ok((fw, ended))
}
