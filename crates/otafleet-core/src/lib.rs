//! The GUI-free core of otafleet.
//!
//! Everything that decides something lives here, so the headless server, the Tauri shell and the
//! tests all run the same code: [`Fleet`] is the one handle they hold. It owns
//!
//! - the SQLite database ([`db`]) with the firmware library, devices, deployments and updates;
//! - the content-addressed [`blobs::BlobStore`] where firmware bytes live;
//! - the [`events::EventBus`] that tells the UI (over server-sent events) what changed.
//!
//! Modules are split by resource: [`firmware`] (import, inspect, list, delete), [`devices`],
//! [`deployments`] (with their lifecycle and dry run), [`offer`] (the one pure rule for what a
//! device is offered), [`updates`] (attempts and how far each got) and
//! [`checkin`] (the native device protocol); [`watch_folders`] lists the build folders whose images
//! are imported by themselves. Input parsing that every caller needs — MAC
//! addresses, versions, names — sits in [`validate`]. Nothing here knows HTTP or Tauri: errors are
//! [`CoreError`], which the server maps to status codes in one place.
//!
//! Who may claim and serve a device (token-enrolled devices only over the native protocol, the
//! expected protocol, open enrolment) is decided in [`trust`].
//!
//! Projects ([`projects`]: description, enrolment, config variables, commands) and each device's
//! versioned config ([`config`]) are the admin's remote management, with commands ([`commands`]).
//!
//! Every admin change leaves one append-only row in the audit log ([`audit`]). What devices report
//! is kept in [`reports`]; their live log lines, in memory only, in [`logs`].
//!
//! Device reports are fanned out by webhook and e-mail, with a delivery log ([`notify`]).
//!
//! The TLS certificate material — a local CA and the server certificate it signs — is made and
//! kept by [`tls`]; the server crate serves it.
//!
//! Devices found on the LAN by mDNS come in through [`discovered`], which merges them with
//! checked-in devices by MAC.

pub mod access;
pub mod api_tokens;
pub mod audit;
pub mod blobs;
pub mod checkin;
mod cluster;
pub mod commands;
pub mod config;
pub mod datadir;
pub mod db;
pub mod deployments;
pub mod devices;
pub mod discovered;
pub mod error;
pub mod events;
pub mod field;
pub mod firmware;
mod fleet;
pub mod hot;
pub mod inflight;
pub mod legacy;
pub mod logs;
pub mod manifest;
pub mod members;
pub mod notify;
pub mod offer;
pub mod organisations;
pub mod passwords;
pub mod projects;
pub mod reports;
pub mod rollouts;
pub mod sessions;
pub mod settings;
pub mod sign_ins;
pub mod time;
pub mod tls;
pub mod trust;
pub mod updates;
pub mod validate;
pub mod watch_folders;

#[cfg(test)]
mod scale_tests;

pub use error::{CoreError, Result};
pub use fleet::{
    esp_admin_valid_id, CreatedOrganisation, EspAdminCreated, EspAdminCustomReport,
    EspAdminReported, EspAdminTrigger, EspAdminUpdateReport, Fleet, LeftDevice, LogWatch,
    MqttCommand, MqttDevice, MqttMessage, RolledBack, ESP_ADMIN,
};
pub use settings::Settings;
