//! What differs between the servers of the matrix (Redis 7.0/8.2, Valkey 8.1/9.1;
//! `./dev test` runs these on each): Valkey 8+ replicates `CLUSTER SETSLOT` to a
//! master's replicas and blocks the client until they acknowledge, so slot moves
//! toward and from masters with replicas, and open slots on them, are the cases.

use crate::support::*;

/// The slots `i` serves, in its own view, as `A-B` ranges for `migrate_slots`.
fn ranges_of(lab: &TestLab, i: usize) -> Vec<String> {
    let slots = lab.slots_of(i);
    redis_trib::slots::format_ranges(&slots)
        .split(',')
        .map(|r| r.trim().to_string())
        .collect()
}

/// Nodes `0..3` masters with 5462/5461/5461 slots, node 3 a replica of node 1, and
/// `n` keys written through the cluster.
fn three_masters_one_with_a_replica(n: usize) -> (TestLab, Vec<(String, String)>) {
    let lab = lab(4);
    lab.cluster(3);
    lab.run(&["replicate", &lab.at(1), &lab.at(3)]).ok();
    let kv = lab.write_keys(0, "srv", n);
    (lab, kv)
}

/// `check` and `fix` find nothing to do, and redis-cli agrees.
fn assert_clean(lab: &TestLab, entry: usize) {
    let check = lab.run(&["check", &lab.at(entry)]);
    assert!(check.ok().contains("[OK]"), "{}", check.stdout);
    lab.run(&["fix", &lab.at(entry)]).ok();
    lab.assert_redis_cli_check(entry);
}

#[test]
fn slots_with_keys_move_to_and_from_a_master_with_a_replica() {
    let (lab, kv) = three_masters_one_with_a_replica(1500);

    // Toward the master with a replica: its claim must not crash it (Valkey 8+).
    lab.run(&["migrate_slots", &lab.at(0), &lab.at(1), "0-999"])
        .ok();
    assert!(lab.slots_of(1).contains(&0) && lab.slots_of(1).contains(&999));
    // In parallel moves too (reshard: from both other masters at once).
    lab.run(&["reshard", &lab.at(0), "--to", &lab.at(1), "--slots", "600"])
        .ok();
    assert_eq!(lab.slots_of(1).len(), 5461 + 1000 + 600);
    lab.assert_keys(0, &kv);
    assert_clean(&lab, 0);
    // The replica follows: it knows its master's new slots and holds its keys.
    poll(10, "the replica to hold every key of its master", || {
        let dbsize = |i| redis::from_redis_value::<i64>(lab.cmd(i, &["DBSIZE"]).unwrap()).unwrap();
        dbsize(3) == dbsize(1)
    });
    assert_eq!(lab.total_keys(0), kv.len() as i64);

    // From the master with a replica, back to node 0.
    lab.run(&["migrate_slots", &lab.at(1), &lab.at(0), "0-499"])
        .ok();
    assert!(lab.slots_of(0).contains(&0));
    lab.assert_keys(0, &kv);
    assert_clean(&lab, 3);
}

#[test]
fn a_master_with_a_replica_gives_away_its_last_slots() {
    let (lab, kv) = three_masters_one_with_a_replica(1000);
    // Its last SETSLOT may be waiting for its replica when it becomes a replica of
    // the destination (Valkey answers -UNBLOCKED or closes the connection).
    let mut args = vec!["migrate_slots".to_string(), lab.at(1), lab.at(2)];
    args.extend(ranges_of(&lab, 1));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.run(&args).ok();
    assert!(lab.slots_of(1).is_empty());
    assert_eq!(lab.slots_of(2).len(), 5461 * 2);
    poll(15, "the emptied master to become a replica", || {
        lab.nodes(1).iter().any(|n| n.is_myself() && !n.is_master())
    });
    lab.assert_keys(0, &kv);
    // Node 0 may still count the new replica as a master for a moment.
    poll(10, "every key counted once, on masters", || {
        lab.total_keys(0) == kv.len() as i64
    });
    assert_clean(&lab, 0);
}

#[test]
fn fix_finishes_a_slot_open_toward_a_master_with_a_replica() {
    let (lab, _) = three_masters_one_with_a_replica(0);
    // Slot 42 (node 0's) half-moved to node 1, with keys still on node 0.
    let tag = tag_for_slot(42);
    let mut conn = lab.cluster_conn(0);
    let keys: Vec<String> = (0..50).map(|i| format!("{{{tag}}}:{i}")).collect();
    for k in &keys {
        let _: () = redis::Commands::set(&mut conn, k, "v").unwrap();
    }
    let (src, dst) = (lab.id(0), lab.id(1));
    lab.cmd(1, &["CLUSTER", "SETSLOT", "42", "IMPORTING", &src])
        .unwrap();
    lab.cmd(0, &["CLUSTER", "SETSLOT", "42", "MIGRATING", &dst])
        .unwrap();
    // Valkey 8+ copies the markers to the replica: they follow their master and are
    // not open slots of their own.
    let out = lab.run(&["check", &lab.at(0)]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    for line in out.stdout.lines().filter(|l| l.contains("is open")) {
        assert!(!line.contains(&lab.at(3)), "a replica's marker: {line}");
    }
    lab.run(&["fix", &lab.at(0)]).ok();
    assert!(lab.slots_of(1).contains(&42));
    let on_dst: i64 =
        redis::from_redis_value(lab.cmd(1, &["CLUSTER", "COUNTKEYSINSLOT", "42"]).unwrap())
            .unwrap();
    assert_eq!(on_dst, keys.len() as i64);
    assert_clean(&lab, 3);
}
