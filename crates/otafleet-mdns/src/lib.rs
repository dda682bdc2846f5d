//! Zero-config LAN for otafleet, over mDNS / DNS-SD (the `mdns-sd` crate; no system daemon).
//!
//! - [`Lan`] is what a running server holds: one mDNS daemon that advertises the server as
//!   `_otafleet._tcp` ([`advertise`]) and browses for ESP devices ([`browse`]), writing what it
//!   finds into the core through [`otafleet_core::Fleet::mdns_seen`] / `mdns_gone`. Its
//!   [`Lan::shutdown`] sends goodbye records, so browsers drop the server at once instead of
//!   after the records' TTL.
//! - [`scan`] is a one-off look at the LAN for `otafleet discover`: our servers and devices.
//!
//! Devices find the server from the SRV record alone (ESP8266 queries get no TXT), so every path
//! they use is fixed; the TXT record (`v=1`, `api=/api/v1`, `tls=0|1`) only confirms them.
//!
//! mdns-sd joins the multicast group on every interface of the machine: whatever starts a [`Lan`]
//! or a [`scan`] (tests included) must run where that is wanted; `otafleet serve --no-mdns` never
//! starts one.

pub mod advertise;
pub mod browse;
mod error;
mod lan;
pub mod scan;

pub use advertise::Advertisement;
pub use error::{MdnsError, Result};
pub use lan::Lan;

/// Our service type, fully qualified as mdns-sd wants it.
pub const SERVER_SERVICE: &str = "_otafleet._tcp.local.";
/// Device service types the server browses: ArduinoOTA and ESPHome.
pub const DEVICE_SERVICES: [&str; 2] = ["_arduino._tcp.local.", "_esphomelib._tcp.local."];
