use std::sync::Arc;
use std::time::Duration;

use super::*;

fn line(level: &str, text: &str) -> LogLineIn {
    LogLineIn {
        level: level.into(),
        scope: Some("app".into()),
        text: text.into(),
        device_time: None,
    }
}

fn batch(n: usize) -> LogBatch {
    LogBatch {
        lines: (0..n).map(|i| line("info", &format!("line {i}"))).collect(),
    }
}

const MAC: &str = "24:0A:C4:00:00:01";

#[test]
fn a_batch_is_taken_whole_or_refused_with_what_to_change() {
    let hub = LogHub::default();
    let mut b = batch(3);
    b.lines[1].level = "loud".into();
    let e = hub.append(MAC, b).unwrap_err();
    assert_eq!(e.code(), "invalid_level");
    assert!(e.to_string().contains("line 1"), "{e}");
    assert!(hub.snapshot(MAC, 0, 100).lines.is_empty(), "nothing kept");

    let e = hub.append(MAC, batch(MAX_LINES_PER_BATCH + 1)).unwrap_err();
    assert_eq!(e.code(), "too_many_lines");
    let e = hub.append(MAC, LogBatch { lines: vec![] }).unwrap_err();
    assert_eq!(e.code(), "no_lines");
    let e = hub
        .append(
            MAC,
            LogBatch {
                lines: vec![line("info", &"x".repeat(MAX_TEXT_BYTES + 1))],
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "text_too_long");
    let mut b = batch(1);
    b.lines[0].scope = Some("a\nb".into());
    assert_eq!(hub.append(MAC, b).unwrap_err().code(), "invalid_scope");
    assert_eq!(hub.buffered_bytes(), 0);

    let a = hub.append(MAC, batch(3)).unwrap();
    assert_eq!(a.accepted, 3);
    assert!(!a.logs, "nobody watches: the device is told to stop");
    let s = hub.snapshot(MAC, 0, 100);
    assert_eq!(s.lines.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(hub.snapshot(MAC, 2, 100).lines.len(), 1, "after a seq");
    assert_eq!(
        hub.snapshot(MAC, 0, 2).lines[0].seq,
        2,
        "a limit keeps the newest"
    );
}

#[test]
fn each_device_keeps_its_newest_lines_and_the_budget_holds() {
    let hub = LogHub::default();
    for _ in 0..(KEEP_LINES / 100 + 3) {
        hub.append(MAC, batch(100)).unwrap();
    }
    let s = hub.snapshot(MAC, 0, usize::MAX);
    assert_eq!(s.lines.len(), KEEP_LINES);
    assert_eq!(s.dropped, 300);
    assert_eq!(s.lines.last().unwrap().seq, (KEEP_LINES + 300) as u64);

    // Many devices with long lines: the total stays within the budget, and the device that just
    // sent keeps its lines.
    let long = "y".repeat(MAX_TEXT_BYTES);
    let per_device = KEEP_LINES * (MAX_TEXT_BYTES + 4 + LINE_OVERHEAD);
    let devices = TOTAL_BYTES / per_device + 3;
    for d in 0..devices {
        let mac = format!("24:0A:C4:00:10:{d:02X}");
        for _ in 0..(KEEP_LINES / 100) {
            let b = LogBatch {
                lines: (0..100).map(|_| line("debug", &long)).collect(),
            };
            hub.append(&mac, b).unwrap();
        }
        assert!(
            hub.buffered_bytes() <= TOTAL_BYTES,
            "{} > {TOTAL_BYTES}",
            hub.buffered_bytes()
        );
        assert_eq!(hub.snapshot(&mac, 0, usize::MAX).lines.len(), KEEP_LINES);
    }
    let first = hub.snapshot("24:0A:C4:00:10:00", 0, usize::MAX);
    assert!(
        first.lines.is_empty() && first.dropped > 0,
        "the least recently active went first"
    );
}

#[tokio::test]
async fn a_lease_makes_the_device_wanted_until_the_grace_after_the_last_viewer() {
    let hub = Arc::new(LogHub::with_grace(Duration::from_millis(200)));
    assert!(!hub.wanted(MAC));
    hub.append(MAC, batch(2)).unwrap();

    let (backlog, mut rx, lease_a, first) = hub.watch(MAC, 0);
    assert!(first);
    assert_eq!(backlog.len(), 2, "the viewer gets what is buffered");
    let (_, _, lease_b, first) = hub.watch(MAC, 2);
    assert!(!first, "a second viewer: the device is already sending");
    assert!(hub.wanted(MAC));
    assert!(!hub.wanted("24:0A:C4:00:00:02"), "only that device");

    let a = hub.append(MAC, batch(1)).unwrap();
    assert!(a.logs);
    let got = rx.recv().await.unwrap();
    assert_eq!(got[0].seq, 3);

    drop(lease_a);
    assert!(hub.wanted(MAC), "one viewer left");
    drop(lease_b);
    assert!(hub.wanted(MAC), "within the grace (a reload)");
    // Wait for the grace to pass (polling the condition, bounded).
    let mut waited = 0;
    while hub.wanted(MAC) {
        assert!(waited < 100, "still wanted long after the grace");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert!(
        !hub.append(MAC, batch(1)).unwrap().logs,
        "the next batch is told to stop"
    );
    assert_eq!(
        hub.leased.load(Ordering::Acquire),
        0,
        "the fast path is back"
    );

    // Watching again within the grace reuses the lease count.
    let (_, _, lease, first) = hub.watch(MAC, 0);
    assert!(first);
    drop(lease);
    let (_, _, lease, first) = hub.watch(MAC, 0);
    assert!(!first);
    drop(lease);
    hub.forget(MAC);
    assert_eq!(hub.leased.load(Ordering::Acquire), 0);
    assert_eq!(hub.buffered_bytes(), 0);
}
