//! Running alongside others: the operation lease (one changing operation per cluster
//! at a time), the engine's re-check before each batch, and a stalled destination
//! bounded by --timeout. Real nodes, real processes.

use crate::support::*;
use redis_trib::addr::Addr;
use redis_trib::backend::Backend;
use redis_trib::error::{kind_of, Kind};
use redis_trib::lease::{Lease, PREFIX};
use std::process::{Child, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Names of the lease clients node `i` has.
fn lease_clients(lab: &TestLab, i: usize) -> Vec<String> {
    text(lab.cmd(i, &["CLIENT", "LIST"]).unwrap())
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("name=")))
        .filter(|n| n.starts_with(PREFIX))
        .map(String::from)
        .collect()
}

/// A `redis-trib run` of `script` in the background (it takes the lease with its
/// first operation).
fn background_script(lab: &TestLab, script: &str, args: &[String]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holder.rhai");
    std::fs::write(&path, script).unwrap();
    let mut cmd = bin();
    cmd.arg("run").arg(&path).args(args).args(lab.tls_flags());
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, dir)
}

/// Polls until node `i` shows a held lease.
fn wait_for_holder(lab: &TestLab, i: usize) {
    poll(20, "a held lease", || {
        lease_clients(lab, i).iter().any(|n| n.contains(":held:"))
    });
}

#[test]
fn two_contenders_never_both_hold_the_lease() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let lab = lab(3);
    lab.cluster(3);
    let nodes: Vec<Addr> = (0..3).map(|i| lab.addr(i)).collect();
    let opts = lab.conn_opts();
    let holding = AtomicUsize::new(0);
    // Rounds in which a contender had to wait for the other's hold: proof that the
    // two really raced.
    let waited = AtomicUsize::new(0);
    let rounds = 100;
    for _ in 0..rounds {
        let start = Arc::new(Barrier::new(2));
        let results: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let (start, nodes, opts, holding, waited) =
                        (start.clone(), &nodes, &opts, &holding, &waited);
                    s.spawn(move || {
                        start.wait();
                        let began = std::time::Instant::now();
                        let lease = match Lease::acquire(opts, "race", nodes, Duration::ZERO) {
                            Ok(lease) => lease,
                            Err(e) => {
                                // Refused because the other one holds it; anything
                                // else is a failure of the lease itself.
                                assert!(
                                    matches!(kind_of(&e), Some(Kind::LeaseHeld { .. })),
                                    "{e:#}"
                                );
                                return false;
                            }
                        };
                        if began.elapsed() >= Duration::from_millis(30) {
                            waited.fetch_add(1, Ordering::SeqCst);
                        }
                        // Held for a while: a second holder would overlap.
                        assert_eq!(
                            holding.fetch_add(1, Ordering::SeqCst),
                            0,
                            "two contenders hold the lease at once"
                        );
                        std::thread::sleep(Duration::from_millis(30));
                        holding.fetch_sub(1, Ordering::SeqCst);
                        drop(lease);
                        true
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Contenders that saw each other back off and retry: one wins, the other
        // finds it held and is refused (or wins after it is released).
        assert!(results.iter().any(|&w| w), "a round had no winner");
    }
    assert!(
        waited.load(Ordering::SeqCst) > 0,
        "no contender ever had to wait for the other: the race never happened"
    );
    // Released leases leave nothing behind.
    poll(10, "lease clients gone", || {
        (0..3).all(|i| lease_clients(&lab, i).is_empty())
    });
}

#[test]
fn a_held_lease_refuses_others_names_the_holder_and_lets_readers_and_dry_runs_through() {
    let lab = lab(4);
    let a = lab.cluster(3).to_string();
    let d = lab.at(3);
    lab.run(&["join_no_load", &a, &d]).ok();
    let (mut holder, _dir) = background_script(
        &lab,
        "migrate_slots(ARGS[0], ARGS[1], [0]); sleep(60000);",
        &[a.clone(), d.clone()],
    );
    wait_for_holder(&lab, 0);
    // The holder's own move is done (it then sleeps, still holding the lease).
    poll(20, "the holder's migration", || lab.slots_of(3) == vec![0]);
    let refused = lab.run(&["reshard", &a, "--to", &d, "--slots", "10"]);
    refused.fails_with("the cluster is busy");
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("pid {}", holder.id()))
            && refused.stderr.contains("--wait-lease")
            && refused.stderr.contains("migrate_slots"),
        "{}",
        refused.stderr
    );
    // Nothing was changed by the refused command.
    assert_eq!(lab.slots_of(3), vec![0]);
    // Readers and dry runs take no lease.
    lab.run(&["check", &a]).ok();
    lab.run(&["list", &a]).ok();
    lab.run(&["--dry-run", "reshard", &a, "--to", &d, "--slots", "10"])
        .ok();
    // A SIGKILLed holder blocks nothing: the nodes drop its connections at once.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let started = Instant::now();
    lab.run(&["fix", &a]).ok();
    lab.run(&["reshard", &a, "--to", &d, "--slots", "10"]).ok();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(lab.slots_of(3).len(), 11);
    lab.assert_redis_cli_check(0);
}

#[test]
fn wait_lease_waits_for_the_holder_to_finish() {
    let lab = lab(4);
    let a = lab.cluster(3).to_string();
    let d = lab.at(3);
    lab.run(&["join_no_load", &a, &d]).ok();
    let (mut holder, _dir) = background_script(
        &lab,
        "migrate_slots(ARGS[0], ARGS[1], [0]); sleep(1500);",
        &[a.clone(), d.clone()],
    );
    wait_for_holder(&lab, 0);
    lab.run(&["--wait-lease", "30", "migrate_slots", &a, &d, "1"])
        .ok();
    assert!(holder.wait().unwrap().success());
    assert_eq!(lab.slots_of(3), vec![0, 1]);
    lab.assert_redis_cli_check(0);
}

/// Starts both commands at once; returns their runs.
fn race(one: &[&str], two: &[&str]) -> Vec<Run> {
    let spawn = |args: &[&str]| {
        let mut cmd = bin();
        cmd.args(args);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(one), spawn(two));
    [a, b]
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect()
}

/// At least one of two racing commands succeeded, and the other either succeeded
/// after it or was refused for one of `reasons` (never half-way).
fn one_won(runs: &[Run], reasons: &[&str]) {
    let texts: Vec<&str> = runs.iter().map(|r| r.stderr.as_str()).collect();
    assert!(
        runs.iter().any(|r| r.code == 0),
        "neither succeeded: {texts:?}"
    );
    for r in runs.iter().filter(|r| r.code != 0) {
        assert!(
            reasons.iter().any(|why| r.stderr.contains(why)),
            "refused for another reason: {texts:?}"
        );
        if r.stderr.contains("the cluster is busy") {
            assert_eq!(r.code, 4, "{}", r.stderr);
            assert!(
                r.stderr.contains("pid "),
                "the holder is named: {}",
                r.stderr
            );
        }
    }
}

#[test]
fn concurrent_changes_to_one_cluster_lose_no_key() {
    let lab = lab(7);
    let a = lab.cluster(3).to_string();
    let b = lab.at(1);
    let (d, e, f1, f2) = (lab.at(3), lab.at(4), lab.at(5), lab.at(6));
    lab.run(&["join_no_load", &a, &d]).ok();
    lab.run(&["join_no_load", &a, &e]).ok();
    let kv = lab.write_keys(0, "race", 6000);
    // The same slots to two destinations at once (slots 0-2999 are node 0's).
    let runs = race(
        &["migrate_slots", &a, &d, "0-2999"],
        &["migrate_slots", &a, &e, "0-2999"],
    );
    let busy = "the cluster is busy";
    one_won(&runs, &[busy, "does not serve", "does not hold"]);
    assert_eq!(
        runs.iter().filter(|r| r.code == 0).count(),
        1,
        "the slots can only move once"
    );
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
    // Two joins through two different entry nodes.
    let runs = race(&["join", &a, &f1], &["join", &b, &f2]);
    one_won(&runs, &[busy]);
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
    // Two reshards from the same source to two destinations.
    let from = lab.id(0);
    let runs = race(
        &["reshard", &a, "--from", &from, "--to", &d, "--slots", "500"],
        &["reshard", &a, "--from", &from, "--to", &e, "--slots", "500"],
    );
    one_won(&runs, &[busy, "hold"]);
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn a_slot_opened_by_someone_else_mid_move_stops_the_move_cleanly() {
    let lab = lab(5);
    let a = lab.cluster(3);
    let (d, e) = (lab.addr(3), lab.addr(4));
    lab.run(&["join_no_load", &a.to_string(), &d.to_string()])
        .ok();
    lab.run(&["join_no_load", &a.to_string(), &e.to_string()])
        .ok();
    let kv = lab.write_keys(0, "other", 2000);
    let table = lab.table();
    let (src, dst) = (table.of(0), table.of(3));
    let masters = table.masters();
    // Someone else (redis-cli, a person) opens slot 300 toward node 4.
    let e_id = lab.id(4);
    let a_id = lab.id(0);
    lab.cmd(4, &["CLUSTER", "SETSLOT", "300", "IMPORTING", &a_id])
        .unwrap();
    lab.cmd(0, &["CLUSTER", "SETSLOT", "300", "MIGRATING", &e_id])
        .unwrap();
    let mut b = redis_trib::backend::live::Live::new(
        lab.conn_opts(),
        redis_trib::engine::keys::MigrateOpts {
            batch_slots: 256,
            ..Default::default()
        },
        Box::new(|_| {}),
    );
    let slots: Vec<u16> = (0..600).collect();
    let err = b.move_slots(&src, &dst, &slots, &masters).unwrap_err();
    assert!(matches!(kind_of(&err), Some(Kind::Conflict(_))), "{err:#}");
    let text = format!("{err:#}");
    assert!(
        text.contains("slot 300") && text.contains("256 of 600"),
        "{text}"
    );
    // The first batch moved, the rest was not touched, only the other tool's marks
    // are open.
    assert_eq!(lab.slots_of(3), (0..256).collect::<Vec<u16>>());
    let me = lab.nodes(0).into_iter().find(|n| n.is_myself()).unwrap();
    assert_eq!(me.slots_migrating, vec![(300, e_id.clone())]);
    assert!(lab
        .nodes(3)
        .into_iter()
        .find(|n| n.is_myself())
        .unwrap()
        .slots_importing
        .is_empty());
    // The other tool's half-done migration is `fix`'s to finish.
    lab.run(&["fix", &a.to_string()]).ok();
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn a_destination_that_stops_answering_mid_migration_is_bounded_by_timeout() {
    let lab = lab(4);
    let a = lab.cluster(3).to_string();
    let d = lab.at(3);
    lab.run(&["join_no_load", &a, &d]).ok();
    let kv = lab.write_keys(0, "stall", 20000);
    let d_pid = lab.lab.nodes[3].pid;
    // Freeze the destination as soon as the source starts migrating.
    let watcher = {
        let src = lab.addr(0);
        std::thread::spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                let nodes = text(raw(&src, None, &["CLUSTER", "NODES"]).unwrap());
                if nodes.contains("->-") {
                    unsafe { libc::kill(d_pid as i32, libc::SIGSTOP) };
                    return true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            false
        })
    };
    let started = Instant::now();
    let run = lab.run(&[
        "--engine",
        "keys",
        "--timeout",
        "3",
        "--batch-slots",
        "2048",
        "migrate_slots",
        &a,
        &d,
        "0-4095",
    ]);
    let took = started.elapsed();
    let frozen = watcher.join().unwrap();
    unsafe { libc::kill(d_pid as i32, libc::SIGCONT) };
    assert!(frozen, "the migration never started");
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("timed out") && run.stderr.contains(&format!("{d} timed out")),
        "the error must name the node that stopped answering: {}",
        run.stderr
    );
    // Bounded: a handful of --timeout waits, not minutes.
    eprintln!("the stalled migration ended after {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Once the node answers again, fix finishes the job and nothing is lost.
    poll(20, "the destination to answer", || {
        lab.cmd(3, &["PING"]).is_ok()
    });
    // A stall past the node timeout gets it flagged failing; fix refuses to finish a
    // move toward a master flagged so (rightly), and Redis clears the flag once the
    // node has answered for a while.
    let d_id = lab.id(3);
    poll(30, "the destination's failure flag to clear", || {
        lab.nodes(0)
            .iter()
            .any(|n| n.node_id == d_id && !n.is_failed() && !n.is_suspected())
    });
    lab.run(&["fix", &a]).ok();
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn ctrl_c_mid_migration_stops_between_batches_with_nothing_left_open() {
    let lab = lab(4);
    let a = lab.cluster(3).to_string();
    let d = lab.at(3);
    lab.run(&["join_no_load", &a, &d]).ok();
    let kv = lab.write_keys(0, "sigint", 20000);
    let mut cmd = bin();
    // The key-by-key engine's batches are what this is about (the atomic engine's
    // cancel on Ctrl-C is tested in `atomic`).
    cmd.args([
        "--engine",
        "keys",
        "--batch-slots",
        "16",
        "--keys-per-migrate",
        "10",
        "migrate_slots",
        &a,
        &d,
        "0-5000",
    ]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    poll(30, "the migration to start", || !lab.slots_of(3).is_empty());
    unsafe { libc::kill(pid, libc::SIGINT) };
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        run.stderr.contains("interrupted") && !run.stderr.contains("os error 4"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no slot is left open"),
        "{}",
        run.stderr
    );
    for i in 0..4 {
        let me = lab.nodes(i).into_iter().find(|n| n.is_myself()).unwrap();
        assert!(
            me.slots_migrating.is_empty() && me.slots_importing.is_empty(),
            "node {i} has an open slot"
        );
    }
    let moved = lab.slots_of(3).len();
    assert!(moved > 0 && moved < 5001, "moved {moved}");
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn ctrl_c_mid_import_stops_between_batches_and_loses_no_key() {
    let lab = lab(3);
    let a = lab.cluster(3).to_string();
    let source = standalone(None);
    let total = 200_000usize;
    let mut conn = redis::Client::open(format!("redis://{}/", source.at(0)))
        .unwrap()
        .get_connection()
        .unwrap();
    for start in (0..total).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..start + 10_000 {
            pipe.cmd("SET").arg(format!("imp:{i}")).arg(i).ignore();
        }
        let _: () = pipe.query(&mut conn).unwrap();
    }
    let mut cmd = bin();
    cmd.args(["import", &a, "--from", &source.at(0)]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let dbsize = |lab: &TestLab| -> usize {
        redis::from_redis_value::<usize>(lab.cmd(0, &["DBSIZE"]).unwrap()).unwrap()
    };
    poll(30, "the import to start", || dbsize(&source) < total);
    unsafe { libc::kill(pid, libc::SIGINT) };
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        run.stderr.contains("interrupted") && !run.stderr.contains("os error 4"),
        "{}",
        run.stderr
    );
    // Every key is on one side or the other, none on both, none lost.
    let left = dbsize(&source);
    let moved = lab.total_keys(0) as usize;
    assert!(left > 0, "the import finished before the interrupt");
    assert_eq!(left + moved, total, "keys lost or duplicated");
    // Running it again finishes the job.
    lab.run(&["import", &a, "--from", &source.at(0)]).ok();
    assert_eq!(lab.total_keys(0) as usize, total);
    lab.assert_redis_cli_check(0);
}
