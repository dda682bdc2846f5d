//! Helpers for the benchmark harness `bench/run.sh` (see BENCHMARKS.md). They are separate
//! binaries rather than part of the server or the simulator because they measure those: a bare
//! axum handler as the check-in baseline ([`bare-checkin`]) and `bench-tool` for enrolling
//! devices for wrk, holding downloads in flight and reading a process's RSS from /proc.

/// Resident set size of a process, in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
