//! The `otafleet` binary the simulator's process-level tests run (`OTAFLEET_BIN`, or built here
//! in the test's own profile and target directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The `otafleet` binary, or `None` (with the reason printed) when there is none to test with.
pub fn otafleet() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("OTAFLEET_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "OTAFLEET_BIN={} is not a file",
            bin.display()
        );
        return Some(bin);
    }
    let built = build_otafleet();
    if built.is_none() && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no otafleet binary under CI: set OTAFLEET_BIN or let cargo build otafleet-cli");
    }
    if built.is_none() {
        eprintln!(
            "SKIPPED: no otafleet binary (set OTAFLEET_BIN, or let `cargo build -p otafleet-cli \
             --bin otafleet` succeed)"
        );
    }
    built
}

/// `cargo build -p otafleet-cli --bin otafleet` in this test's profile and target directory;
/// the executable cargo names.
fn build_otafleet() -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--locked",
        "-p",
        "otafleet-cli",
        "--bin",
        "otafleet",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .stderr(Stdio::inherit());
    // target/<profile dir>/deps/<this test>: build in the same profile.
    let exe = std::env::current_exe().ok()?;
    if let Some(profile) = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|p| p.to_str())
        .filter(|p| *p != "debug")
    {
        cmd.args(["--profile", profile]);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        eprintln!("cargo build -p otafleet-cli --bin otafleet failed");
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "otafleet")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}
