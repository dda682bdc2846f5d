//! `otafleet-sim --mdns` on a real link: the real `otafleet serve` (mDNS on) in one network
//! namespace, the real simulator in another, a veth pair between them (see [`netns`]). The sim
//! must find the server the way a device would, say which one it uses, and update the fleet
//! through it; with two servers it must list both and take the one asked for; with none, fail
//! clearly. Every wait polls a condition up to a deadline; nothing asserts on how long things
//! took.

mod netns;
mod support;

use support::*;

#[test]
fn the_sim_finds_the_server_over_mdns_and_updates_the_whole_fleet() {
    let Some(lan) = netns::lan("the_sim_finds_the_server_over_mdns_and_updates_the_whole_fleet")
    else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let name = format!("sim lan test {}", std::process::id());
    let (_server, port) = serve(&lan, data.path(), &name);
    // No discover first: the sim's own browse waits for the server to answer.
    let mut args = vec!["--mdns", "--devices", "10", "--seed", "11"];
    args.extend_from_slice(QUICK);
    let run = sim(&lan, &args);
    let out = run.transcript();
    eprintln!("{out}");
    let url = format!("http://{}:{port}", lan.ip_a);
    let used = run
        .line("otafleet-sim: using server")
        .unwrap_or_else(|| panic!("the sim says which server it uses:\n{out}"));
    assert!(
        used.contains(&format!("\"{name}\" at {url} ")) && used.contains("api=/api/v1"),
        "the server's IPv4 address and SRV port, from namespace B: {used}"
    );
    assert!(
        run.line("otafleet-sim: mDNS:").is_none(),
        "one server: nothing to list or skip:\n{out}"
    );
    assert!(
        run.line("otafleet-sim: 10 devices")
            .is_some_and(|l| l.ends_with(&format!("against {url}"))),
        "{out}"
    );
    assert!(run.status.success(), "the run succeeds:\n{out}");
    assert!(
        run.line("updated ")
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("10")),
        "all 10 devices updated:\n{out}"
    );
    assert!(
        run.line("server records")
            .is_some_and(|l| l.contains("agree for all 10")),
        "and the server recorded it so:\n{out}"
    );
    assert_eq!(run.line("result "), Some("result             OK"), "{out}");
}

#[test]
fn of_two_servers_the_sim_lists_both_and_takes_the_first_by_name_or_the_named_one() {
    let Some(lan) = netns::lan(
        "of_two_servers_the_sim_lists_both_and_takes_the_first_by_name_or_the_named_one",
    ) else {
        return;
    };
    let pid = std::process::id();
    let (first, second) = (format!("Attic {pid}"), format!("bench {pid}"));
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_s2, port2) = serve(&lan, d2.path(), &second);
    let (_s1, port1) = serve(&lan, d1.path(), &first);
    // Both must be answering on the link before the sim looks, or it could rightly see just one.
    discover_until_seen(&lan, &[&first, &second]);

    let mut args = vec!["--mdns", "--devices", "2", "--protocols", "native=1"];
    args.extend_from_slice(QUICK);
    let run = sim(&lan, &args);
    let out = run.transcript();
    eprintln!("{out}");
    let list = run
        .line("otafleet-sim: mDNS: 2 servers answered")
        .unwrap_or_else(|| panic!("both servers are listed:\n{out}"));
    for (name, port) in [(&first, port1), (&second, port2)] {
        assert!(
            list.contains(&format!("\"{name}\" (")) && list.contains(&format!(":{port})")),
            "{name} on port {port} is in the list: {list}"
        );
    }
    assert!(
        list.contains(&format!("using \"{first}\" (the first by name")),
        "{list}"
    );
    let url1 = format!("http://{}:{port1}", lan.ip_a);
    assert!(
        run.line("otafleet-sim: using server")
            .is_some_and(|l| l.contains(&url1)),
        "{out}"
    );
    assert!(run.status.success(), "{out}");

    let named = second.to_uppercase();
    let mut args = vec!["--mdns", "--mdns-name", &named, "--devices", "2"];
    args.extend_from_slice(&["--protocols", "native=1"]);
    args.extend_from_slice(QUICK);
    let run = sim(&lan, &args);
    let out = run.transcript();
    eprintln!("{out}");
    let url2 = format!("http://{}:{port2}", lan.ip_a);
    assert!(
        run.line("otafleet-sim: using server")
            .is_some_and(|l| l.contains(&format!("\"{second}\" at {url2} "))),
        "--mdns-name picks its server, whatever the case:\n{out}"
    );
    assert!(
        run.line("otafleet-sim: 2 devices")
            .is_some_and(|l| l.ends_with(&url2)),
        "{out}"
    );
    assert!(run.status.success(), "{out}");
}

#[test]
fn with_no_server_on_the_lan_the_sim_says_so_and_exits_2() {
    let Some(lan) = netns::lan("with_no_server_on_the_lan_the_sim_says_so_and_exits_2") else {
        return;
    };
    let mut args = vec!["--mdns", "--mdns-timeout", "2", "--devices", "2"];
    args.extend_from_slice(QUICK);
    let run = sim(&lan, &args);
    let out = run.transcript();
    assert_eq!(run.status.code(), Some(2), "a setup error:\n{out}");
    assert!(
        run.stderr
            .contains("--mdns: no otafleet server answered (_otafleet._tcp) within 2.0 s"),
        "{out}"
    );
    assert!(
        run.line("otafleet-sim: 2 devices").is_none(),
        "no fleet starts:\n{out}"
    );
}
