//! create, check, info, rebalance, reshard and --dry-run on real clusters.

use crate::support::*;

fn masters_of(lab: &TestLab, i: usize) -> Vec<redis_trib::topology::Node> {
    lab.nodes(i).into_iter().filter(|n| n.is_master()).collect()
}

/// The run announced this step.
fn assert_step(out: &Run, step: &str) {
    assert!(
        out.stderr.contains(step),
        "no step {step:?} in:\n{}",
        out.stderr
    );
}

/// Every node of `range` has this `cluster-node-timeout`.
fn assert_node_timeouts(lab: &TestLab, range: std::ops::Range<usize>, ms: &str) {
    for i in range {
        let reply = lab
            .cmd(i, &["CONFIG", "GET", "cluster-node-timeout"])
            .unwrap();
        let pair: Vec<String> = redis::from_redis_value(reply).unwrap();
        assert_eq!(pair[1], ms, "node {i}");
    }
}

#[test]
fn create_three_masters_and_with_replicas() {
    let lab = lab(9);
    let out = lab.run(&["create", &lab.at(0), &lab.at(1), &lab.at(2)]);
    out.ok();
    // The new masters' rejoin delay was shortened, and their own timeout is back.
    assert_step(
        &out,
        "cluster-node-timeout 500 ms on 3 new node(s) until they report ok",
    );
    assert_node_timeouts(&lab, 0..3, "3000");
    let counts: Vec<usize> = (0..3).map(|i| lab.slots_of(i).len()).collect();
    assert_eq!(counts, vec![5462, 5461, 5461]);
    lab.assert_redis_cli_check(0);

    let six: Vec<String> = (3..9).map(|i| lab.at(i)).collect();
    let mut args = vec!["create", "--replicas", "1"];
    args.extend(six.iter().map(String::as_str));
    let out = lab.run(&args);
    out.ok();
    for why in [
        "until they report ok",
        "until every node sees them as replicas",
    ] {
        assert!(
            out.stderr.contains(&format!(
                "cluster-node-timeout 500 ms on 3 new node(s) {why}"
            )),
            "{}",
            out.stderr
        );
    }
    assert_node_timeouts(&lab, 3..9, "3000");
    let masters = masters_of(&lab, 3);
    assert_eq!(masters.len(), 3);
    let replicas: Vec<_> = lab
        .nodes(3)
        .into_iter()
        .filter(|n| !n.is_master())
        .collect();
    assert_eq!(replicas.len(), 3);
    for m in &masters {
        assert_eq!(
            replicas
                .iter()
                .filter(|r| r.master_id.as_ref() == Some(&m.node_id))
                .count(),
            1
        );
    }
    // Every replica reports its link up (create waits for it).
    for i in 3..9 {
        let info = text(lab.cmd(i, &["INFO", "replication"]).unwrap());
        if info.contains("role:slave") {
            assert!(info.contains("master_link_status:up"), "{info}");
        }
    }
    lab.assert_redis_cli_check(5);
    // Too few nodes for 3 masters with a replica each.
    lab.run(&["create", "--replicas", "1", &lab.at(0), &lab.at(1)])
        .fails_with("at least 3 masters");
}

#[test]
fn check_finds_open_uncovered_and_disagreeing_slots() {
    let lab = lab(3);
    lab.cluster(3);
    let ok = lab.run(&["check", &lab.at(0)]);
    assert!(ok.ok().contains("[OK]"));
    assert!(!ok.stdout.contains("cluster-node-timeout"), "{}", ok.stdout);

    // A node whose timeout differs from the others' is a problem (`fix` puts it back).
    lab.cmd(2, &["CONFIG", "SET", "cluster-node-timeout", "5000"])
        .unwrap();
    let noted = lab.run(&["check", &lab.at(0)]);
    noted.fails_with("1 problem(s)");
    assert!(
        noted.stdout.contains(&format!(
            "{} has cluster-node-timeout 5000 ms, the other nodes 3000 ms",
            lab.at(2)
        )),
        "{}",
        noted.stdout
    );
    lab.cmd(2, &["CONFIG", "SET", "cluster-node-timeout", "3000"])
        .unwrap();

    // Open slot.
    let owner = lab.id(0);
    lab.cmd(1, &["CLUSTER", "SETSLOT", "42", "IMPORTING", &owner])
        .unwrap();
    let out = lab.run(&["check", &lab.at(0)]);
    out.fails_with("1 problem(s)");
    assert!(
        out.stdout
            .contains(&format!("slot 42 is open: {}", lab.at(1))),
        "{}",
        out.stdout
    );
    lab.cmd(1, &["CLUSTER", "SETSLOT", "42", "STABLE"]).unwrap();

    // Disagreement: node 2 alone believes slot 100 has no owner. The owner's next
    // ping gives it back (within a few hundred ms), so the disagreement is made again
    // until a check runs while it lasts.
    let mut last = String::new();
    poll(
        20,
        "check to report node 2's disagreement about slot 100",
        || {
            // Fails only when node 2 still has slot 100 unassigned from the last round.
            let _ = lab.cmd(2, &["CLUSTER", "DELSLOTS", "100"]);
            let out = lab.run(&["check", &lab.at(0)]);
            let caught = out.code != 0 && out.stdout.contains("disagree about slots 100");
            last = out.stdout;
            caught
        },
    );
    assert!(last.contains("disagree about slots 100"), "{last}");

    // Uncovered: nobody serves slot 100. The owner drops it first: from then on no
    // node claims it, so no gossip can bring it back to the others, which drop it
    // next (a node that had learned it back from the owner meanwhile drops it again).
    let owner_of_100 = (0..3)
        .find(|&i| lab.slots_of(i).contains(&100))
        .expect("some node owns slot 100");
    lab.cmd(owner_of_100, &["CLUSTER", "DELSLOTS", "100"])
        .unwrap();
    poll(10, "the slot to be uncovered everywhere", || {
        (0..3).all(|i| {
            let held = lab.nodes(i).iter().any(|n| n.assigned_slots.contains(&100));
            if held {
                let _ = lab.cmd(i, &["CLUSTER", "DELSLOTS", "100"]);
            }
            !held
        })
    });
    let out = lab.run(&["check", &lab.at(0), "--json"]);
    assert_ne!(out.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["healthy"], false);
    assert!(
        doc["problems"][0]
            .as_str()
            .unwrap()
            .contains("1 slots are not covered: 100"),
        "{doc}"
    );
}

#[test]
fn info_sums_keys_slots_and_replicas() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["replicate", &lab.at(0), &lab.at(2)]).ok();
    lab.write_keys(0, "info", 300);
    let doc: serde_json::Value =
        serde_json::from_str(lab.run(&["info", &lab.at(1), "--json"]).ok()).unwrap();
    assert_eq!(doc["total_keys"], 300);
    assert_eq!(doc["total_slots"], 16384);
    assert_eq!(doc["total_replicas"], 1);
    assert_eq!(doc["masters"].as_array().unwrap().len(), 2);
    let text = lab.run(&["info", &lab.at(1)]).ok().to_string();
    assert!(
        text.contains("total: 300 keys in 2 masters, 16384 slots, 1 replica(s)"),
        "{text}"
    );
}

#[test]
fn join_no_load_adds_several_nodes_in_one_wait_and_rebalance_fills_them() {
    let lab = lab(6);
    lab.cluster(3);
    let kv = lab.write_keys(0, "many", 1000);
    // One of the new nodes is not free: refused, and neither joins.
    let out = lab.run(&["join_no_load", &lab.at(0), &lab.at(3), &lab.at(1)]);
    out.fails_with("is already in a cluster");
    assert_eq!(lab.nodes(0).len(), 3, "nothing joined");
    let out = lab.run(&[
        "join_no_load",
        &lab.at(0),
        &lab.at(3),
        &lab.at(4),
        &lab.at(5),
    ]);
    out.ok();
    assert_step(
        &out,
        "cluster-node-timeout 500 ms on 3 new node(s) until they report ok",
    );
    assert_step(&out, "waiting for 3 nodes to know the 3 new nodes");
    assert_node_timeouts(&lab, 0..6, "3000");
    for i in 0..6 {
        assert_eq!(lab.nodes(i).len(), 6, "node {i} knows every node");
    }
    for i in 3..6 {
        assert!(lab.slots_of(i).is_empty(), "node {i} joined with no slots");
    }
    lab.assert_redis_cli_check(0);
    lab.run(&["rebalance", &lab.at(0), "--use-empty-masters"])
        .ok();
    for i in 0..6 {
        let n = lab.slots_of(i).len();
        assert!((2730..=2731).contains(&n), "node {i} has {n} slots");
    }
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn rebalance_with_empty_master_weights_and_dry_run() {
    let lab = lab(4);
    lab.cluster(3);
    let kv = lab.write_keys(0, "reb", 2000);
    let out = lab.run(&["join_no_load", &lab.at(0), &lab.at(3)]);
    out.ok();
    assert_step(
        &out,
        "cluster-node-timeout 500 ms on 1 new node(s) until it reports ok",
    );
    assert_node_timeouts(&lab, 0..4, "3000");

    // Empty masters are ignored unless asked.
    let out = lab.run(&["rebalance", &lab.at(0)]);
    assert!(out.stderr.contains("nothing to move"), "{}", out.stderr);
    assert!(lab.slots_of(3).is_empty());

    // Dry run: the plan, and nothing changes.
    let before = lab.snapshot();
    let out = lab.run(&["rebalance", &lab.at(0), "--use-empty-masters", "--dry-run"]);
    assert!(out.ok().contains("Plan (3 steps"), "{}", out.stdout);
    assert_eq!(lab.snapshot(), before);

    lab.run(&["rebalance", &lab.at(0), "--use-empty-masters"])
        .ok();
    assert_eq!(lab.slots_of(3).len(), 4096);
    lab.assert_keys(0, &kv);
    assert_eq!(lab.total_keys(0), 2000);

    // Weight 0 drains a master (by address); weight 2 by id prefix doubles one.
    let heavy = lab.id(1)[..10].to_string();
    let drain = format!("{}=0", lab.at(3));
    let double = format!("{heavy}=2");
    lab.run(&[
        "rebalance",
        &lab.at(0),
        "--weight",
        &drain,
        "--weight",
        &double,
    ])
    .ok();
    assert!(lab.slots_of(3).is_empty());
    assert_eq!(lab.slots_of(1).len(), 8192);
    assert_eq!(lab.slots_of(0).len() + lab.slots_of(2).len(), 8192);
    lab.assert_keys(2, &kv);
    lab.assert_redis_cli_check(0);
    lab.run(&["rebalance", &lab.at(0), "--weight", "nosuchnode=1"])
        .fails_with("no master of the cluster matches 'nosuchnode'");
}

#[test]
fn reshard_moves_exactly_n_slots() {
    let lab = lab(4);
    lab.cluster(3);
    let kv = lab.write_keys(0, "resh", 1000);
    lab.run(&["join_no_load", &lab.at(0), &lab.at(3)]).ok();
    lab.run(&[
        "reshard",
        &lab.at(0),
        "--from",
        "all",
        "--to",
        &lab.at(3),
        "--slots",
        "1001",
        "--yes",
    ])
    .ok();
    assert_eq!(lab.slots_of(3).len(), 1001);
    let from = lab.id(0)[..8].to_string();
    lab.run(&[
        "reshard",
        &lab.at(0),
        "--from",
        &from,
        "--to",
        &lab.at(3),
        "--slots",
        "7",
    ])
    .ok();
    assert_eq!(lab.slots_of(3).len(), 1008);
    let total: usize = (0..4).map(|i| lab.slots_of(i).len()).sum();
    assert_eq!(total, 16384);
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(3);
    lab.run(&[
        "reshard",
        &lab.at(0),
        "--from",
        &from,
        "--to",
        &lab.at(3),
        "--slots",
        "99999",
    ])
    .fails_with("cannot move 99999");
}

#[test]
fn dry_run_works_for_classic_commands() {
    let lab = lab(3);
    lab.cluster(2);
    let before = lab.snapshot();
    let out = lab.run(&["--dry-run", "join", &lab.at(0), &lab.at(2)]);
    let text = out.ok();
    assert!(text.contains("CLUSTER MEET"), "{text}");
    // The plan shows the new node's shortened timeout and its return, after the meet.
    let meet = text.find("CLUSTER MEET").unwrap();
    let short = text
        .find("CONFIG SET cluster-node-timeout 500")
        .expect(text);
    let back = text
        .find("CONFIG SET cluster-node-timeout 3000")
        .expect(text);
    assert!(meet < short && short < back, "{text}");
    assert!(
        text.contains("move 2730 slots") || text.contains("move 2731 slots"),
        "{text}"
    );
    let out = lab.run(&["quit", &lab.at(1), "--dry-run"]);
    assert!(out.ok().contains("CLUSTER RESET HARD"), "{}", out.stdout);
    assert_eq!(lab.snapshot(), before);
}

#[test]
fn call_runs_on_every_node_with_each_reply_type() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["replicate", &lab.at(0), &lab.at(2)]).ok();
    let pings = lab.run(&["call", &lab.at(0), "PING"]).ok().to_string();
    assert_eq!(
        pings.lines().filter(|l| l.ends_with(": PONG")).count(),
        3,
        "{pings}"
    );
    let masters = lab
        .run(&["call", &lab.at(0), "DBSIZE", "--masters"])
        .ok()
        .to_string();
    assert_eq!(
        masters
            .lines()
            .filter(|l| l.ends_with(": (integer) 0"))
            .count(),
        2,
        "{masters}"
    );
    let replicas = lab
        .run(&["call", &lab.at(0), "ROLE", "--replicas"])
        .ok()
        .to_string();
    assert!(
        replicas.starts_with(&format!("{}:\n1) \"slave\"", lab.at(2))),
        "{replicas}"
    );
    // nil on the owner, an error (MOVED) elsewhere: printed, and the exit code says so.
    let out = lab.run(&["call", &lab.at(0), "GET", "foo", "--masters"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stdout.contains(": (nil)") && out.stdout.contains("(error) GET failed: Moved"),
        "{}",
        out.stdout
    );
    // Negative numbers are arguments; JSON keeps the types.
    let owner = if lab.slots_of(0).contains(&redis_trib::slots::slot_of(b"n")) {
        0
    } else {
        1
    };
    let out = lab.run(&[
        "call",
        &lab.at(owner),
        "INCRBY",
        "n",
        "-5",
        "--json",
        "--masters",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc[lab.at(owner)], -5);
    assert!(
        doc[lab.at(1 - owner)]["error"]
            .as_str()
            .unwrap()
            .contains("Moved"),
        "{doc}"
    );
}

#[test]
fn admin_operations_are_script_functions_too() {
    let lab = lab(7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.rhai");
    std::fs::write(
        &path,
        r#"
        let nodes = ARGS;
        create_cluster(nodes.extract(0, 6), #{ replicas: 1 });
        let c = nodes[0];
        let report = check(c);
        print(`healthy=${report.healthy} problems=${report.problems.len()}`);
        print(`replicas=${info(c).total_replicas}`);
        join_no_load(c, nodes[6]);
        let moves = rebalance(c, #{ use_empty_masters: true });
        print(`rebalance_moves=${moves.len()} new=${node(nodes[6]).slot_count}`);
        let again = rebalance(c, #{ use_empty_masters: true });
        print(`again=${again.len()}`);
        // The source: any old master (ports are random, so not simply the first).
        let src = ();
        for m in list_masters(c) { if m.addr != nodes[6] { src = m; break; } }
        let r = reshard(c, #{ to: nodes[6], slots: 10, from: [src] });
        print(`resharded=${r[0][2]} new=${node(nodes[6]).slot_count}`);
        "#,
    )
    .unwrap();
    let mut args = vec!["run".to_string(), path.display().to_string()];
    args.extend((0..7).map(|i| lab.at(i)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = lab.run(&args).ok().to_string();
    assert!(text.contains("healthy=true problems=0"), "{text}");
    assert!(text.contains("replicas=3"), "{text}");
    assert!(text.contains("rebalance_moves=3 new=4096"), "{text}");
    assert!(text.contains("again=0"), "{text}");
    assert!(text.contains("resharded=10 new=4106"), "{text}");
    lab.assert_redis_cli_check(0);
}

#[test]
fn set_timeout_reaches_every_node() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["replicate", &lab.at(0), &lab.at(2)]).ok();
    let out = lab.run(&["set-timeout", &lab.at(1), "4321"]);
    assert!(out.ok().is_empty());
    assert!(out.stderr.contains("on all 3 nodes"), "{}", out.stderr);
    for i in 0..3 {
        let v = lab
            .cmd(i, &["CONFIG", "GET", "cluster-node-timeout"])
            .unwrap();
        let pair: Vec<String> = redis::from_redis_value(v).unwrap();
        assert_eq!(pair[1], "4321", "node {i}");
    }
    lab.run(&["set-timeout", &lab.at(1), "5"])
        .fails_with("too small");
    let before = lab.snapshot();
    lab.run(&["set_timeout", &lab.at(1), "4000", "--dry-run"])
        .ok();
    let v: Vec<String> = redis::from_redis_value(
        lab.cmd(0, &["CONFIG", "GET", "cluster-node-timeout"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v[1], "4321", "a dry run sets nothing");
    assert_eq!(lab.snapshot(), before);
}
