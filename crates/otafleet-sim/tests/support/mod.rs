//! The real server, in-process on 127.0.0.1:0 over a temporary data directory, for the simulator's
//! tests that drive it over HTTP.

use otafleet_core::{Fleet, Settings};
use otafleet_server::AppState;
use tokio::sync::oneshot;

pub struct Served {
    pub base: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Served {
    /// A fresh server whose admin token is `admin`.
    pub async fn start(admin: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(Settings::new(dir.path())).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(otafleet_server::serve(
            listener,
            AppState::new(fleet, admin),
            async {
                let _ = stopped.await;
            },
        ));
        Served {
            base,
            stop,
            task,
            _dir: dir,
        }
    }

    /// Shut it down and wait until it has stopped serving.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}
