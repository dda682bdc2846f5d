//! otafleet-sim: a virtual fleet of ESP32-family devices for otafleet.
//!
//! It exists to answer "does the server bring a whole fleet onto a new image, and say the truth
//! about the ones that failed?" with real HTTP, at any size from the 20 devices of an integration
//! test to the 10,000 of the benchmark. Each device is a tokio task over one shared, bounded
//! client ([`http`]); [`run`] starts them, deploys, and collects a [`summary::Summary`].
//!
//! Simulated: the native protocol v1 ([`device`]) and the stock clients devices already in the
//! field run, each as it behaves on the wire: Arduino-ESP32 `HTTPUpdate` and `ESP8266httpUpdate`
//! ([`arduino`]), esp32FOTA ([`fota`]) and the legacy "ESP32 OTA Update Server" sketch
//! ([`legacy`]), sharing the download of [`stock`], and the ESP Admin SDK over HTTPS and MQTT
//! ([`esp_admin`]). Those modules only speak their protocol; a
//! device's life is the same for all ([`life`]): check, take what is offered, boot it (or fail
//! to, as injected, `--failed-boot-times` limiting that to an image's first boots), decide the
//! first outcome from what the server answers next. A server that goes away (a restart) is
//! ridden out as real devices do, with the reference client's back-off ([`backoff`]), cut native
//! downloads resumed with `Range`; only `--timeout` gives up on a device. With `--duration` /
//! `--forever` the devices live on after their first outcome and take any image offered later (a
//! retry, a rollback, a later release), and the run ends with the server's records compared with
//! what each device runs then. [`images`] builds the synthetic images per chip family (ESP8266
//! devices run their own project). [`mdns`] finds the server over mDNS (`--mdns`), as a device
//! would, instead of being given `--server URL`.

pub mod admin;
pub mod arduino;
pub mod backoff;
pub mod commands;
pub mod config;
pub mod device;
pub mod error;
pub mod esp_admin;
pub mod fota;
pub mod http;
pub mod images;
pub mod legacy;
pub mod life;
pub mod logs;
pub mod mdns;
pub mod run;
pub mod stock;
pub mod summary;

pub use config::{Args, Config};
pub use error::SimError;
pub use run::{run, run_until};
pub use summary::Summary;
