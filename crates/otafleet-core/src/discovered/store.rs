//! Writing discoveries to the database, as [`Fleet`] methods the mDNS browser calls: a service
//! appeared or changed ([`Fleet::mdns_seen`]), left ([`Fleet::mdns_gone`]), or nobody knows any
//! more because the server was down ([`Fleet::mdns_forget_presence`]). Each change publishes the
//! device's (or host's) new state as an event, like a check-in does.

use std::collections::BTreeMap;

use crate::db::Json;

use super::{DiscoveredHost, Discovery, DiscoveryKey, ListedDevice};
use crate::db;
use crate::error::Result;
use crate::events::Event;
use crate::Fleet;

#[derive(sqlx::FromRow)]
struct HostRow {
    service: String,
    instance: String,
    hostname: String,
    ip: Option<String>,
    port: i64,
    txt: Json<BTreeMap<String, String>>,
    first_seen: String,
    mdns_seen: String,
    mdns_gone: Option<String>,
}

impl HostRow {
    fn into_host(self, fleet: &Fleet) -> DiscoveredHost {
        let name = Discovery {
            service: self.service.clone(),
            instance: self.instance.clone(),
            hostname: self.hostname.clone(),
            ip: None,
            port: 0,
            txt: self.txt.0.clone(),
        }
        .display_name();
        DiscoveredHost {
            key: format!("{}/{}", self.service, self.instance),
            mac: None,
            name,
            online: super::online(
                fleet.timing().offline_after_s(),
                None,
                Some(&self.mdns_seen),
                self.mdns_gone.as_deref(),
            ),
            last_seen: Some(self.mdns_seen.clone()),
            hostname: self.hostname,
            ip: self.ip,
            source: "mdns".into(),
            created_at: self.first_seen,
            mdns_service: self.service,
            mdns_instance: self.instance,
            mdns_port: self.port,
            mdns_txt: self.txt.0,
            mdns_seen: Some(self.mdns_seen),
            mdns_gone: self.mdns_gone,
        }
    }
}

impl Fleet {
    /// A service was resolved (first time, or again with new facts): store it under its MAC or,
    /// without one, as a discovered host, mark it present, and publish the new state.
    pub async fn mdns_seen(&self, d: Discovery) -> Result<DiscoveryKey> {
        let key = d.key();
        let now = crate::time::now();
        let txt = Json(d.txt.clone());
        {
            let _w = self.write_lock().await;
            let mut tx = crate::db::begin_write(self.db()).await?;
            match &key {
                DiscoveryKey::Mac(mac) => {
                    crate::devices::mdns_seen(
                        &mut tx,
                        mac,
                        d.ip.as_deref(),
                        &d.hostname,
                        &d.service,
                        &d.instance,
                        i64::from(d.port),
                        &txt,
                        &now,
                    )
                    .await?;
                    // It may have been listed without a MAC before its TXT said one.
                    db::query("DELETE FROM mdns_hosts WHERE service = ? AND instance = ?")
                        .bind(&d.service)
                        .bind(&d.instance)
                        .execute(&mut *tx)
                        .await?;
                }
                DiscoveryKey::Host { service, instance } => {
                    db::query(
                        "INSERT INTO mdns_hosts (service, instance, hostname, ip, port, txt, first_seen, \
                           mdns_seen, mdns_gone) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, NULL) \
                         ON CONFLICT (service, instance) DO UPDATE SET hostname = excluded.hostname, \
                           ip = COALESCE(excluded.ip, mdns_hosts.ip), port = excluded.port, \
                           txt = excluded.txt, mdns_seen = excluded.mdns_seen, mdns_gone = NULL",
                    )
                    .bind(service)
                    .bind(instance)
                    .bind(&d.hostname)
                    .bind(&d.ip)
                    .bind(i64::from(d.port))
                    .bind(&txt)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        }
        self.publish_discovered(&key).await;
        Ok(key)
    }

    /// A service left the LAN (goodbye, or its records expired): it is offline from now on,
    /// unless it checks in later.
    pub async fn mdns_gone(&self, key: &DiscoveryKey) -> Result<()> {
        let now = crate::time::now();
        {
            let _w = self.write_lock().await;
            match key {
                DiscoveryKey::Mac(mac) => {
                    let mut conn = self.db().acquire().await?;
                    crate::devices::mdns_gone(&mut conn, mac, &now).await?;
                }
                DiscoveryKey::Host { service, instance } => {
                    db::query(
                        "UPDATE mdns_hosts SET mdns_gone = ? WHERE service = ? AND instance = ? \
                         AND mdns_gone IS NULL",
                    )
                    .bind(&now)
                    .bind(service)
                    .bind(instance)
                    .execute(self.db())
                    .await?;
                }
            }
        }
        self.publish_discovered(key).await;
        Ok(())
    }

    /// Mark every discovered entry gone. Called when the server starts (with or without mDNS):
    /// presence recorded by an earlier run says nothing about now. It counts as leaving at the
    /// last sighting, not now, so a device that checked in after that sighting stays online.
    pub async fn mdns_forget_presence(&self) -> Result<()> {
        let _w = self.write_lock().await;
        let mut tx = crate::db::begin_write(self.db()).await?;
        crate::devices::mdns_forget_presence(&mut tx).await?;
        db::query("UPDATE mdns_hosts SET mdns_gone = mdns_seen WHERE mdns_gone IS NULL")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Refresh `mdns_seen` of everything present. mdns-sd re-resolves quietly while a service
    /// stays up and reports only changes and departures, so the browser calls this now and then
    /// to keep `last_seen` truthful for devices that are simply still there. No events: nothing
    /// a watcher acts on changed.
    pub async fn mdns_touch_present(&self) -> Result<()> {
        let now = crate::time::now();
        let _w = self.write_lock().await;
        let mut tx = crate::db::begin_write(self.db()).await?;
        crate::devices::mdns_touch_present(&mut tx, &now).await?;
        db::query("UPDATE mdns_hosts SET mdns_seen = ? WHERE mdns_gone IS NULL")
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Discovered services without a MAC, by service type and instance name.
    pub async fn mdns_hosts(&self) -> Result<Vec<DiscoveredHost>> {
        let rows: Vec<HostRow> =
            db::query_as("SELECT * FROM mdns_hosts ORDER BY service, instance")
                .fetch_all(self.db())
                .await?;
        Ok(rows.into_iter().map(|r| r.into_host(self)).collect())
    }

    /// Every device, then every MAC-less discovered host: the rows of `GET /api/v1/devices`.
    pub async fn devices_and_hosts(&self) -> Result<Vec<ListedDevice>> {
        let mut all: Vec<ListedDevice> = self
            .devices()
            .await?
            .into_iter()
            .map(|d| ListedDevice::Device(Box::new(d)))
            .collect();
        all.extend(
            self.mdns_hosts()
                .await?
                .into_iter()
                .map(|h| ListedDevice::Host(Box::new(h))),
        );
        Ok(all)
    }

    /// One page of `GET /api/v1/devices`: up to `limit` devices after the cursor `after`
    /// ([`Fleet::devices_page`]), and the cursor of the next page; the MAC-less hosts come after
    /// the devices of the last page.
    pub async fn devices_and_hosts_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ListedDevice>, Option<String>)> {
        let page = self.devices_page(after, limit).await?;
        let mut listed: Vec<ListedDevice> = page
            .devices
            .into_iter()
            .map(|d| ListedDevice::Device(Box::new(d)))
            .collect();
        if page.next.is_none() {
            listed.extend(
                self.mdns_hosts()
                    .await?
                    .into_iter()
                    .map(|h| ListedDevice::Host(Box::new(h))),
            );
        }
        Ok((listed, page.next))
    }

    async fn publish_discovered(&self, key: &DiscoveryKey) {
        match key {
            DiscoveryKey::Mac(mac) => self.publish_device(mac).await,
            DiscoveryKey::Host { service, instance } => {
                let row: std::result::Result<Option<HostRow>, _> =
                    db::query_as("SELECT * FROM mdns_hosts WHERE service = ? AND instance = ?")
                        .bind(service)
                        .bind(instance)
                        .fetch_optional(self.db())
                        .await;
                match row {
                    Ok(Some(r)) => self.events().publish(Event::MdnsHost {
                        host: Box::new(r.into_host(self)),
                    }),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%service, %instance, error = %e, "could not load discovered host for its event")
                    }
                }
            }
        }
    }
}
