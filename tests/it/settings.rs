//! Settings operations lower for a while and put back: `repl-diskless-sync-delay` on
//! new masters while their replicas link (create, replicate onto an empty master),
//! and what `check` and `fix` do about a node a killed run left lowered.

use crate::support::*;
use redis_trib::lab::LabOpts;

/// A lab whose nodes keep Redis's default 5 s sync delay (the lab's own default is 0).
fn lab_with_sync_delay(n: usize) -> TestLab {
    lab_with(
        n,
        LabOpts {
            extra_args: vec!["--repl-diskless-sync-delay".into(), "5".into()],
            ..LabOpts::default()
        },
    )
}

fn sync_delay(lab: &TestLab, i: usize) -> String {
    lab.config_get(i, "repl-diskless-sync-delay")
}

#[test]
fn create_links_replicas_without_the_sync_delay_and_puts_it_back() {
    let lab = lab_with_sync_delay(6);
    let addrs: Vec<String> = (0..6).map(|i| lab.at(i)).collect();
    let mut args = vec!["create", "--replicas", "1"];
    args.extend(addrs.iter().map(String::as_str));
    let run = lab.run(&args);
    run.ok();
    assert!(
        run.stderr.contains(
            "repl-diskless-sync-delay 0 s on 3 new node(s) until their replicas are linked"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("repl-diskless-sync-delay put back"),
        "{}",
        run.stderr
    );
    for i in 0..6 {
        assert_eq!(sync_delay(&lab, i), "5", "node {i} kept a lowered delay");
    }
    lab.assert_redis_cli_check(0);
}

#[test]
fn replicate_onto_an_empty_master_waits_for_the_link_and_puts_the_delay_back() {
    let lab = lab_with_sync_delay(4);
    let a = lab.cluster(3).to_string();
    let run = lab.run(&["replicate", &a, &lab.at(3)]);
    run.ok();
    assert!(
        run.stderr
            .contains("repl-diskless-sync-delay 0 s on 1 new node(s)"),
        "{}",
        run.stderr
    );
    // Linked when replicate returns.
    let info = text(lab.cmd(3, &["INFO", "replication"]).unwrap());
    assert!(info.contains("master_link_status:up"), "{info}");
    assert_eq!(sync_delay(&lab, 0), "5");
    // A master with keys keeps its delay (its sync batches replicas).
    lab.write_keys(0, "k", 50);
    let lab2 = lab_with_sync_delay(1);
    let run = lab.run(&["replicate", &lab.at(1), &lab2.at(0)]);
    run.ok();
    assert!(
        !run.stderr.contains("repl-diskless-sync-delay 0"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_reports_and_fix_puts_back_a_sync_delay_a_killed_run_left() {
    let lab = lab_with_sync_delay(3);
    let a = lab.cluster(3).to_string();
    lab.cmd(1, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"])
        .unwrap();
    let out = lab.run(&["check", &a]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "{} has repl-diskless-sync-delay 0 s, the other nodes 5 s",
            lab.at(1)
        )),
        "{}",
        out.stdout
    );
    let fixed = lab.run(&["fix", &a]);
    let text = format!("{}{}", fixed.ok(), fixed.stderr);
    assert!(
        text.contains("repl-diskless-sync-delay put back on 1 node(s)"),
        "{text}"
    );
    assert_eq!(sync_delay(&lab, 1), "5");
    lab.run(&["check", &a]).ok();
}

#[test]
fn create_puts_every_setting_back_when_its_replicas_never_link() {
    // The replicas cannot authenticate to their masters (a wrong masterauth), so
    // their links never come up and create's last wait times out, after it lowered
    // the masters' and the replicas' settings.
    let lab = lab_with(
        6,
        LabOpts {
            password: Some("s3cret".into()),
            extra_args: vec!["--repl-diskless-sync-delay".into(), "5".into()],
            ..LabOpts::default()
        },
    );
    for i in 0..6 {
        lab.cmd(i, &["CONFIG", "SET", "masterauth", "not-the-password"])
            .unwrap();
    }
    let own_timeout = node_timeout(&lab, 0);
    let addrs: Vec<String> = (0..6).map(|i| lab.at(i)).collect();
    let mut args = vec!["--timeout", "4", "create", "--replicas", "1"];
    args.extend(addrs.iter().map(String::as_str));
    let run = lab.run(&args);
    run.fails_with("waiting for every replica to be known and linked");
    for why in [
        "cluster-node-timeout 500 ms on 3 new node(s) until they report ok",
        "repl-diskless-sync-delay 0 s on 3 new node(s) until their replicas are linked",
        "cluster-node-timeout 500 ms on 3 new node(s) until every node sees them as replicas",
    ] {
        assert!(run.stderr.contains(why), "{why}: {}", run.stderr);
    }
    for i in 0..6 {
        assert_eq!(
            node_timeout(&lab, i),
            own_timeout,
            "node {i}'s node timeout"
        );
        assert_eq!(sync_delay(&lab, i), "5", "node {i}'s sync delay");
    }
}

fn node_timeout(lab: &TestLab, i: usize) -> String {
    lab.config_get(i, "cluster-node-timeout")
}
