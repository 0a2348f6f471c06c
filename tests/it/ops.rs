//! The classic commands' happy paths on real clusters: slot layout, keys kept,
//! and `redis-cli --cluster check` agreeing.

use crate::support::*;
use redis_trib::lab::LabOpts;

fn slot_counts(lab: &TestLab, nodes: &[usize]) -> Vec<usize> {
    nodes.iter().map(|&i| lab.slots_of(i).len()).collect()
}

#[test]
fn start_gives_one_node_every_slot() {
    let lab = lab(1);
    lab.run(&["start", &lab.at(0)]).ok();
    assert_eq!(lab.slots_of(0).len(), 16384);
    assert_eq!(lab.info(0)["cluster_state"], "ok");
    lab.assert_redis_cli_check(0);
}

#[test]
fn start_sends_addslots_in_chunks_of_max_slots() {
    let lab = lab(1);
    lab.cmd(0, &["CONFIG", "RESETSTAT"]).unwrap();
    lab.run(&["start", &lab.at(0), "--max-slots", "7000"]).ok();
    assert_eq!(lab.slots_of(0).len(), 16384);
    let stats = text(lab.cmd(0, &["INFO", "commandstats"]).unwrap());
    let line = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_cluster|addslots:"))
        .expect("addslots stats");
    assert!(
        line.contains("calls=3,"),
        "16384 slots in chunks of 7000 is 3 calls: {line}"
    );
}

#[test]
fn start_multi_splits_slots_in_order() {
    let lab = lab(5);
    lab.run(&["start_multi", &lab.at(0), &lab.at(1)]).ok();
    assert_eq!(slot_counts(&lab, &[0, 1]), vec![8192, 8192]);
    assert_eq!(lab.slots_of(0)[0], 0);
    lab.assert_redis_cli_check(0);

    // Three nodes, one given twice (once spelled localhost): duplicates count once.
    let dup = format!("localhost:{}", lab.addr(3).port);
    lab.run(&[
        "start-multi",
        &lab.at(2),
        &lab.at(3),
        &dup,
        &lab.at(4),
        &lab.at(2),
    ])
    .ok();
    assert_eq!(slot_counts(&lab, &[2, 3, 4]), vec![5462, 5461, 5461]);
    assert_eq!(lab.nodes(2).len(), 3);
    lab.assert_redis_cli_check(2);
}

#[test]
fn start_multi_works_again_right_after_quit_and_shutdown() {
    let lab = lab(3);
    lab.cluster(3);
    lab.run(&["quit", &lab.at(2)]).ok();
    lab.run(&["quit", &lab.at(1)]).ok();
    lab.run(&["shutdown", &lab.at(0)]).ok();
    for i in 0..3 {
        assert_eq!(lab.nodes(i).len(), 1, "node {i} is free again");
        assert!(lab.slots_of(i).is_empty());
    }
    // Within FORGET's 60 s blacklist: every pair must be met explicitly.
    lab.run(&["start_multi", &lab.at(0), &lab.at(1), &lab.at(2)])
        .ok();
    assert_eq!(slot_counts(&lab, &[0, 1, 2]), vec![5462, 5461, 5461]);
    lab.assert_redis_cli_check(1);
}

#[test]
fn join_moves_a_fair_share_and_keeps_keys() {
    let lab = lab(3);
    lab.cluster(2);
    let kv = lab.write_keys(0, "join", 3000);
    lab.run(&["join", &lab.at(0), &lab.at(2)]).ok();
    // 8192/8192/0 -> the newcomer gets 2730 + 2731; one old master keeps the extra slot.
    assert_eq!(lab.slots_of(2).len(), 5461);
    let mut old = slot_counts(&lab, &[0, 1]);
    old.sort();
    assert_eq!(old, vec![5461, 5462]);
    lab.assert_keys(0, &kv);
    assert_eq!(lab.total_keys(0), 3000);
    lab.assert_redis_cli_check(2);

    // Then migrate a single slot and a list of slots and ranges back.
    let slot = lab.slots_of(2)[0].to_string();
    let out = lab.run(&["migrate_slots", &lab.at(2), &lab.at(0), &slot]);
    out.ok();
    assert!(lab.slots_of(0).contains(&slot.parse().unwrap()));
    let s = lab.slots_of(2);
    let list = format!("{} {}-{}", s[0], s[10], s[20]);
    lab.run(&["migrate-slots", &lab.at(2), &lab.at(1), &list])
        .ok();
    let on1 = lab.slots_of(1);
    assert!(on1.contains(&s[0]) && (s[10]..=s[20]).all(|x| on1.contains(&x)));
    assert_eq!(
        lab.slots_of(2).len(),
        5461 - 1 - 1 - (s[20] - s[10] + 1) as usize
    );
    assert_eq!(lab.total_keys(0), 3000);
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn join_no_load_then_migrate_slot_zero_with_hash_tagged_keys() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["join_no_load", &lab.at(0), &lab.at(2)]).ok();
    assert!(lab.slots_of(2).is_empty());
    assert_eq!(lab.nodes(2).len(), 3);
    let tag = tag_for_slot(0);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 1200);
    let moved = lab.run(&["migrate_slots", &lab.at(0), &lab.at(2), "0"]);
    moved.ok();
    assert!(
        moved.stderr.contains("moved 1 slots and 1200 keys"),
        "{}",
        moved.stderr
    );
    assert_eq!(lab.slots_of(2), vec![0]);
    let dbsize: i64 = redis::from_redis_value(lab.cmd(2, &["DBSIZE"]).unwrap()).unwrap();
    assert_eq!(dbsize, 1200);
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn quit_moves_slots_and_keys_away() {
    let lab = lab(3);
    lab.cluster(3);
    let kv = lab.write_keys(0, "quit", 2000);
    let gone = lab.id(1);
    lab.run(&["quit", &lab.at(1)]).ok();
    assert_eq!(lab.nodes(1).len(), 1, "the quitter is reset");
    assert_ne!(lab.id(1), gone, "a hard reset gives a new id");
    for i in [0, 2] {
        assert!(
            lab.nodes(i).iter().all(|n| n.node_id != gone),
            "node {i} forgot the quitter"
        );
    }
    assert_eq!(lab.slots_of(0).len() + lab.slots_of(2).len(), 16384);
    assert_eq!(lab.total_keys(0), 2000);
    lab.assert_keys(2, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn shutdown_refuses_while_keys_remain_then_dissolves() {
    let lab = lab(1);
    lab.run(&["start", &lab.at(0)]).ok();
    let kv = lab.write_keys(0, "keep", 10);
    lab.run(&["shutdown", &lab.at(0)])
        .fails_with("still holds 10 keys");
    assert_eq!(lab.slots_of(0).len(), 16384);
    lab.assert_keys(0, &kv);
    lab.cmd(0, &["FLUSHALL"]).unwrap();
    lab.run(&["shutdown", &lab.at(0)]).ok();
    assert!(lab.slots_of(0).is_empty());
    assert_eq!(lab.info(0)["cluster_state"], "fail");
}

#[test]
fn fix_finishes_a_manual_importing() {
    let lab = lab(2);
    lab.cluster(2);
    let tag = tag_for_slot(100);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 50);
    let owner = lab.id(0);
    lab.cmd(1, &["CLUSTER", "SETSLOT", "100", "IMPORTING", &owner])
        .unwrap();
    let out = lab.run(&["fix", &lab.at(1)]);
    out.ok();
    assert!(
        out.stderr.contains("1 open slot(s) repaired"),
        "{}",
        out.stderr
    );
    assert!(
        lab.slots_of(1).contains(&100),
        "the migration the marker described is finished"
    );
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn fix_finishes_a_manual_migrating_with_keys_half_moved() {
    let lab = lab(2);
    lab.cluster(2);
    let tag = tag_for_slot(200);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 40);
    let (src, dst) = (lab.id(0), lab.id(1));
    lab.cmd(1, &["CLUSTER", "SETSLOT", "200", "IMPORTING", &src])
        .unwrap();
    lab.cmd(0, &["CLUSTER", "SETSLOT", "200", "MIGRATING", &dst])
        .unwrap();
    // Move half the keys by hand, as an interrupted migration would have.
    let port = lab.addr(1).port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    let half: Vec<&str> = kv[..20].iter().map(|(k, _)| k.as_str()).collect();
    args.extend(half);
    lab.cmd(0, &args).unwrap();
    lab.run(&["fix", &lab.at(0)]).ok();
    assert!(lab.slots_of(1).contains(&200));
    assert!(!lab.slots_of(0).contains(&200));
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(1);
}

#[test]
fn replicate_then_quit_replica_and_master() {
    let lab = lab(4);
    lab.cluster(2);
    let kv = lab.write_keys(0, "rep", 500);
    let out = lab.run(&["replicate", &lab.at(0), &lab.at(2)]);
    out.ok();
    // The new replica announced itself with a short timeout, then got its own back.
    assert!(
        out.stderr.contains(
            "cluster-node-timeout 500 ms on 1 new node(s) until every node sees it as a replica"
        ),
        "{}",
        out.stderr
    );
    let timeout: Vec<String> = redis::from_redis_value(
        lab.cmd(2, &["CONFIG", "GET", "cluster-node-timeout"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(timeout[1], "3000");
    let master = lab.id(0);
    let me = lab.nodes(2).into_iter().find(|n| n.is_myself()).unwrap();
    assert!(!me.is_master());
    assert_eq!(me.master_id.as_deref(), Some(master.as_str()));
    // Given a replica as MASTER, the new node replicates that replica's master.
    lab.run(&["replicate", &lab.at(2), &lab.at(3)]).ok();
    let me = lab.nodes(3).into_iter().find(|n| n.is_myself()).unwrap();
    assert_eq!(me.master_id.as_deref(), Some(master.as_str()));
    lab.assert_redis_cli_check(0);
    let listed = lab.run(&["list", &lab.at(1)]);
    assert_eq!(
        listed
            .ok()
            .lines()
            .filter(|l| l.trim_start().starts_with("S "))
            .count(),
        2
    );

    lab.run(&["quit", &lab.at(0)])
        .fails_with("still has replicas");
    lab.run(&["quit", &lab.at(2)]).ok();
    lab.run(&["quit", &lab.at(3)]).ok();
    lab.run(&["quit", &lab.at(0)]).ok();
    assert_eq!(lab.slots_of(1).len(), 16384);
    assert_eq!(lab.total_keys(1), 500);
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(1);
}

#[test]
fn rescue_after_a_master_is_killed() {
    let mut lab = lab_with(
        4,
        LabOpts {
            node_timeout_ms: 1000,
            ..LabOpts::default()
        },
    );
    lab.cluster(3);
    let dead = lab.id(2);
    let dead_slots = lab.slots_of(2);
    lab.lab.kill(2).unwrap();
    poll(
        30,
        "the cluster to flag the killed master as failed",
        || {
            lab.nodes(0)
                .iter()
                .any(|n| n.node_id == dead && n.is_failed())
                && lab.info(0)["cluster_state"] == "fail"
        },
    );
    lab.run(&["rescue", &lab.at(0), &lab.at(3)]).ok();
    assert_eq!(lab.slots_of(3), dead_slots);
    for i in [0, 1, 3] {
        assert_eq!(lab.info(i)["cluster_state"], "ok", "node {i} serves again");
    }
    let kv = lab.write_keys(0, "after", 200);
    lab.assert_keys(1, &kv);
}

#[test]
fn auth_everywhere_with_requirepass() {
    let lab = lab_with(
        3,
        LabOpts {
            password: Some("s3cret".into()),
            ..LabOpts::default()
        },
    );
    // Without the password, a clear error.
    let mut no_auth = bin();
    no_auth.args(["start", &lab.at(0)]);
    Run::from(no_auth.output().unwrap()).fails_with("authentication failed");
    // With it (REDISCLI_AUTH), the whole life cycle, MIGRATE carrying AUTH.
    lab.run(&["start_multi", &lab.at(0), &lab.at(1)]).ok();
    let kv = lab.write_keys(0, "auth", 500);
    lab.run(&["join", &lab.at(0), &lab.at(2)]).ok();
    assert_eq!(slot_counts(&lab, &[0, 1, 2]).iter().sum::<usize>(), 16384);
    assert_eq!(lab.slots_of(2).len(), 5461);
    lab.assert_keys(0, &kv);
    let mut flag = bin();
    flag.args(["--password", "s3cret", "quit", &lab.at(2)]);
    Run::from(flag.output().unwrap()).ok();
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn list_prints_masters_replicas_and_json() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["replicate", &lab.at(1), &lab.at(2)]).ok();
    let text = lab.run(&["list", &lab.at(0)]).ok().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // Masters in address order, each followed by its replicas.
    let m = lines.iter().position(|l| l.contains(&lab.at(1))).unwrap();
    assert!(
        lines[m].starts_with("M ") && lines[m].contains("8192 slots"),
        "{text}"
    );
    assert!(
        lines[m + 1].trim_start().starts_with("S ") && lines[m + 1].contains(&lab.at(2)),
        "{text}"
    );
    let masters = lab
        .run(&["list", &lab.at(0), "--masters"])
        .ok()
        .lines()
        .count();
    assert_eq!(masters, 2);
    let json: serde_json::Value =
        serde_json::from_str(lab.run(&["list", &lab.at(0), "--json"]).ok()).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["role_in_cluster"], "master");
    let first = nodes
        .iter()
        .find(|n| n["node_id"] == serde_json::json!(lab.id(0)))
        .unwrap();
    assert_eq!(first["assigned_slots"], serde_json::json!(["0-8191"]));
    assert_eq!(nodes[2]["role_in_cluster"], "slave");
    assert_eq!(nodes[2]["master_id"], serde_json::json!(lab.id(1)));
}

#[test]
fn busykey_names_the_key_keeps_data_and_fix_replace_finishes() {
    let lab = lab(2);
    lab.cluster(2);
    let slot = lab.slots_of(0)[7];
    let tag = tag_for_slot(slot);
    let kv = lab.write_keys(0, &format!("{{{tag}}}"), 30);
    // Plant a conflicting copy of one key on the destination, as a half-done import
    // or an operator's mistake would.
    let clash = kv[3].0.clone();
    lab.plant_on(1, &clash, "stale");

    let out = lab.run(&["migrate_slots", &lab.at(0), &lab.at(1), &slot.to_string()]);
    out.fails_with(&format!("key '{clash}' already exists on {}", lab.at(1)));
    assert!(out.stderr.contains("left open"), "{}", out.stderr);
    // Nothing lost: every key still reads its own value (through ASK where moved).
    lab.assert_keys(0, &kv);
    // The two copies differ: fix asks for --replace instead of picking one.
    lab.run(&["fix", &lab.at(0)])
        .fails_with(&format!("key '{clash}' exists on both"));
    lab.run(&["fix", "--replace", &lab.at(0)]).ok();
    assert!(lab.slots_of(1).contains(&slot));
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(0);
}
