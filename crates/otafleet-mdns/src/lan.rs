//! [`Lan`]: the server's mDNS presence — one daemon that advertises and browses — and its orderly
//! end. Order matters at shutdown: unregister first (goodbye records go out and we wait for the
//! daemon to confirm), then stop the daemon, so browsers on the LAN drop us at once.

use std::net::SocketAddr;
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon};
use otafleet_core::Fleet;
use tokio::task::JoinHandle;

use crate::{browse, Advertisement, Result, DEVICE_SERVICES};

/// How long shutdown waits for the daemon to confirm each step; it sends the goodbyes itself, so
/// a slow confirmation must not hold up the process exit.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);
/// How often devices still on the LAN get their `mdns_seen` refreshed (see
/// `Fleet::mdns_touch_present`); about as often as a native device checks in.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

pub struct Lan {
    daemon: ServiceDaemon,
    /// Full name of our registered service, unregistered (with goodbyes) at shutdown.
    registered: Option<String>,
    /// Browse tasks; they end when the daemon stops their browse.
    browsers: Vec<JoinHandle<()>>,
    /// Refreshes `mdns_seen` of present devices; aborted at shutdown.
    toucher: Option<JoinHandle<()>>,
}

impl Lan {
    /// Start the daemon on every non-loopback interface (devices on the bench cannot use a
    /// loopback address, and answering there only adds noise).
    pub fn new() -> Result<Self> {
        let daemon = ServiceDaemon::new()?;
        daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
        Ok(Self {
            daemon,
            registered: None,
            browsers: Vec::new(),
            toucher: None,
        })
    }

    /// What `otafleet serve` runs: advertise the server bound to `listen` (unless it listens on
    /// loopback only) and browse for devices into `fleet`.
    pub fn start_for_server(
        fleet: &Fleet,
        listen: SocketAddr,
        name: Option<String>,
        tls: Option<crate::advertise::TlsTxt>,
    ) -> Result<Self> {
        let mut lan = Self::new()?;
        match Advertisement::for_listener(listen, name) {
            Some(mut ad) => {
                if let Some(t) = tls {
                    ad.tls = true;
                    ad.ca_sha256 = t.ca_sha256;
                }
                let fullname = lan.advertise(&ad)?;
                tracing::info!(%fullname, port = ad.port, "advertising over mDNS");
            }
            None => {
                tracing::warn!(%listen, "listening on loopback only: not advertising over mDNS")
            }
        }
        lan.browse_devices(fleet)?;
        Ok(lan)
    }

    /// The full name we advertise under (`Bench._otafleet._tcp.local.`), if we advertise.
    pub fn advertised_name(&self) -> Option<&str> {
        self.registered.as_deref()
    }

    /// Register the server's service; returns its full name.
    pub fn advertise(&mut self, ad: &Advertisement) -> Result<String> {
        let info = ad.service_info()?;
        let fullname = info.get_fullname().to_string();
        self.daemon.register(info)?;
        self.registered = Some(fullname.clone());
        Ok(fullname)
    }

    /// Browse the device service types (ArduinoOTA, ESPHome) into the fleet.
    pub fn browse_devices(&mut self, fleet: &Fleet) -> Result<()> {
        for ty in DEVICE_SERVICES {
            self.browsers
                .push(browse::spawn(&self.daemon, ty, fleet.clone())?);
        }
        let fleet = fleet.clone();
        self.toucher = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(TOUCH_EVERY);
            tick.tick().await; // the first tick is immediate; nothing to refresh yet
            loop {
                tick.tick().await;
                if let Err(e) = fleet.mdns_touch_present().await {
                    tracing::warn!(error = %e, "could not refresh discovered devices");
                }
            }
        }));
        Ok(())
    }

    /// Send goodbyes for our service, stop browsing, stop the daemon; each step bounded.
    pub async fn shutdown(self) {
        if let Some(toucher) = &self.toucher {
            toucher.abort();
        }
        if let Some(fullname) = &self.registered {
            match self.daemon.unregister(fullname) {
                Ok(rx) => match tokio::time::timeout(CONFIRM_TIMEOUT, rx.recv_async()).await {
                    Ok(Ok(status)) => tracing::info!(%fullname, ?status, "mDNS goodbye sent"),
                    _ => tracing::warn!(%fullname, "mDNS unregister not confirmed"),
                },
                Err(e) => tracing::warn!(%fullname, error = %e, "mDNS unregister failed"),
            }
        }
        for ty in DEVICE_SERVICES {
            let _ = self.daemon.stop_browse(ty);
        }
        match self.daemon.shutdown() {
            Ok(rx) => {
                let _ = tokio::time::timeout(CONFIRM_TIMEOUT, rx.recv_async()).await;
            }
            Err(e) => tracing::warn!(error = %e, "mDNS daemon shutdown failed"),
        }
        for task in self.browsers {
            let _ = tokio::time::timeout(CONFIRM_TIMEOUT, task).await;
        }
    }
}
