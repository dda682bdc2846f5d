//! `otafleet-desktop`: everything lives in the library so tests can drive it (see `lib.rs`).
#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

fn main() -> std::process::ExitCode {
    otafleet_desktop::run()
}
