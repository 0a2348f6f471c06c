//! Team workflows (issue 13 §4): moving replicas, failovers planned in dry runs,
//! node metrics and per-slot key counts, rebalancing by keys or memory, restore
//! tokens, module closures and error positions.

use crate::support::*;
use std::path::PathBuf;

/// Writes `text` to `name` in a fresh temp dir; returns (dir guard, path).
fn script(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The id of the master node `i` replicates, in node `j`'s view.
fn master_of(lab: &TestLab, j: usize, i: usize) -> Option<String> {
    let id = lab.id(i);
    lab.nodes(j)
        .into_iter()
        .find(|n| n.node_id == id)
        .and_then(|n| n.master_id)
}

#[test]
fn move_replica_is_planned_in_dry_runs_then_done_from_cli_and_script() {
    let lab = lab(3);
    lab.cluster(2);
    lab.run(&["replicate", &lab.at(0), &lab.at(2)]).ok();
    let before = lab.snapshot();
    // A dry run plans it (command line and script) and changes nothing.
    let dry = lab.run(&["--dry-run", "move-replica", &lab.at(2), &lab.at(1)]);
    let all = format!("{}{}", dry.ok(), dry.stderr);
    assert!(
        all.contains(&format!("CLUSTER REPLICATE {}", lab.id(1))),
        "{all}"
    );
    let (_d, path) = script(
        "move.rhai",
        "let moved = move_replica(ARGS[0], ARGS[1]);\nprint(`moved=${moved}`);\n\
         print(`now=${node(ARGS[0]).master_id}`);\nfailover(ARGS[0]);\nprint(`master=${node(ARGS[0]).is_master}`);\n",
    );
    let p = path.to_str().unwrap();
    let out = lab.run(&["run", p, &lab.at(2), &lab.at(1), "--dry-run", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    let ops: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["op"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"replicate") && ops.contains(&"failover"),
        "{doc}"
    );
    let printed = doc["output"].to_string();
    assert!(printed.contains(&format!("now={}", lab.id(1))), "{printed}");
    assert!(printed.contains("master=true"), "{printed}");
    assert_eq!(lab.snapshot(), before, "a dry run changes nothing");
    assert_eq!(master_of(&lab, 0, 2), Some(lab.id(0)));

    // For real: every node agrees as soon as the command returns, the link is up.
    let out = lab.run(&["move_replica", &lab.at(2), &lab.at(1)]);
    out.ok();
    for j in 0..3 {
        assert_eq!(master_of(&lab, j, 2), Some(lab.id(1)), "node {j}'s view");
    }
    let info = text(lab.cmd(2, &["INFO", "replication"]).unwrap());
    assert!(info.contains("master_link_status:up"), "{info}");
    // Again: nothing to do. Refusals name the remedy.
    let again = lab.run(&["move_replica", &lab.at(2), &lab.at(1)]);
    again.ok();
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    lab.run(&["move_replica", &lab.at(0), &lab.at(1)])
        .fails_with("move them away first");
    lab.run(&["move_replica", &lab.at(2), &lab.at(2)])
        .fails_with("same node");
    // From a script: back under node 0.
    let (_d2, back) = script("back.rhai", "print(move_replica(ARGS[0], ARGS[1]));");
    let out = lab.run(&["run", back.to_str().unwrap(), &lab.at(2), &lab.at(0)]);
    assert!(out.ok().contains("true"), "{}", out.ok());
    for j in 0..3 {
        assert_eq!(master_of(&lab, j, 2), Some(lab.id(0)), "node {j}'s view");
    }
    lab.assert_redis_cli_check(0);
}

/// Writes `per` keys into each of `slots` through the cluster.
fn fill_slots(lab: &TestLab, slots: &[u16], per: usize) {
    for s in slots {
        lab.write_keys(0, &format!("{{{}}}", tag_for_slot(*s)), per);
    }
}

fn dbsize(lab: &TestLab, i: usize) -> i64 {
    redis::from_redis_value(lab.cmd(i, &["DBSIZE"]).unwrap()).unwrap()
}

#[test]
fn metrics_as_maps_node_fields_slot_stats_snapshots_and_rebalance_by_keys() {
    let lab = lab(2);
    lab.cluster(2);
    // 200 keys in four slots of node 0, none on node 1.
    let slots = [10u16, 20, 30, 40];
    fill_slots(&lab, &slots, 50);
    let (_d, path) = script(
        "metrics.rhai",
        r#"
        let a = ARGS[0];
        let i = node_info(a);
        print(`used=${i.used_memory > 0} db0=${i.db0.keys} role=${i.role}`);
        print(`max=${node_info(a, "memory").maxmemory} type=${type_of(node_info(a, "memory"))}`);
        let m = list_masters(a).filter(|m| m.addr == a)[0];
        print(`keys=${m.keys} mem=${m.used_memory > 0} maxmem=${m.maxmemory} node_keys=${node(a).keys}`);
        let st = slot_stats(a);
        let busy = st.filter(|s| s.keys > 0);
        print(`stats=${st.len()} busy=${busy.len()} first=${busy[0].slot}:${busy[0].keys}`);
        "#,
    );
    let out = lab.run(&["run", path.to_str().unwrap(), &lab.at(0)]);
    let text = out.ok();
    assert!(text.contains("used=true db0=200 role=master"), "{text}");
    assert!(text.contains("max=0 type=map"), "{text}");
    assert!(
        text.contains("keys=200 mem=true maxmem=0 node_keys=200"),
        "{text}"
    );
    assert!(text.contains("stats=8192 busy=4 first=10:50"), "{text}");

    // Snapshots carry the metrics; offline scripts and plans read them.
    let snap = lab.run(&["list", &lab.at(0), "--json"]).ok().to_string();
    let doc: serde_json::Value = serde_json::from_str(&snap).unwrap();
    for n in doc["nodes"].as_array().unwrap() {
        assert!(n["used_memory"].as_u64().unwrap() > 0, "{n}");
        assert!(n["keys"].is_u64() && n["maxmemory"].is_u64(), "{n}");
    }
    let dir = tempfile::tempdir().unwrap();
    let snap_path = dir.path().join("snap.json");
    std::fs::write(&snap_path, &snap).unwrap();
    let (_d2, off) = script(
        "off.rhai",
        r#"
        let a = ARGS[0];
        print(`off used=${node_info(a).used_memory > 0} keys=${node(a).keys}`);
        let moves = rebalance(a, #{ by: "memory" });
        print(`memory moves=${moves.len()}`);
        "#,
    );
    let out = lab.run(&[
        "run",
        off.to_str().unwrap(),
        &lab.at(0),
        "--topology",
        snap_path.to_str().unwrap(),
    ]);
    let text = out.ok();
    assert!(text.contains("off used=true keys=200"), "{text}");
    assert!(text.contains("memory moves=1"), "{text}");

    // A dry run plans the key-balancing move; the real one evens the keys out.
    let before = lab.snapshot();
    let dry = lab.run(&["--dry-run", "rebalance", &lab.at(0), "--by", "keys"]);
    let all = format!("{}{}", dry.ok(), dry.stderr);
    assert!(all.contains("move 2 slots"), "{all}");
    assert_eq!(lab.snapshot(), before);
    lab.run(&["rebalance", &lab.at(0), "--by", "keys"]).ok();
    assert_eq!((dbsize(&lab, 0), dbsize(&lab, 1)), (100, 100));
    assert_eq!(lab.slots_of(0).len() + lab.slots_of(1).len(), 16384);
    // Balanced: nothing more to do; bad choices are named.
    let again = lab.run(&["rebalance", &lab.at(0), "--by", "keys"]);
    again.ok();
    assert!(again.stderr.contains("nothing to move"), "{}", again.stderr);
    lab.run(&["rebalance", &lab.at(0), "--by", "bytes"])
        .fails_with("slots, keys or memory");
    lab.assert_redis_cli_check(0);
}

/// Runs a script with no cluster (REDIS_TRIB_PATH cleared).
fn run_alone(path: &std::path::Path) -> Run {
    Run::from(
        bin()
            .env_remove("REDIS_TRIB_PATH")
            .args(["run", path.to_str().unwrap()])
            .output()
            .unwrap(),
    )
}

#[test]
fn module_closures_are_callable_and_errors_say_where() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mk.rhai"),
        "fn helper(x) { x * 10 }\nfn adder(n) { |x| helper(x) + n }\nfn keep_big(items) { items.filter(|i| i > 2) }\n",
    )
    .unwrap();
    let main = dir.path().join("main.rhai");
    std::fs::write(
        &main,
        "import \"mk\" as mk;\nlet f = mk::adder(3);\nprint(`call=${f.call(4)}`);\nprint(`in=${mk::keep_big([1, 2, 3, 4])}`);\nprint(`map=${[1, 2].map(mk::adder(1))}`);\n",
    )
    .unwrap();
    let out = run_alone(&main);
    let text = out.ok();
    assert!(text.contains("call=43"), "{text}");
    assert!(text.contains("in=[3, 4]"), "{text}");
    assert!(text.contains("map=[11, 21]"), "{text}");

    // A data race names its line and column, with a hint.
    let race = dir.path().join("race.rhai");
    std::fs::write(
        &race,
        "let a = [1, 2, 3];\n// filter here is only a comment\nlet b = a.filter(|x| { a.push(1); x > 1 });\n",
    )
    .unwrap();
    let out = run_alone(&race);
    out.fails_with("race.rhai:3:11: Data race detected on argument #1 of function 'filter'");
    out.fails_with("work on a copy");

    // A missing module says where it was looked for.
    let missing = dir.path().join("missing.rhai");
    std::fs::write(&missing, "import \"nosuch\" as n;\n").unwrap();
    let out = run_alone(&missing);
    out.fails_with("Module not found: nosuch (looked for ");
    out.fails_with(&dir.path().join("nosuch.rhai").display().to_string());
    out.fails_with("then the stdlib: balance, health, topology");
}

fn shipped(name: &str) -> String {
    format!("{}/scripts/{name}.rhai", env!("CARGO_MANIFEST_DIR"))
}

/// The restore token a drain printed.
fn token_in(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("restore token: "))
        .unwrap_or_else(|| panic!("no restore token in:\n{out}"))
        .to_string()
}

#[test]
fn drain_then_restore_with_a_token_or_a_state_file() {
    let lab = lab(3);
    lab.cluster(3);
    let kv = lab.write_keys(0, "maint", 300);
    let before = lab.slots_of(2);
    let (drain, restore) = (shipped("drain_node"), shipped("restore_node"));
    let out = lab.run(&["run", &drain, &lab.at(0), &lab.at(2)]);
    let token = token_in(out.ok());
    assert!(
        token.len() < 100,
        "a contiguous node's token is short: {token}"
    );
    assert!(lab.slots_of(2).is_empty());
    // Redis turns the emptied master into a replica; let every node learn it before
    // taking the snapshot the dry run is compared with (gossip is not the dry run).
    let drained = lab.id(2);
    poll(
        20,
        "every node to see the drained master as a replica",
        || {
            (0..3).all(|i| {
                lab.nodes(i)
                    .iter()
                    .any(|n| n.node_id == drained && !n.is_master())
            })
        },
    );
    // ... and its sync from its new master to end (its key count settles: on Valkey
    // 9 it loads the master's data after the role change).
    let dbsize =
        |i: usize| -> i64 { redis::from_redis_value(lab.cmd(i, &["DBSIZE"]).unwrap()).unwrap() };
    poll(20, "the drained node's sync to end", || {
        let info = text(lab.cmd(2, &["INFO", "replication"]).unwrap());
        let master = lab
            .nodes(2)
            .into_iter()
            .find(|n| n.is_myself())
            .and_then(|n| n.master_id)
            .and_then(|m| (0..3).find(|&i| lab.id(i) == m));
        info.contains("master_link_status:up")
            && !info.contains("master_sync_in_progress:1")
            && master.is_some_and(|m| dbsize(m) == dbsize(2))
    });
    // Planned first: nothing changes.
    let snap = lab.snapshot();
    let set = format!("token={token}");
    lab.run(&["run", &restore, &lab.at(0), "--set", &set, "--dry-run"])
        .ok();
    assert_eq!(lab.snapshot(), snap);
    let out = lab.run(&["run", &restore, &lab.at(0), "--set", &set]);
    assert!(
        out.ok().contains(&format!("holds {} slots", before.len())),
        "{}",
        out.ok()
    );
    assert!(lab.slots_of(2) == before, "the same slots are back");
    lab.assert_keys(0, &kv);

    // The same through --state FILE (written only under --allow-write).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drain.json");
    let f = file.to_str().unwrap();
    lab.run(&["run", &drain, &lab.at(0), &lab.at(2), "--state", f])
        .fails_with("--allow-write");
    assert!(lab.slots_of(2) == before, "refused before anything moved");
    let d = dir.path().to_str().unwrap();
    lab.run(&[
        "run",
        &drain,
        &lab.at(0),
        &lab.at(2),
        "--state",
        f,
        "--allow-write",
        d,
    ])
    .ok();
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("\"slots\""));
    assert!(lab.slots_of(2).is_empty());
    lab.run(&["run", &restore, &lab.at(0), "--state", f]).ok();
    assert!(lab.slots_of(2) == before, "the same slots are back");
    lab.assert_keys(0, &kv);
    lab.run(&["run", &restore, &lab.at(0), "--set", "token=bogus"])
        .fails_with("not a restore token");
    lab.assert_redis_cli_check(0);
}

#[test]
fn doc_and_help_cover_new_functions_stdlib_topics_and_traps() {
    let out = Run::from(bin().arg("doc").output().unwrap());
    let text = out.ok();
    for f in [
        "`move_replica(",
        "`node_info(",
        "`slot_stats(",
        "`state_token(",
        "`save_state(",
        "`balance::drain_plan(",
        "`health::check(",
        "`topology::same_host_replicas(",
        "**ARGS**",
        "**PARAMS**",
        "**Cluster**",
        "**check map**",
        "**info map**",
        "**topology map**",
        "**Rhai traps**",
        "`used_memory`",
    ] {
        assert!(text.contains(f), "doc misses {f}");
    }
    let json: serde_json::Value =
        serde_json::from_str(Run::from(bin().args(["doc", "--json"]).output().unwrap()).ok())
            .unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    for n in [
        "move_replica",
        "node_info",
        "slot_stats",
        "token_state",
        "balance::targets",
        "Rhai traps",
    ] {
        assert!(names.contains(&n), "doc --json misses {n}");
    }
    // The shell's help() shows the same, one topic at a time too.
    let out = crate::repl::repl(&[], "help(\"topology map\")\nhelp(\"health::check\")\n");
    let text = out.ok();
    assert!(text.contains("entry_id"), "{text}");
    assert!(text.contains("findings"), "{text}");
}
