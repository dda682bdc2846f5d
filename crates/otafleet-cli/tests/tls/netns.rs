//! Two network namespaces joined by a veth pair (as the mDNS LAN tests build them): the server
//! runs in `a`, a LAN client in `b`. Adding an address inside `a` changes only that namespace,
//! so the test can watch the server re-issue its certificate without touching the machine's own
//! network. Names are unique per test run and [`Lan`]'s `Drop` removes both namespaces, also
//! when a test fails.
//!
//! These tests need root and `ip`. Without them the run FAILS and says why, unless
//! `OTAFLEET_SKIP_NETNS=1` is set, which prints SKIPPED instead (the same switch as the mDNS
//! tests).

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

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
            "SKIPPED {test}: OTAFLEET_SKIP_NETNS=1 (TLS tests across network namespaces not run)"
        );
        return None;
    }
    assert!(
        unsafe { libc::geteuid() } == 0,
        "{test} needs root to create network namespaces (CI runs as root); run the tests as \
         root, or set OTAFLEET_SKIP_NETNS=1 to skip them knowingly"
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
        a: format!("oftls{id}a"),
        b: format!("oftls{id}b"),
        ip_a: format!("10.232.{}.1", n % 250),
        ip_b: format!("10.232.{}.2", n % 250),
        dev_a: format!("vtl{id}a"),
        dev_b: format!("vtl{id}b"),
    };
    let (va, vb) = (&lan.dev_a, &lan.dev_b);
    ip(&["netns", "add", &lan.a]);
    // From here on, a failing step still removes what was made: `lan` drops.
    ip(&["netns", "add", &lan.b]);
    ip(&[
        "link", "add", va, "netns", &lan.a, "type", "veth", "peer", "name", vb, "netns", &lan.b,
    ]);
    for (ns, dev, addr) in [(&lan.a, va, &lan.ip_a), (&lan.b, vb, &lan.ip_b)] {
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
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
