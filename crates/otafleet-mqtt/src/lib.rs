//! otafleet's MQTT side (issue 16; docs/mqtt.md).
//!
//! - [`broker`]: the embedded broker (a maintained broker library run in-process): devices log
//!   in with their own credentials, checked by an [`broker::Authority`], and may only subscribe to
//!   their own `device/<id>/command/+` and publish to their own `device/<id>/report/…` and
//!   `device/<id>/logs/…`.
//! - [`bridge`]: otafleet's own MQTT client. It is the one code path for both modes — the
//!   embedded broker and a broker the user runs — and maps topics to `Fleet` calls and back.

pub mod authority;
pub mod bridge;
pub mod broker;
