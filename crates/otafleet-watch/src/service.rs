//! The watcher task: file events in, quiet-period debounce, import through the core, results out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use notify::EventKind;
use otafleet_core::deployments::NewDeployment;
use otafleet_core::events::Event;
use otafleet_core::firmware::ImportSource;
use otafleet_core::{CoreError, Fleet};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::folder_set::{scan, FolderSet};
use crate::{is_candidate, WatchOptions};

/// What identifies one version of a file on disk.
type Fingerprint = (u64, Option<SystemTime>);

struct Pending {
    last_event: Instant,
    /// The fingerprint seen at the previous look: a file is handled only when two looks agree.
    seen: Option<Fingerprint>,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let m = std::fs::metadata(path).ok()?;
    m.is_file().then(|| (m.len(), m.modified().ok()))
}

/// Start watching the folders stored in the core; runs until the fleet's event bus closes.
pub fn spawn(fleet: Fleet, opts: WatchOptions) -> notify::Result<tokio::task::JoinHandle<()>> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        let relevant = matches!(
            ev.kind,
            EventKind::Create(_)
                | EventKind::Modify(_)
                | EventKind::Access(notify::event::AccessKind::Close(_))
        );
        if relevant {
            for p in ev.paths.into_iter().filter(|p| is_candidate(p)) {
                let _ = tx.send(p);
            }
        }
    })?;
    Ok(tokio::spawn(run(fleet, opts, FolderSet::new(watcher), rx)))
}

async fn run(
    fleet: Fleet,
    opts: WatchOptions,
    mut set: FolderSet,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
) {
    // Subscribe before the first load, so a folder added meanwhile is not missed.
    let mut events = fleet.events().subscribe();
    let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
    let mut done: HashMap<PathBuf, Fingerprint> = HashMap::new();
    reload(&fleet, &mut set, &mut pending).await;
    let mut tick =
        tokio::time::interval((opts.quiet / 4).max(std::time::Duration::from_millis(25)));
    loop {
        tokio::select! {
            Some(path) = rx.recv() => {
                pending.insert(path, Pending { last_event: Instant::now(), seen: None });
            }
            ev = events.recv() => match ev {
                Ok(Event::WatchFolders) | Err(RecvError::Lagged(_)) => reload(&fleet, &mut set, &mut pending).await,
                Ok(_) => {}
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let mut ready = Vec::new();
                for (path, p) in pending.iter_mut() {
                    if now.duration_since(p.last_event) < opts.quiet {
                        continue;
                    }
                    let fp = fingerprint(path);
                    if fp.is_some() && fp == p.seen {
                        ready.push(path.clone());
                    } else {
                        p.seen = fp;
                    }
                }
                for path in ready {
                    pending.remove(&path);
                    let fp = fingerprint(&path).expect("a ready file exists");
                    if done.get(&path) == Some(&fp) {
                        continue; // Already handled this very version of the file.
                    }
                    done.insert(path.clone(), fp);
                    handle(&fleet, &set, &path).await;
                }
                // Files that vanished while pending are forgotten.
                pending.retain(|p, _| p.exists());
            }
        }
    }
}

async fn reload(fleet: &Fleet, set: &mut FolderSet, pending: &mut HashMap<PathBuf, Pending>) {
    let folders = match fleet.watch_folders().await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot load the watch folders");
            return;
        }
    };
    for (folder, result) in set.sync(folders) {
        match result {
            Ok(()) => {
                tracing::info!(path = %folder.path, "watching for new firmware");
                // What the folder already holds counts as new (the dedup makes this harmless).
                for p in scan(Path::new(&folder.path)) {
                    pending.insert(
                        p,
                        Pending {
                            last_event: Instant::now(),
                            seen: None,
                        },
                    );
                }
            }
            Err(message) => {
                tracing::warn!(path = %folder.path, %message, "cannot watch folder");
                let _ = fleet
                    .watch_record(folder.id, &folder.path, "error", &message)
                    .await;
            }
        }
    }
}

async fn handle(fleet: &Fleet, set: &FolderSet, path: &Path) {
    let Some(folder) = set.owner(path).cloned() else {
        return;
    };
    let file = path.display().to_string();
    let (result, message) = match fleet
        .import_path(path, None, None, ImportSource::Watch)
        .await
    {
        Ok(out) if out.created => {
            let fw = &out.firmware;
            let what = format!(
                "imported {} {} for {} as firmware {}",
                fw.project.as_deref().unwrap_or("(no project)"),
                fw.version.as_deref().unwrap_or("(no version)"),
                fw.chip,
                fw.id
            );
            if folder.auto_deploy {
                let deployed = fleet
                    .deployment_create(NewDeployment {
                        firmware_id: fw.id,
                        devices: None,
                        project: None,
                        chip: None,
                        rollback: false,
                        dry_run: false,
                    })
                    .await;
                match deployed {
                    Ok(d) => (
                        "imported",
                        format!(
                            "{what}; deployed to {} device(s) of {}",
                            d.reach,
                            d.project.unwrap_or_default()
                        ),
                    ),
                    Err(e) => ("imported", format!("{what}; not deployed: {e}")),
                }
            } else {
                ("imported", what)
            }
        }
        Ok(out) => (
            "duplicate",
            format!(
                "same bytes as firmware {} already in the library",
                out.firmware.id
            ),
        ),
        Err(CoreError::Rejected(otafleet_image::RejectReason::Truncated { .. })) => (
            "incomplete",
            "the image looks incomplete; waiting for the build to finish writing it".to_string(),
        ),
        Err(e) => ("rejected", e.to_string()),
    };
    tracing::info!(%file, result, %message, "watch folder");
    if let Err(e) = fleet.watch_record(folder.id, &file, result, &message).await {
        tracing::error!(error = %e, "cannot record a watch result");
    }
}
