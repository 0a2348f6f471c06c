//! Recovery after node failures: forget, failover, dead replicas, and the repairs of
//! `fix` that other commands point to (marks toward replicas, BUSYKEY after a cut
//! MIGRATE, node timeouts left short). Real servers; `redis-cli --cluster check` judges.

use crate::support::*;
use redis_trib::lab::LabOpts;

/// A lab whose nodes detect failures within about a second.
fn quick_lab(n: usize) -> TestLab {
    lab_with(
        n,
        LabOpts {
            node_timeout_ms: 1000,
            ..LabOpts::default()
        },
    )
}

/// Waits until node `seen_by` flags node id `id` as failed.
fn wait_flagged_fail(lab: &TestLab, seen_by: usize, id: &str) {
    poll(30, "the cluster to flag the killed node as failed", || {
        lab.nodes(seen_by)
            .iter()
            .any(|n| n.node_id == id && n.is_failed())
    });
}

fn node_timeout(lab: &TestLab, i: usize) -> String {
    lab.config_get(i, "cluster-node-timeout")
}

#[test]
fn forget_after_rescue_makes_the_cluster_whole_again() {
    let mut lab = quick_lab(5);
    lab.cluster(3);
    let dead = lab.id(2);
    lab.lab.kill(2).unwrap();
    wait_flagged_fail(&lab, 0, &dead);
    // Refused while the dead node owns slots, and for a live serving node.
    lab.run(&["forget", &lab.at(0), &dead[..10]])
        .fails_with("still owns slots");
    lab.run(&["forget", &lab.at(0), &lab.at(1)])
        .fails_with("is reachable and serves slots");
    lab.run(&["rescue", &lab.at(0), &lab.at(3)]).ok();
    // The dead master stays known: check names it and the way out.
    let red = lab.run(&["check", &lab.at(0)]);
    assert_ne!(red.code, 0);
    assert!(red.stdout.contains("redis-trib forget"), "{}", red.stdout);

    // A dead master without slots does not block other work: a warning.
    let moved = lab.run(&["reshard", &lab.at(0), "--to", &lab.at(1), "--slots", "10"]);
    moved.ok();
    assert!(
        moved.stderr.contains("warning: master without slots"),
        "{}",
        moved.stderr
    );

    let out = lab.run(&["forget", &lab.at(0), &dead[..10]]);
    out.ok();
    for i in [0, 1, 3] {
        assert!(
            lab.nodes(i).iter().all(|n| n.node_id != dead),
            "node {i} still knows the dead node"
        );
    }
    assert!(lab.run(&["check", &lab.at(0)]).ok().contains("[OK]"));
    lab.assert_redis_cli_check(0);
    // join and quit work again.
    let kv = lab.write_keys(0, "back", 200);
    lab.run(&["join", &lab.at(0), &lab.at(4)]).ok();
    lab.run(&["quit", &lab.at(4)]).ok();
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn a_dead_replica_does_not_block_quit_and_join() {
    let mut lab = quick_lab(5);
    lab.cluster(3);
    lab.run(&["replicate", &lab.at(0), &lab.at(3)]).ok();
    let kv = lab.write_keys(0, "dr", 300);
    let dead = lab.id(3);
    lab.lab.kill(3).unwrap();
    wait_flagged_fail(&lab, 1, &dead);
    let out = lab.run(&["quit", &lab.at(2)]);
    out.ok();
    assert!(
        out.stderr.contains("warning: replica") && out.stderr.contains("going on without it"),
        "{}",
        out.stderr
    );
    lab.run(&["join", &lab.at(1), &lab.at(4)]).ok();
    let moved = lab.run(&["reshard", &lab.at(1), "--to", &lab.at(4), "--slots", "10"]);
    moved.ok();
    assert!(
        moved.stderr.contains("warning: replica"),
        "{}",
        moved.stderr
    );
    lab.assert_keys(0, &kv);
    // A forgotten dead replica leaves a clean cluster.
    lab.run(&["forget", &lab.at(0), &dead]).ok();
    assert!(lab.run(&["check", &lab.at(0)]).ok().contains("[OK]"));
    lab.assert_redis_cli_check(0);
}

#[test]
fn failover_state_in_check_then_forced_failover_and_forget() {
    let mut lab = quick_lab(4);
    lab.cluster(3);
    lab.run(&["replicate", &lab.at(2), &lab.at(3)]).ok();
    // The replica must not promote itself: check is to see the state before.
    lab.cmd(3, &["CONFIG", "SET", "cluster-replica-no-failover", "yes"])
        .unwrap();
    let slots = lab.slots_of(2);
    let dead = lab.id(2);
    lab.lab.kill(2).unwrap();
    wait_flagged_fail(&lab, 0, &dead);
    let red = lab.run(&["check", &lab.at(0)]);
    assert_ne!(red.code, 0);
    assert!(
        red.stdout.contains("none of its replicas")
            && red
                .stdout
                .contains(&format!("failover {} --force", lab.at(3))),
        "{}",
        red.stdout
    );
    lab.run(&["failover", &lab.at(3)]).fails_with("use --force");
    lab.run(&["failover", &lab.at(3), "--force"]).ok();
    assert_eq!(lab.slots_of(3), slots);
    for i in [0, 1] {
        let n = lab.nodes(i);
        let r = n.iter().find(|n| n.addr() == lab.addr(3)).unwrap();
        assert!(r.is_master() && r.assigned_slots == slots, "node {i}");
    }
    let after = lab.run(&["check", &lab.at(0)]);
    assert!(after.stdout.contains("serves no slots"), "{}", after.stdout);
    lab.run(&["forget", &lab.at(0), &dead]).ok();
    assert!(lab.run(&["check", &lab.at(0)]).ok().contains("[OK]"));
    lab.assert_redis_cli_check(0);
}

#[test]
fn failover_of_a_replica_of_a_healthy_master() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["replicate", &lab.at(0), &lab.at(2)]).ok();
    let slots = lab.slots_of(0);
    // Planned in a dry run, nothing changed.
    let before = lab.snapshot();
    let dry = lab.run(&["--dry-run", "failover", &lab.at(2)]);
    assert!(dry.ok().contains("CLUSTER FAILOVER") || dry.stderr.contains("CLUSTER FAILOVER"));
    assert_eq!(lab.snapshot(), before);

    lab.run(&["failover", &lab.at(2)]).ok();
    for i in 0..3 {
        let n = lab.nodes(i);
        let new = n.iter().find(|n| n.addr() == lab.addr(2)).unwrap();
        assert!(new.is_master() && new.assigned_slots == slots, "node {i}");
        let old = n.iter().find(|n| n.addr() == lab.addr(0)).unwrap();
        assert!(!old.is_master(), "node {i} still sees the old master");
    }
    lab.assert_redis_cli_check(0);
    // Back again from a script.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("back.rhai");
    std::fs::write(&script, "failover(ARGS[0], #{ force: false });").unwrap();
    lab.run(&["run", script.to_str().unwrap(), &lab.at(0)]).ok();
    assert_eq!(lab.slots_of(0), slots);
    lab.assert_redis_cli_check(0);
}

#[test]
fn fix_clears_a_migrating_mark_toward_a_replica() {
    let lab = lab(2);
    lab.cluster(2);
    let tag = tag_for_slot(100);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 20);
    let (id0, id1) = (lab.id(0), lab.id(1));
    lab.cmd(0, &["CLUSTER", "SETSLOT", "100", "MIGRATING", &id1])
        .unwrap();
    // Node 1 gives its slots away and, as Redis 7 does, becomes node 0's replica;
    // node 0 keeps its mark toward it.
    let mut b = lab.backend();
    let topo = redis_trib::ops::topology(&mut b, &lab.addr(0)).unwrap();
    let (n0, n1) = (topo.node(&id0).unwrap(), topo.node(&id1).unwrap());
    let masters: Vec<_> = topo.masters().cloned().collect();
    use redis_trib::backend::Backend;
    b.move_slots(n1, n0, &n1.assigned_slots, &masters).unwrap();
    poll(10, "node 1 to become a replica", || {
        !lab.nodes(0)
            .iter()
            .find(|n| n.node_id == id1)
            .unwrap()
            .is_master()
    });
    lab.run(&["check", &lab.at(0)]).fails_with("problem(s)");
    let out = lab.run(&["fix", &lab.at(0)]);
    out.ok();
    assert!(
        out.stderr
            .contains("a replica (it cannot have received keys"),
        "{}",
        out.stderr
    );
    assert!(lab.nodes(0).iter().all(|n| n.slots_migrating.is_empty()));
    lab.assert_keys(0, &kv);
    // The former master, now a replica, learns the final slot map by gossip; on
    // Valkey 8+ a replica also carries its primary's markers until the primary's
    // replicated SETSLOT STABLE reaches it.
    let mut last = String::new();
    let agreed = (0..400).any(|_| {
        let check = lab.run(&["check", &lab.at(0)]);
        let clean = (0..2).all(|i| {
            lab.nodes(i)
                .iter()
                .filter(|n| n.is_myself())
                .all(|n| n.slots_migrating.is_empty() && n.slots_importing.is_empty())
        });
        let marks: Vec<String> = (0..2)
            .flat_map(|i| lab.nodes(i).into_iter().filter(|n| n.is_myself()))
            .map(|n| {
                format!(
                    "{} {:?} migrating {:?} importing {:?}",
                    n.addr(),
                    n.flags,
                    n.slots_migrating,
                    n.slots_importing
                )
            })
            .collect();
        last = format!("{}{}\n{}", check.stdout, check.stderr, marks.join("\n"));
        let done = check.code == 0 && clean;
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        done
    });
    assert!(
        agreed,
        "every node to agree within 20 s; the last check said:\n{last}"
    );
    lab.assert_redis_cli_check(0);
}

#[test]
fn fix_after_a_cut_migrate_compares_the_values() {
    let lab = lab(2);
    lab.cluster(2);
    let (id0, id1) = (lab.id(0), lab.id(1));
    let open = |slot: &str| {
        lab.cmd(1, &["CLUSTER", "SETSLOT", slot, "IMPORTING", &id0])
            .unwrap();
        lab.cmd(0, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &id1])
            .unwrap();
    };
    // Same value on both sides: finished without --replace.
    let tag = tag_for_slot(200);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 10);
    open("200");
    lab.asking_set(1, &kv[3].0, &kv[3].1);
    let out = lab.run(&["fix", &lab.at(0)]);
    out.ok();
    assert!(out.stderr.contains("with the same value"), "{}", out.stderr);
    assert!(lab.slots_of(1).contains(&200));
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);

    // Different values: --replace is asked for, naming the key and both nodes.
    let tag = tag_for_slot(300);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 10);
    open("300");
    lab.asking_set(1, &kv[5].0, "other");
    let refused = lab.run(&["fix", &lab.at(0)]);
    refused.fails_with(&format!(
        "key '{}' exists on both {} and {} with different values",
        kv[5].0,
        lab.at(0),
        lab.at(1)
    ));
    assert!(refused.stderr.contains("--replace"), "{}", refused.stderr);
    lab.run(&["fix", "--replace", &lab.at(0)]).ok();
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn check_reports_and_fix_repairs_a_short_node_timeout() {
    let lab = lab(3);
    lab.cluster(3);
    lab.cmd(2, &["CONFIG", "SET", "cluster-node-timeout", "500"])
        .unwrap();
    let out = lab.run(&["check", &lab.at(0)]);
    out.fails_with("1 problem(s)");
    assert!(
        out.stdout.contains(&format!(
            "{} has cluster-node-timeout 500 ms, the other nodes 3000 ms",
            lab.at(2)
        )),
        "{}",
        out.stdout
    );
    let fixed = lab.run(&["fix", &lab.at(0)]);
    fixed.ok();
    assert!(
        fixed
            .stderr
            .contains("cluster-node-timeout put back on 1 node(s)"),
        "{}",
        fixed.stderr
    );
    assert_eq!(node_timeout(&lab, 2), "3000");
    assert!(lab.run(&["check", &lab.at(0)]).ok().contains("[OK]"));
}

#[test]
fn ctrl_c_stops_fix_between_slots_and_says_what_is_left() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let lab = lab(2);
    lab.cluster(2);
    let (id0, id1) = (lab.id(0), lab.id(1));
    let open: Vec<u16> = (0..300).collect();
    let pipe_on = |i: usize, dir: &str, peer: &str| {
        let url = format!("redis://{}/", lab.at(i));
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut p = redis::pipe();
        for s in &open {
            p.cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(*s)
                .arg(dir)
                .arg(peer)
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    };
    pipe_on(1, "IMPORTING", &id0);
    pipe_on(0, "MIGRATING", &id1);
    let mut child = bin()
        .args(["fix", &lab.at(0)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut stderr = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("slot 3: finishing its move") {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
    }
    for line in lines {
        stderr.push_str(&line.unwrap());
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("fix interrupted: repaired ")
            && stderr.contains("open slot(s) (0-")
            && stderr.contains("those are as open as they were"),
        "{stderr}"
    );
    // Every slot is either finished or exactly as it was: none opened by fix.
    let (n0, n1) = (lab.nodes(0), lab.nodes(1));
    let me0 = n0.iter().find(|n| n.is_myself()).unwrap();
    let me1 = n1.iter().find(|n| n.is_myself()).unwrap();
    let mut left = 0;
    for s in &open {
        let migrating = me0.slots_migrating.iter().any(|(x, _)| x == s);
        let importing = me1.slots_importing.iter().any(|(x, _)| x == s);
        if me1.assigned_slots.contains(s) {
            assert!(
                !migrating && !importing,
                "slot {s} finished but still marked"
            );
        } else {
            assert!(migrating && importing, "slot {s} half-changed");
            left += 1;
        }
    }
    assert!(left > 0 && left < open.len(), "{left} slots left");
    lab.run(&["fix", &lab.at(0)]).ok();
    lab.assert_redis_cli_check(0);
}

/// A source told `SETSLOT NODE` for a slot whose destination never claims it (as a
/// destination whose claim lost to a higher config epoch leaves it, see
/// `engine::epochs`): the source names the destination, everyone else the source,
/// and no master claims the slot. `check` names it with `fix` as the remedy (not
/// `rescue`, which would need a free node); `fix` gives it back to the owner most
/// nodes name, and every key is still there.
#[test]
fn fix_gives_back_a_slot_no_master_claims() {
    let lab = lab(4);
    let a = lab.cluster(3).to_string();
    let d = lab.at(3);
    lab.run(&["join_no_load", &a, &d]).ok();
    let kv = lab.write_keys(0, "disowned", 2000);
    let src_slots = lab.slots_of(0);
    let slot = *src_slots
        .iter()
        .find(|s| {
            let n = lab
                .cmd(0, &["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()])
                .unwrap();
            redis::from_redis_value::<i64>(n).unwrap() == 0
        })
        .expect("an empty slot");
    let (src_id, dst_id) = (lab.id(0), lab.id(3));
    lab.cmd(
        0,
        &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &dst_id],
    )
    .unwrap();
    let out = lab.run(&["check", &a]);
    out.fails_with("problem(s)");
    assert!(
        out.stdout
            .contains("1 slots are claimed by no master while nodes name"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            ": {slot} (a claim that lost to a higher config epoch; run `redis-trib fix`)"
        )),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("rescue"), "{}", out.stdout);
    // rescue, which would start the slot empty on a free node, sends to fix.
    let free = lab_with(1, redis_trib::lab::LabOpts::default());
    let refused = lab.run(&["rescue", &a, &free.at(0)]);
    refused.fails_with(&format!(
        "slots {slot} are claimed by no master while nodes name their owner: run `redis-trib fix {a}`"
    ));
    assert_eq!(free.nodes(0).len(), 1, "the free node was left alone");
    let fixed = lab.run(&["fix", &a]);
    fixed.ok();
    assert!(
        fixed
            .stderr
            .contains("1 slot(s) no master claimed given back to their owner"),
        "{}",
        fixed.stderr
    );
    // Given back to the source, the owner most nodes named, in every node's view.
    for i in 0..4 {
        let owner = lab
            .nodes(i)
            .into_iter()
            .find(|n| n.assigned_slots.contains(&slot))
            .map(|n| n.node_id);
        assert_eq!(owner.as_deref(), Some(src_id.as_str()), "node {i}");
    }
    assert!(lab.run(&["check", &a]).ok().contains("[OK]"));
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(3);
}
