//! otafleet-sim: a virtual fleet of ESP32-family devices for otafleet.
//!
//! It exists to answer "does the server bring a whole fleet onto a new image, and say the truth
//! about the ones that failed?" with real HTTP, at any size from the 20 devices of an integration
//! test to the 10,000 of the benchmark. Each device is a tokio task ([`device`]) over one shared,
//! bounded client ([`http`]); [`run`] starts them, deploys, and collects a [`summary::Summary`].
//!
//! Simulated: the native protocol v1 ([`device`]) and the stock clients devices already in the
//! field run, each as it behaves on the wire: Arduino-ESP32 `HTTPUpdate` and `ESP8266httpUpdate`
//! ([`arduino`]), esp32FOTA ([`fota`]) and the legacy "ESP32 OTA Update Server" sketch
//! ([`legacy`]), sharing the download of [`stock`]. [`images`] builds the synthetic images per
//! chip family (ESP8266 devices run their own project). [`mdns`] finds the server over mDNS
//! (`--mdns`), as a device would, instead of being given `--server URL`.

pub mod admin;
pub mod arduino;
pub mod backoff;
pub mod config;
pub mod device;
pub mod error;
pub mod fota;
pub mod http;
pub mod images;
pub mod legacy;
pub mod life;
pub mod mdns;
pub mod run;
pub mod stock;
pub mod summary;

pub use config::{Args, Config};
pub use error::SimError;
pub use run::{run, run_until};
pub use summary::Summary;
