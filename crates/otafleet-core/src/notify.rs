//! Notifications (issue 15): device reports fanned out by webhook and e-mail
//! (docs/notifications.md). This module alone writes and reads the `deliveries` table (migration
//! 0019); the channels' settings are kept by [`crate::settings`] in `server_settings`.
//!
//! **Nothing acknowledged is lost.** A stored report whose type a channel wants queues its
//! deliveries ([`queue`]) in the transaction that stores the report: once the device has its
//! 200, the deliveries are on disk. The dispatcher ([`crate::Fleet`] starts it) sends due
//! `pending` deliveries and records each attempt; a delivery in flight when the process dies is
//! still `pending` and is sent again after the restart — delivery is at least once, receivers
//! deduplicate by `delivery_id`.
//!
//! **Retries.** A webhook answer other than 2xx, or any error (connection, timeout, SMTP), is
//! retried after [`backoff`]: `base × 2^(attempt−1)`, capped at [`RETRY_CAP`] (`base` is
//! [`crate::Settings::notify_retry_base`], 1 s by default); after [`MAX_ATTEMPTS`] the delivery
//! is `failed`.
//!
//! **Rate limit.** Each e-mail recipient gets at most `max_per_hour` mails in any hour; a mail
//! over it is recorded `rate_limited` (never sent), so the log counts what was held back.
//!
//! **Secrets** (the webhook secret, the SMTP password) are kept in the database, because the
//! server must use them, and never leave it: settings show only `{"set": true}`, they are
//! [`Secret`]s whose `Debug` prints nothing, and no log line or delivery row names them.

use std::time::Duration;

use crate::db::{Conn, Db};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize};

use crate::db;
use crate::error::{CoreError, Result};
use crate::reports::{Report, ReportType};

/// Attempts before a delivery is `failed`.
pub const MAX_ATTEMPTS: i64 = 8;
/// Default first retry delay ([`crate::Settings::notify_retry_base`]).
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const RETRY_CAP: Duration = Duration::from_secs(300);
/// How long one webhook call or one SMTP session may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Header carrying `sha256=<hex HMAC-SHA256 of the exact body, keyed with the secret>`.
pub const SIGNATURE_HEADER: &str = "X-Otafleet-Signature";
/// Header carrying the delivery id (also in the body).
pub const DELIVERY_HEADER: &str = "X-Otafleet-Delivery";
/// Default mails per recipient per hour.
pub const DEFAULT_MAX_PER_HOUR: u32 = 10;
/// The most mails per recipient per hour the admin may allow.
pub const MAX_MAX_PER_HOUR: u32 = 1_000;
/// The most e-mail recipients.
pub const MAX_RECIPIENTS: usize = 20;
/// Rows answered when the caller names no limit.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows one request answers.
pub const MAX_LIMIT: i64 = 1_000;
/// The most characters a webhook URL may have.
const MAX_URL_CHARS: usize = 2_048;
/// The most characters a secret (webhook secret, SMTP password) may have.
const MAX_SECRET_CHARS: usize = 256;

// --- settings ------------------------------------------------------------------------------------

/// A secret kept for the server's own use: serialized only into `server_settings`, never shown,
/// never printed (`Debug` says `Secret(***)`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587 by default).
    Starttls,
    /// TLS from the first byte ("SMTPS", port 465 by default).
    Tls,
    /// No encryption (port 25 by default): only for a relay on a trusted network.
    None,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// The webhook channel as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: Secret,
    pub types: Vec<ReportType>,
    pub enabled: bool,
}

/// The e-mail channel as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    pub types: Vec<ReportType>,
    pub enabled: bool,
    pub max_per_hour: u32,
}

/// Both channels as stored (`None`: not configured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyConfig {
    pub webhook: Option<WebhookConfig>,
    pub smtp: Option<SmtpConfig>,
}

/// Whether a secret is set; the secret itself is never shown.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct SecretState {
    pub set: bool,
}

/// The webhook channel as shown (`GET /api/v1/settings`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// Where reports are POSTed (http or https).
    pub url: String,
    /// The HMAC secret: only whether it is set.
    pub secret: SecretState,
    /// Which report types are sent.
    pub types: Vec<ReportType>,
    pub enabled: bool,
}

/// The e-mail channel as shown (`GET /api/v1/settings`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SmtpView {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// The SMTP password: only whether it is set.
    pub password: SecretState,
    /// The sender, e.g. `otafleet <ota@example.com>`.
    pub from: String,
    /// Recipients, one mail each.
    pub to: Vec<String>,
    /// Which report types are sent.
    pub types: Vec<ReportType>,
    pub enabled: bool,
    /// Mails per recipient in any hour; more are recorded `rate_limited` and not sent.
    pub max_per_hour: u32,
}

/// The notification settings as shown; `null` channels are not configured.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotifyView {
    pub webhook: Option<WebhookView>,
    pub smtp: Option<SmtpView>,
}

impl NotifyConfig {
    pub fn view(&self) -> NotifyView {
        NotifyView {
            webhook: self.webhook.as_ref().map(|w| WebhookView {
                url: w.url.clone(),
                secret: SecretState { set: true },
                types: w.types.clone(),
                enabled: w.enabled,
            }),
            smtp: self.smtp.as_ref().map(|s| SmtpView {
                host: s.host.clone(),
                port: s.port,
                security: s.security,
                username: s.username.clone(),
                password: SecretState {
                    set: s.password.is_some(),
                },
                from: s.from.clone(),
                to: s.to.clone(),
                types: s.types.clone(),
                enabled: s.enabled,
                max_per_hour: s.max_per_hour,
            }),
        }
    }
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change of the notification settings (`PATCH /api/v1/settings`, field `notify`). An absent
/// channel stays as it is; `null` removes it (its pending deliveries then fail).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyPatch {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<WebhookPatch>, nullable)]
    pub webhook: Option<Option<WebhookPatch>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<SmtpPatch>, nullable)]
    pub smtp: Option<Option<SmtpPatch>>,
}

/// A change of the webhook channel; absent fields stay as they are. `url` and `secret` are
/// required when the channel is first set.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// `http://` or `https://` URL the reports are POSTed to.
    pub url: Option<String>,
    /// The HMAC-SHA256 key (1 to 256 characters). Write-only: never shown again.
    #[schema(value_type = Option<String>, format = Password)]
    pub secret: Option<Secret>,
    /// Report types to send (default `["error", "warn"]`); at least one.
    pub types: Option<Vec<ReportType>>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A change of the e-mail channel; absent fields stay as they are. `host`, `from` and `to` are
/// required when the channel is first set.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpPatch {
    pub host: Option<String>,
    /// Default by `security`: 587 (starttls), 465 (tls), 25 (none).
    pub port: Option<i64>,
    /// Default `starttls`.
    pub security: Option<SmtpSecurity>,
    /// `null` or `""` sends no credentials (and clears the password).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    pub username: Option<Option<String>>,
    /// Write-only: never shown again. `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable, format = Password)]
    pub password: Option<Option<Secret>>,
    /// The sender mailbox, e.g. `otafleet <ota@example.com>`.
    pub from: Option<String>,
    /// 1 to 20 recipient addresses.
    pub to: Option<Vec<String>>,
    /// Report types to send (default `["error", "warn"]`); at least one.
    pub types: Option<Vec<ReportType>>,
    /// Default true.
    pub enabled: Option<bool>,
    /// Mails per recipient per hour, 1 to 1000 (default 10).
    pub max_per_hour: Option<i64>,
}

fn default_types() -> Vec<ReportType> {
    vec![ReportType::Warn, ReportType::Error]
}

fn check_types(channel: &str, types: Vec<ReportType>) -> Result<Vec<ReportType>> {
    let mut t: Vec<ReportType> = ReportType::ALL
        .into_iter()
        .filter(|k| types.contains(k))
        .collect();
    t.dedup();
    if t.is_empty() {
        return Err(CoreError::invalid(
            "invalid_notify_types",
            format!("{channel}.types needs at least one of info, warn, error, success; to send nothing set enabled to false"),
        ));
    }
    Ok(t)
}

fn check_secret(field: &str, s: &Secret) -> Result<Secret> {
    let n = s.0.chars().count();
    if n == 0 || n > MAX_SECRET_CHARS {
        return Err(CoreError::invalid(
            "invalid_notify_secret",
            format!("{field} must have 1 to {MAX_SECRET_CHARS} characters"),
        ));
    }
    Ok(s.clone())
}

fn check_url(url: &str) -> Result<String> {
    let url = url.trim();
    let bad = |why: &str| {
        CoreError::invalid(
            "invalid_webhook_url",
            format!(
                "webhook.url {why}: give an http:// or https:// URL such as https://hooks.example.com/otafleet (not '{}')",
                crate::validate::printable(url, 80)
            ),
        )
    };
    if url.chars().count() > MAX_URL_CHARS {
        return Err(bad("is too long"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must use http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(url.to_owned())
}

fn check_mailbox(field: &str, s: &str) -> Result<String> {
    let s = s.trim();
    s.parse::<lettre::message::Mailbox>()
        .map_err(|_| {
            CoreError::invalid(
                "invalid_email_address",
                format!(
                    "{field}: '{}' is not an e-mail address; write name@example.com (or Name <name@example.com>)",
                    crate::validate::printable(s, 80)
                ),
            )
        })?;
    Ok(s.to_owned())
}

impl WebhookPatch {
    fn apply(&self, old: Option<&WebhookConfig>) -> Result<WebhookConfig> {
        let url = match (&self.url, old) {
            (Some(u), _) => check_url(u)?,
            (None, Some(o)) => o.url.clone(),
            (None, None) => {
                return Err(CoreError::invalid(
                    "invalid_webhook_url",
                    "webhook.url is required to set up the webhook",
                ))
            }
        };
        let secret = match (&self.secret, old) {
            (Some(s), _) => check_secret("webhook.secret", s)?,
            (None, Some(o)) => o.secret.clone(),
            (None, None) => return Err(CoreError::invalid(
                "invalid_notify_secret",
                "webhook.secret is required: the receiver checks each delivery's signature with it",
            )),
        };
        let types = match (&self.types, old) {
            (Some(t), _) => check_types("webhook", t.clone())?,
            (None, Some(o)) => o.types.clone(),
            (None, None) => default_types(),
        };
        let enabled = self.enabled.or(old.map(|o| o.enabled)).unwrap_or(true);
        Ok(WebhookConfig {
            url,
            secret,
            types,
            enabled,
        })
    }
}

impl SmtpPatch {
    fn apply(&self, old: Option<&SmtpConfig>) -> Result<SmtpConfig> {
        let required = |what: &str| {
            CoreError::invalid(
                "invalid_smtp",
                format!("smtp.{what} is required to set up e-mail"),
            )
        };
        let host = match (&self.host, old) {
            (Some(h), _) => {
                let h = h.trim();
                if h.is_empty()
                    || h.len() > 253
                    || h.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(CoreError::invalid(
                        "invalid_smtp",
                        format!(
                            "smtp.host must be a host name or address such as smtp.example.com (not '{}')",
                            crate::validate::printable(h, 80)
                        ),
                    ));
                }
                h.to_owned()
            }
            (None, Some(o)) => o.host.clone(),
            (None, None) => return Err(required("host")),
        };
        let security = self
            .security
            .or(old.map(|o| o.security))
            .unwrap_or(SmtpSecurity::Starttls);
        let port = match (self.port, old) {
            (Some(p), _) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                CoreError::invalid(
                    "invalid_smtp",
                    format!("smtp.port must be between 1 and 65535, not {p}"),
                )
            })?,
            // A changed security without a port takes that security's port.
            (None, Some(o)) if self.security.is_none() => o.port,
            _ => security.default_port(),
        };
        let username = match (&self.username, old) {
            (Some(u), _) => u
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    if u.chars().count() > 256 || u.chars().any(char::is_control) {
                        Err(CoreError::invalid(
                            "invalid_smtp",
                            "smtp.username must be at most 256 printable characters",
                        ))
                    } else {
                        Ok(u.to_owned())
                    }
                })
                .transpose()?,
            (None, Some(o)) => o.username.clone(),
            (None, None) => None,
        };
        let password = match (&self.password, old) {
            (Some(Some(p)), _) => Some(check_secret("smtp.password", p)?),
            (Some(None), _) => None,
            (None, Some(o)) => o.password.clone(),
            (None, None) => None,
        };
        // No user name, no credentials: a password left over would never be used.
        let password = if username.is_none() { None } else { password };
        let from = match (&self.from, old) {
            (Some(f), _) => check_mailbox("smtp.from", f)?,
            (None, Some(o)) => o.from.clone(),
            (None, None) => return Err(required("from")),
        };
        let to = match (&self.to, old) {
            (Some(t), _) => {
                if t.is_empty() || t.len() > MAX_RECIPIENTS {
                    return Err(CoreError::invalid(
                        "invalid_smtp",
                        format!(
                            "smtp.to needs 1 to {MAX_RECIPIENTS} recipients, not {}",
                            t.len()
                        ),
                    ));
                }
                let mut to = Vec::with_capacity(t.len());
                for a in t {
                    let a = a.trim();
                    a.parse::<lettre::Address>().map_err(|_| {
                        CoreError::invalid(
                            "invalid_email_address",
                            format!(
                                "smtp.to: '{}' is not an e-mail address; write name@example.com",
                                crate::validate::printable(a, 80)
                            ),
                        )
                    })?;
                    if !to.iter().any(|x: &String| x.eq_ignore_ascii_case(a)) {
                        to.push(a.to_owned());
                    }
                }
                to
            }
            (None, Some(o)) => o.to.clone(),
            (None, None) => return Err(required("to")),
        };
        let types = match (&self.types, old) {
            (Some(t), _) => check_types("smtp", t.clone())?,
            (None, Some(o)) => o.types.clone(),
            (None, None) => default_types(),
        };
        let max_per_hour = match (self.max_per_hour, old) {
            (Some(n), _) => u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_MAX_PER_HOUR).contains(n))
                .ok_or_else(|| {
                    CoreError::invalid(
                        "invalid_smtp",
                        format!(
                            "smtp.max_per_hour must be between 1 and {MAX_MAX_PER_HOUR}, not {n}"
                        ),
                    )
                })?,
            (None, Some(o)) => o.max_per_hour,
            (None, None) => DEFAULT_MAX_PER_HOUR,
        };
        let enabled = self.enabled.or(old.map(|o| o.enabled)).unwrap_or(true);
        Ok(SmtpConfig {
            host,
            port,
            security,
            username,
            password,
            from,
            to,
            types,
            enabled,
            max_per_hour,
        })
    }
}

impl NotifyPatch {
    /// The settings after this change, validated as a whole.
    pub(crate) fn apply(&self, old: &NotifyConfig) -> Result<NotifyConfig> {
        let webhook = match &self.webhook {
            None => old.webhook.clone(),
            Some(None) => None,
            Some(Some(p)) => Some(p.apply(old.webhook.as_ref())?),
        };
        let smtp = match &self.smtp {
            None => old.smtp.clone(),
            Some(None) => None,
            Some(Some(p)) => Some(p.apply(old.smtp.as_ref())?),
        };
        Ok(NotifyConfig { webhook, smtp })
    }
}

// --- the delivery log ----------------------------------------------------------------------------

/// Which channel a delivery goes out on. Stored by name (`deliveries.channel`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum Channel {
    Webhook,
    Email,
}

/// Where a delivery stands. Stored by name (`deliveries.state`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "TEXT", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Queued; sent when `next_attempt_at` is due.
    Pending,
    /// The receiver took it (webhook 2xx, SMTP accepted).
    Delivered,
    /// Given up after [`MAX_ATTEMPTS`], or its channel was removed or turned off.
    Failed,
    /// Over the recipient's mails per hour: recorded, never sent.
    RateLimited,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Failed,
        DeliveryState::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::RateLimited => "rate_limited",
        }
    }

    /// The state of this name; an unknown name is 422 `invalid_state`.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                CoreError::invalid(
                    "invalid_state",
                    format!(
                        "state must be one of pending, delivered, failed, rate_limited, not '{}'",
                        crate::validate::printable(s, 20)
                    ),
                )
            })
    }
}

/// One row of the delivery log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub report_id: i64,
    pub channel: Channel,
    /// The webhook URL, or the e-mail address.
    pub recipient: String,
    /// Attempts made so far.
    pub attempts: i64,
    pub state: DeliveryState,
    /// The webhook's last HTTP status (e-mail: none).
    pub last_status: Option<i64>,
    /// Why the last attempt failed, or why it was not sent.
    pub last_error: Option<String>,
    /// When a pending delivery is due next.
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Which deliveries [`list`] answers, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub report_id: Option<i64>,
    pub state: Option<DeliveryState>,
    /// At most this many rows ([`DEFAULT_LIMIT`] when absent; 1 to [`MAX_LIMIT`]).
    pub limit: Option<i64>,
}

/// Queue the deliveries of a just-stored `report` on `conn` (inside the report's write
/// transaction): one for the webhook, one per e-mail recipient, for each enabled channel that
/// wants the report's type. A recipient over its mails per hour gets a `rate_limited` row.
/// Returns the rows written.
pub(crate) async fn queue(
    conn: &mut Conn,
    report: &Report,
    cfg: &NotifyConfig,
) -> Result<Vec<Delivery>> {
    let now = crate::time::now();
    let mut rows = Vec::new();
    if let Some(w) = cfg.webhook.as_ref().filter(|w| w.enabled) {
        if w.types.contains(&report.kind) {
            rows.push(
                insert(
                    conn,
                    report.id,
                    Channel::Webhook,
                    &w.url,
                    DeliveryState::Pending,
                    None,
                    &now,
                )
                .await?,
            );
        }
    }
    if let Some(s) = cfg.smtp.as_ref().filter(|s| s.enabled) {
        if s.types.contains(&report.kind) {
            let hour_ago =
                crate::time::format(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
            for to in &s.to {
                let sent: i64 = db::query_scalar(
                    "SELECT COUNT(*) FROM deliveries
                     WHERE channel = 'email' AND recipient = ? AND created_at > ?
                       AND state != 'rate_limited'",
                )
                .bind(to)
                .bind(&hour_ago)
                .fetch_one(&mut *conn)
                .await?;
                if sent >= i64::from(s.max_per_hour) {
                    let why = format!(
                        "rate limit: {sent} mails to this recipient in the last hour (at most {})",
                        s.max_per_hour
                    );
                    rows.push(
                        insert(
                            conn,
                            report.id,
                            Channel::Email,
                            to,
                            DeliveryState::RateLimited,
                            Some(&why),
                            &now,
                        )
                        .await?,
                    );
                } else {
                    rows.push(
                        insert(
                            conn,
                            report.id,
                            Channel::Email,
                            to,
                            DeliveryState::Pending,
                            None,
                            &now,
                        )
                        .await?,
                    );
                }
            }
        }
    }
    Ok(rows)
}

async fn insert(
    conn: &mut Conn,
    report_id: i64,
    channel: Channel,
    recipient: &str,
    state: DeliveryState,
    error: Option<&str>,
    now: &str,
) -> Result<Delivery> {
    let next = (state == DeliveryState::Pending).then_some(now);
    db::query_as(
        "INSERT INTO deliveries (report_id, channel, recipient, attempts, state, last_error,
                                 next_attempt_at, created_at, updated_at)
         VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(report_id)
    .bind(channel)
    .bind(recipient)
    .bind(state)
    .bind(error)
    .bind(next)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await
}

pub(crate) async fn list(db: &Db, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
    let limit = crate::validate::limit(filter.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    db::query_as(
        "SELECT * FROM deliveries
         WHERE (?1 IS NULL OR report_id = ?1) AND (?2 IS NULL OR state = ?2)
         ORDER BY id DESC LIMIT ?3",
    )
    .bind(filter.report_id)
    .bind(filter.state)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A due delivery with what its message says.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Due {
    pub id: i64,
    pub channel: Channel,
    pub recipient: String,
    pub attempts: i64,
    #[sqlx(flatten)]
    pub report: Payload,
}

/// The report as a delivery carries it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Payload {
    pub report_id: i64,
    pub mac: String,
    /// The device's name as shown (the admin's, else the one it reports).
    pub device_name: Option<String>,
    pub project: Option<String>,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: ReportType,
    pub subject: String,
    pub body: String,
    pub device_time: Option<String>,
    pub received_at: String,
}

/// Pending deliveries due at `now`, oldest first, at most `limit`.
pub(crate) async fn due(db: &Db, now: &str, limit: i64) -> Result<Vec<Due>> {
    db::query_as(
        "SELECT d.id, d.channel, d.recipient, d.attempts,
                r.id AS report_id, r.mac, COALESCE(v.admin_name, v.reported_name) AS device_name,
                v.project, r.type, r.subject, r.body, r.device_time, r.received_at
         FROM deliveries d JOIN reports r ON r.id = d.report_id
              LEFT JOIN devices v ON v.mac = r.mac
         WHERE d.state = 'pending' AND d.next_attempt_at <= ?
         ORDER BY d.next_attempt_at, d.id LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// When the next pending delivery is due, if any.
pub(crate) async fn next_due(db: &Db) -> Result<Option<String>> {
    db::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
        .fetch_one(db)
        .await
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub ok: bool,
    pub status: Option<i64>,
    pub error: Option<String>,
    /// No retry: the channel is gone or turned off.
    pub give_up: bool,
}

impl Attempt {
    /// Not sent, and not to be retried: `why`.
    pub(crate) fn gone(why: &str) -> Self {
        Attempt {
            ok: false,
            status: None,
            error: Some(why.to_owned()),
            give_up: true,
        }
    }
}

/// The wait before attempt `n + 1` after `n` failed attempts: `base × 2^(n−1)`, capped.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let shift = attempts.clamp(1, 20) - 1;
    base.saturating_mul(1u32 << shift).min(RETRY_CAP.max(base))
}

/// Record attempt number `attempts + 1` of delivery `id` on `conn` (inside a write transaction);
/// the row as it is now (`None` if it is gone or no longer pending).
pub(crate) async fn record(
    conn: &mut Conn,
    id: i64,
    attempts: i64,
    a: &Attempt,
    base: Duration,
) -> Result<Option<Delivery>> {
    let n = attempts + 1;
    let now_t = time::OffsetDateTime::now_utc();
    let now = crate::time::format(now_t);
    let (state, next) = if a.ok {
        (DeliveryState::Delivered, None)
    } else if a.give_up || n >= MAX_ATTEMPTS {
        (DeliveryState::Failed, None)
    } else {
        let wait = backoff(base, n);
        (
            DeliveryState::Pending,
            Some(crate::time::format(now_t + wait)),
        )
    };
    db::query_as(
        "UPDATE deliveries SET attempts = ?, state = ?, last_status = ?, last_error = ?,
                next_attempt_at = ?, updated_at = ?
         WHERE id = ? AND state = 'pending' RETURNING *",
    )
    .bind(n)
    .bind(state)
    .bind(a.status)
    .bind(&a.error)
    .bind(next)
    .bind(&now)
    .bind(id)
    .fetch_optional(conn)
    .await
}

// --- sending -------------------------------------------------------------------------------------

/// The webhook's JSON body.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookBody<'a> {
    /// The delivery's id (0 for a test): the same on every retry, for deduplication.
    pub delivery_id: i64,
    /// This attempt's number, from 1.
    pub attempt: i64,
    /// When this attempt was sent (UTC), inside the signed body.
    pub sent_at: String,
    /// True only for `POST /api/v1/settings/notify/test`.
    pub test: bool,
    pub report: &'a Payload,
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The client every webhook call uses: no proxy from the environment (the admin's URL is called
/// directly), no redirects (a delivery goes only where the admin said), [`SEND_TIMEOUT`]; it
/// trusts the Mozilla roots and `extra_roots` (PEM).
pub(crate) fn http_client(extra_roots: &[String]) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("otafleet/", env!("CARGO_PKG_VERSION")));
    for pem in extra_roots {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| {
            CoreError::invalid(
                "invalid_ca",
                format!("a notification CA certificate is not PEM: {e}"),
            )
        })?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| {
        CoreError::invalid(
            "invalid_ca",
            format!("the webhook client could not be built: {}", error_chain(&e)),
        )
    })
}

/// POST one delivery to `url`, signed with `secret`.
pub(crate) async fn send_webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    delivery_id: i64,
    attempt: i64,
    test: bool,
    report: &Payload,
) -> Attempt {
    let body = serde_json::to_vec(&WebhookBody {
        delivery_id,
        attempt,
        sent_at: crate::time::now(),
        test,
        report,
    })
    .expect("the payload serializes");
    let sig = signature(secret.expose(), &body);
    let res = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sig)
        .header(DELIVERY_HEADER, delivery_id.to_string())
        .body(body)
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => Attempt {
            ok: true,
            status: Some(r.status().as_u16().into()),
            error: None,
            give_up: false,
        },
        Ok(r) => Attempt {
            ok: false,
            status: Some(r.status().as_u16().into()),
            error: Some(format!("the webhook answered {}", r.status())),
            give_up: false,
        },
        Err(e) => Attempt {
            ok: false,
            status: None,
            error: Some(error_chain(&e)),
            give_up: false,
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        // Some errors already print their source: say each cause once.
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s.chars().take(500).collect()
}

/// Send one mail about `report` to `to` over `cfg`'s SMTP server, trusting the Mozilla roots and
/// `extra_roots` (PEM) for its certificate.
pub(crate) async fn send_email(
    cfg: &SmtpConfig,
    extra_roots: &[String],
    to: &str,
    test: bool,
    report: &Payload,
) -> Attempt {
    match try_email(cfg, extra_roots, to, test, report).await {
        Ok(()) => Attempt {
            ok: true,
            status: None,
            error: None,
            give_up: false,
        },
        Err(e) => Attempt {
            ok: false,
            status: None,
            error: Some(e),
            give_up: false,
        },
    }
}

/// The subject line of a report's mail.
pub fn mail_subject(report: &Payload) -> String {
    let who = report.device_name.as_deref().unwrap_or(&report.mac);
    format!(
        "[otafleet] {} from {who}: {}",
        report.kind.as_str(),
        report.subject
    )
}

fn mail_body(report: &Payload, test: bool) -> String {
    let mut b = String::new();
    if test {
        b.push_str("This is a test from otafleet's notification settings.\n\n");
    }
    b.push_str(&report.subject);
    b.push_str("\n\n");
    if !report.body.is_empty() {
        b.push_str(&report.body);
        b.push_str("\n\n");
    }
    b.push_str(&format!("Type:     {}\n", report.kind.as_str()));
    b.push_str(&format!("Device:   {}", report.mac));
    if let Some(n) = &report.device_name {
        b.push_str(&format!(" ({n})"));
    }
    b.push('\n');
    if let Some(p) = &report.project {
        b.push_str(&format!("Project:  {p}\n"));
    }
    if let Some(t) = &report.device_time {
        b.push_str(&format!("Device time: {t}\n"));
    }
    b.push_str(&format!("Received: {}\n", report.received_at));
    b
}

async fn try_email(
    cfg: &SmtpConfig,
    extra_roots: &[String],
    to: &str,
    test: bool,
    report: &Payload,
) -> std::result::Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let from: lettre::message::Mailbox = cfg
        .from
        .parse()
        .map_err(|e| format!("the sender '{}': {e}", cfg.from))?;
    let to_box: lettre::message::Mailbox = to
        .parse()
        .map_err(|e| format!("the recipient '{to}': {e}"))?;
    let msg = Message::builder()
        .from(from)
        .to(to_box)
        .subject(mail_subject(report))
        .header(ContentType::TEXT_PLAIN)
        .body(mail_body(report, test))
        .map_err(|e| format!("the mail could not be built: {e}"))?;
    let tls = || -> std::result::Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(cfg.host.clone());
        for pem in extra_roots {
            b = b.add_root_certificate(
                Certificate::from_pem(pem.as_bytes()).map_err(|e| error_chain(&e))?,
            );
        }
        b.build_rustls().map_err(|e| error_chain(&e))
    };
    // STARTTLS is required, never optional: a server (or a man in the middle) that does not
    // offer it gets nothing in plain text.
    let tls = match cfg.security {
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let Some(user) = &cfg.username {
        let pass = cfg
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), pass));
    }
    let transport = builder.build();
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| error_chain(&e))
}

/// What a test send (`POST /api/v1/settings/notify/test`) came to, per channel target.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub channel: Channel,
    /// The webhook URL or the e-mail address.
    pub recipient: String,
    /// Whether the receiver took it.
    pub delivered: bool,
    /// The webhook's HTTP status.
    pub status: Option<i64>,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// The report a test send carries.
pub(crate) fn test_payload() -> Payload {
    Payload {
        report_id: 0,
        mac: "00:00:00:00:00:00".into(),
        device_name: Some("otafleet test".into()),
        project: None,
        kind: ReportType::Info,
        subject: "Test notification from otafleet".into(),
        body: "If you can read this, otafleet's notifications reach you.".into(),
        device_time: None,
        received_at: crate::time::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(1);
        assert_eq!(backoff(b, 1), Duration::from_secs(1));
        assert_eq!(backoff(b, 2), Duration::from_secs(2));
        assert_eq!(backoff(b, 4), Duration::from_secs(8));
        assert_eq!(backoff(b, 20), RETRY_CAP);
        assert_eq!(
            backoff(Duration::from_millis(10), 3),
            Duration::from_millis(40)
        );
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_never_show() {
        let p = NotifyPatch {
            webhook: Some(Some(WebhookPatch {
                url: Some("https://h.example/x".into()),
                secret: Some(Secret("topsecret".into())),
                ..Default::default()
            })),
            smtp: Some(Some(SmtpPatch {
                host: Some("smtp.example.com".into()),
                username: Some(Some("u".into())),
                password: Some(Some(Secret("hunter2".into()))),
                from: Some("otafleet <ota@example.com>".into()),
                to: Some(vec!["a@example.com".into()]),
                ..Default::default()
            })),
        };
        let cfg = p.apply(&NotifyConfig::default()).unwrap();
        assert_eq!(cfg.webhook.as_ref().unwrap().types, default_types());
        assert_eq!(cfg.smtp.as_ref().unwrap().port, 587);
        let shown = serde_json::to_string(&cfg.view()).unwrap();
        assert!(
            !shown.contains("topsecret") && !shown.contains("hunter2"),
            "{shown}"
        );
        let debug = format!("{cfg:?} {p:?}");
        assert!(
            !debug.contains("topsecret") && !debug.contains("hunter2"),
            "{debug}"
        );
        // A later change that names no secret keeps it.
        let p2 = NotifyPatch {
            webhook: Some(Some(WebhookPatch {
                enabled: Some(false),
                ..Default::default()
            })),
            ..Default::default()
        };
        let cfg2 = p2.apply(&cfg).unwrap();
        assert_eq!(cfg2.webhook.unwrap().secret.expose(), "topsecret");
    }

    #[test]
    fn bad_settings_are_refused_with_a_code() {
        let none = NotifyConfig::default();
        let wh = |url: &str, secret: Option<&str>, types: Option<Vec<ReportType>>| NotifyPatch {
            webhook: Some(Some(WebhookPatch {
                url: Some(url.into()),
                secret: secret.map(|s| Secret(s.into())),
                types,
                enabled: None,
            })),
            smtp: None,
        };
        for (p, code) in [
            (wh("ftp://x/y", Some("s"), None), "invalid_webhook_url"),
            (wh("not a url", Some("s"), None), "invalid_webhook_url"),
            (wh("https://x/y", None, None), "invalid_notify_secret"),
            (wh("https://x/y", Some(""), None), "invalid_notify_secret"),
            (
                wh("https://x/y", Some("s"), Some(vec![])),
                "invalid_notify_types",
            ),
        ] {
            assert_eq!(p.apply(&none).unwrap_err().code(), code);
        }
        let smtp = |to: Vec<&str>, max: Option<i64>| NotifyPatch {
            webhook: None,
            smtp: Some(Some(SmtpPatch {
                host: Some("smtp.example.com".into()),
                from: Some("ota@example.com".into()),
                to: Some(to.into_iter().map(Into::into).collect()),
                max_per_hour: max,
                ..Default::default()
            })),
        };
        assert_eq!(
            smtp(vec![], None).apply(&none).unwrap_err().code(),
            "invalid_smtp"
        );
        assert_eq!(
            smtp(vec!["nope"], None).apply(&none).unwrap_err().code(),
            "invalid_email_address"
        );
        assert_eq!(
            smtp(vec!["a@example.com"], Some(0))
                .apply(&none)
                .unwrap_err()
                .code(),
            "invalid_smtp"
        );
        assert!(smtp(vec!["a@example.com"], Some(5)).apply(&none).is_ok());
    }
}
