//! The test LAN: two network namespaces joined by a veth pair, so mDNS crosses a real link and
//! never touches the machine's own network (mdns-sd joins multicast on every interface it sees),
//! and an address added inside one namespace (the HTTPS tests' certificate re-issue) changes
//! nothing outside it. Shared by the mDNS and the HTTPS tests.
//! Names are unique per test run, addresses come from a /24 that exists only inside the pair, and
//! [`Lan`]'s `Drop` removes both namespaces, also when a test fails.
//!
//! These tests need root and `ip`. Without them the run FAILS and says why, unless
//! `OTAFLEET_SKIP_NETNS=1` is set, which prints SKIPPED instead.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub struct Lan {
    pub a: String,
    pub b: String,
    pub ip_a: String,
    pub ip_b: String,
    /// The veth ends inside `a` and `b`.
    pub dev_a: String,
    pub dev_b: String,
}

/// `None` (after printing SKIPPED) when the user opted out; panics when the tests cannot run.
pub fn lan(test: &str) -> Option<Lan> {
    if std::env::var("OTAFLEET_SKIP_NETNS").is_ok_and(|v| v == "1") {
        eprintln!(
            "SKIPPED {test}: OTAFLEET_SKIP_NETNS=1 (tests across network namespaces not run)"
        );
        return None;
    }
    assert!(
        unsafe { libc::geteuid() } == 0,
        "{test} needs root to create network namespaces (CI runs as root); \
         run the tests as root, or set OTAFLEET_SKIP_NETNS=1 to skip them knowingly"
    );
    assert!(
        Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success()),
        "{test} needs the `ip` command (Debian package iproute2; scripts/setup-deps installs it)"
    );
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}{n}", std::process::id() % 100_000);
    let lan = Lan {
        a: format!("ofmdns{id}a"),
        b: format!("ofmdns{id}b"),
        ip_a: format!("10.231.{}.1", n % 250),
        ip_b: format!("10.231.{}.2", n % 250),
        dev_a: format!("vof{id}a"),
        dev_b: format!("vof{id}b"),
    };
    let (va, vb) = (&lan.dev_a, &lan.dev_b);
    ip(&["netns", "add", &lan.a]);
    ip(&["netns", "add", &lan.b]);
    ip(&[
        "link", "add", va, "netns", &lan.a, "type", "veth", "peer", "name", vb, "netns", &lan.b,
    ]);
    for (ns, dev, addr) in [(&lan.a, va, &lan.ip_a), (&lan.b, vb, &lan.ip_b)] {
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "set", dev, "up", "multicast", "on"]);
        ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev]);
    }
    Some(lan)
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lan {
    /// A command that runs inside namespace `ns`.
    pub fn cmd(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c.stdin(Stdio::null());
        c
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A Python with python-zeroconf, made once per target dir (`pip install zeroconf`); the lock is
/// released when the file closes.
pub fn zeroconf_python() -> &'static PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zeroconf-venv");
        let py = venv.join("bin/python");
        let ready = |py: &PathBuf| {
            Command::new(py)
                .args(["-c", "import zeroconf"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        // Test runners that use one process per test (nextest) build it once: take a file lock.
        let lock = std::fs::File::create(venv.with_extension("lock")).expect("venv lock file");
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        if !ready(&py) {
            let ok = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status();
            assert!(
                ok.is_ok_and(|s| s.success()),
                "python3 -m venv failed: install python3-venv (scripts/setup-deps does)"
            );
            let ok = Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "zeroconf>=0.150,<1"])
                .status();
            assert!(
                ok.is_ok_and(|s| s.success()),
                "pip install zeroconf failed: the mDNS tests need PyPI once to build {}",
                venv.display()
            );
        }
        assert!(
            ready(&py),
            "python-zeroconf not importable from {}",
            py.display()
        );
        py
    })
}

pub fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mdns/peer.py")
}
