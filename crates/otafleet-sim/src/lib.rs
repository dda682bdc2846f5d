//! otafleet-sim: a virtual fleet of ESP32-family devices for otafleet.
//!
//! It exists to answer "does the server bring a whole fleet onto a new image, and say the truth
//! about the ones that failed?" with real HTTP, at any size from the 20 devices of an integration
//! test to the 10,000 of the benchmark. Each device is a tokio task ([`device`]) over one shared,
//! bounded client ([`http`]); [`run`] starts them, deploys, and collects a [`summary::Summary`].
//!
//! Simulated: the native protocol v1 ([`device`]) and Arduino `HTTPUpdate` on ESP32
//! ([`arduino`]). ESP8266, esp32FOTA and legacy devices are refused by name in [`config`] until the
//! simulator speaks them, rather than faked.

pub mod admin;
pub mod arduino;
pub mod config;
pub mod device;
pub mod error;
pub mod http;
pub mod run;
pub mod summary;

pub use config::{Args, Config};
pub use error::SimError;
pub use run::run;
pub use summary::Summary;
