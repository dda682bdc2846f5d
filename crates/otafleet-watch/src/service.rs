//! The watcher task: file events in, quiet-period debounce, import through the core, results out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use notify::event::{AccessKind, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::EventKind;
use otafleet_core::deployments::NewDeployment;
use otafleet_core::events::Event;
use otafleet_core::firmware::ImportSource;
use otafleet_core::watch_folders::WatchFolder;
use otafleet_core::{CoreError, Fleet};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::folder_set::{scan, Change, FolderSet};
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

/// What the notify thread tells the watcher task.
#[derive(Debug)]
enum Signal {
    /// A candidate file was created or written.
    File(PathBuf),
    /// A folder was created below a watched one: what it already holds was written before notify
    /// could watch it, so it is scanned.
    Dir(PathBuf),
    /// Something was deleted or moved away: when it is a watched folder itself, look at it again.
    Gone(PathBuf),
    /// The kernel's queue overflowed: events were lost, so look at every folder again.
    Rescan,
}

/// Start watching the folders stored in the core; runs until the fleet's event bus closes.
pub fn spawn(fleet: Fleet, opts: WatchOptions) -> notify::Result<tokio::task::JoinHandle<()>> {
    let (tx, rx) = mpsc::unbounded_channel::<Signal>();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if ev.need_rescan() {
            let _ = tx.send(Signal::Rescan);
        }
        match ev.kind {
            EventKind::Create(CreateKind::Folder) => {
                for p in ev.paths {
                    let _ = tx.send(Signal::Dir(p));
                }
            }
            EventKind::Remove(RemoveKind::Folder | RemoveKind::Any | RemoveKind::Other)
            | EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Any)) => {
                for p in ev.paths {
                    let _ = tx.send(Signal::Gone(p));
                }
            }
            EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Access(AccessKind::Close(_)) => {
                for p in ev.paths.into_iter().filter(|p| is_candidate(p)) {
                    let _ = tx.send(Signal::File(p));
                }
            }
            _ => {}
        }
    })?;
    Ok(tokio::spawn(run(fleet, opts, FolderSet::new(watcher), rx)))
}

fn queue(pending: &mut HashMap<PathBuf, Pending>, path: PathBuf) {
    pending.insert(
        path,
        Pending {
            last_event: Instant::now(),
            seen: None,
        },
    );
}

async fn run(
    fleet: Fleet,
    opts: WatchOptions,
    mut set: FolderSet,
    mut rx: mpsc::UnboundedReceiver<Signal>,
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
            Some(signal) = rx.recv() => match signal {
                Signal::File(path) => queue(&mut pending, path),
                Signal::Dir(dir) => scan(&dir).into_iter().for_each(|p| queue(&mut pending, p)),
                Signal::Gone(path) => {
                    if set.is_root(&path) {
                        let changes = set.recheck(Some(&path));
                        apply(&fleet, changes, &mut pending).await;
                    }
                }
                Signal::Rescan => {
                    let changes = set.recheck(None);
                    apply(&fleet, changes, &mut pending).await;
                }
            },
            ev = events.recv() => match ev {
                Ok(Event::WatchFolders)
                | Ok(Event::Remote { name: "watch_folders" | "lagged", .. })
                | Err(RecvError::Lagged(_)) => reload(&fleet, &mut set, &mut pending).await,
                Ok(_) => {}
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                // A folder deleted, replaced or back since the last look.
                let changes = set.check_all();
                apply(&fleet, changes, &mut pending).await;
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
                    // Ready a moment ago, but the files of a batch are handled one after the
                    // other, and a build may delete this one meanwhile: then it is forgotten.
                    let Some(fp) = fingerprint(&path) else {
                        continue;
                    };
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
    let changes = set.sync(folders);
    apply(fleet, changes, pending).await;
}

/// Act on what a look at the folders found: scan what is (again) watched, report the rest.
async fn apply(
    fleet: &Fleet,
    changes: Vec<(WatchFolder, Change)>,
    pending: &mut HashMap<PathBuf, Pending>,
) {
    for (folder, change) in changes {
        let (result, message) = match change {
            Change::Watching { back } => {
                tracing::info!(path = %folder.path, "watching for new firmware");
                // What the folder already holds counts as new (the dedup makes this harmless).
                for p in scan(Path::new(&folder.path)) {
                    queue(pending, p);
                }
                if !back {
                    continue;
                }
                (
                    "watching",
                    format!("{} is back; watching it again", folder.path),
                )
            }
            Change::Missing => {
                tracing::warn!(path = %folder.path, "watch folder is missing");
                (
                    "missing",
                    format!(
                        "{} does not exist (deleted or renamed, as a clean build does); it is watched again as soon as it is back",
                        folder.path
                    ),
                )
            }
            Change::Failed(message) => {
                tracing::warn!(path = %folder.path, %message, "cannot watch folder");
                ("error", message)
            }
        };
        if let Err(e) = fleet
            .watch_record(folder.id, &folder.path, result, &message)
            .await
        {
            tracing::error!(error = %e, "cannot record a watch result");
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
                        ..NewDeployment::default()
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
        // Deleted while it was read: nothing to report about a file that is not there.
        Err(e) if !path.exists() => {
            tracing::info!(%file, error = %e, "file vanished before it could be imported");
            return;
        }
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
