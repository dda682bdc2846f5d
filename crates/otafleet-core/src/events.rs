//! Domain events: what changed, for whoever watches (the admin API's server-sent events, the desktop
//! shell's notifications). A broadcast channel: a slow watcher misses old events rather than slowing
//! the server down, and is told so (`lagged`) so it can reload.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::deployments::Deployment;
use crate::devices::Device;
use crate::firmware::Firmware;
use crate::updates::Update;
use crate::watch_folders::WatchFolder;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A device was created or changed (check-in, admin edit, discovery).
    Device { device: Box<Device> },
    /// A device checked in with nothing new to say (answered from memory, `hot.rs`): only its
    /// `last_seen`, `rssi` and `uptime_s` changed, and it is online. At most once a second per
    /// device.
    Seen {
        mac: String,
        last_seen: String,
        rssi: Option<i64>,
        uptime_s: Option<i64>,
    },
    /// A device was deleted.
    DeviceRemoved { mac: String },
    /// A discovered mDNS service without a MAC appeared, changed or left.
    MdnsHost {
        host: Box<crate::discovered::DiscoveredHost>,
    },
    /// An image was added to the library, or the admin corrected its project, version or file
    /// name (the whole record, as `GET /api/v1/firmware/{id}` gives it).
    Firmware { firmware: Box<Firmware> },
    /// An image was deleted from the library.
    FirmwareRemoved { id: i64 },
    /// A deployment was created or stopped.
    Deployment { deployment: Box<Deployment> },
    /// An update moved: new state, progress or error.
    Update { update: Box<Update> },
    /// A device sent a report (`POST /api/v1/device/report`), now stored.
    Report { report: Box<crate::reports::Report> },
    /// A command was queued, delivered, answered, cancelled or expired (the whole record, as
    /// `GET /api/v1/devices/{mac}/commands` lists it).
    Command {
        command: Box<crate::commands::Command>,
    },
    /// A report's delivery was queued or attempted (`GET /api/v1/deliveries` row, as it is now).
    Delivery {
        delivery: Box<crate::notify::Delivery>,
    },
    /// A project was created or changed (its description, enrolment, variables or commands; a
    /// secret default is shown as `{"set": bool}`).
    Project {
        project: Box<crate::projects::Project>,
    },
    /// A project was deleted.
    ProjectRemoved { name: String },
    /// A device's config changed: the admin changed its values or its project's variables, or
    /// the device fetched or confirmed it (secrets masked).
    DeviceConfig {
        config: Box<crate::config::DeviceConfig>,
    },
    /// The list of watch folders changed (the watcher reloads it).
    WatchFolders,
    /// A file in a watch folder was handled; `folder.last_*` says how.
    Watch { folder: Box<WatchFolder> },
    /// An event another instance published (several instances on one PostgreSQL database,
    /// `crate::cluster`), as that instance serialized it: `name` is one of this enum's names
    /// (or `lagged`), `json` the whole event with its `type`. Never serialized itself: the event
    /// stream writes `json` as the event's data.
    #[serde(skip)]
    Remote {
        name: &'static str,
        json: std::sync::Arc<str>,
    },
}

/// Every event's name, for the names read from another instance ([`Event::static_name`]).
const NAMES: &[&str] = &[
    "device",
    "seen",
    "device_removed",
    "mdns_host",
    "firmware",
    "firmware_removed",
    "deployment",
    "update",
    "report",
    "command",
    "delivery",
    "project",
    "project_removed",
    "device_config",
    "watch_folders",
    "watch",
];

impl Event {
    /// The server-sent event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Device { .. } => "device",
            Event::Seen { .. } => "seen",
            Event::DeviceRemoved { .. } => "device_removed",
            Event::MdnsHost { .. } => "mdns_host",
            Event::Firmware { .. } => "firmware",
            Event::FirmwareRemoved { .. } => "firmware_removed",
            Event::Deployment { .. } => "deployment",
            Event::Update { .. } => "update",
            Event::Report { .. } => "report",
            Event::Command { .. } => "command",
            Event::Delivery { .. } => "delivery",
            Event::Project { .. } => "project",
            Event::ProjectRemoved { .. } => "project_removed",
            Event::DeviceConfig { .. } => "device_config",
            Event::WatchFolders => "watch_folders",
            Event::Watch { .. } => "watch",
            Event::Remote { name, .. } => name,
        }
    }

    /// The event name `name` as this build spells it (`None`: not an event this build knows).
    pub fn static_name(name: &str) -> Option<&'static str> {
        NAMES.iter().find(|n| **n == name).copied()
    }

    /// The numeric id in another instance's event at `path` (`["firmware", "id"]`), if it is
    /// one.
    pub fn remote_i64(&self, path: &[&str]) -> Option<i64> {
        let v = self.remote_json()?;
        path.iter().try_fold(&v, |v, k| v.get(k))?.as_i64()
    }

    /// Another instance's event, parsed (`None`: a local event, or JSON this build cannot read).
    /// Parse once and read its fields with `serde_json::Value::pointer`.
    pub fn remote_json(&self) -> Option<serde_json::Value> {
        let Event::Remote { json, .. } = self else {
            return None;
        };
        serde_json::from_str(json).ok()
    }
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// With several instances: every event published here also goes to the others
    /// (`crate::cluster`).
    outbox: Option<std::sync::Arc<crate::cluster::Outbox>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("shared", &self.outbox.is_some())
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        // Room for a burst of progress events from hundreds of devices between two reads.
        let (tx, _) = broadcast::channel(4096);
        Self { tx, outbox: None }
    }

    /// A bus whose events also go to the other instances.
    pub(crate) fn shared(outbox: std::sync::Arc<crate::cluster::Outbox>) -> Self {
        Self {
            outbox: Some(outbox),
            ..Self::new()
        }
    }

    /// Publish; having no watcher is not an error.
    pub fn publish(&self, event: Event) {
        if let Some(o) = &self.outbox {
            if !matches!(event, Event::Remote { .. }) {
                if let Ok(json) = serde_json::to_string(&event) {
                    o.event(json);
                }
            }
        }
        let _ = self.tx.send(event);
    }

    /// Publish another instance's event here only.
    pub(crate) fn publish_remote(&self, name: &'static str, json: std::sync::Arc<str>) {
        let _ = self.tx.send(Event::Remote { name, json });
    }

    /// Whether anyone listens (an event nobody receives need not be built). With several
    /// instances, always: a watcher may follow another instance.
    pub fn has_watchers(&self) -> bool {
        self.outbox.is_some() || self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
