//! The example workflow scripts (`scripts/*.rhai`) run through the binary against
//! real lab clusters, live, with `--dry-run` and offline; and the stdlib modules
//! (`balance`, `health`, `topology`) through small inline scripts, offline against
//! hand-made topologies (no redis-server needed) or live.

use crate::support::*;
use redis_trib::topology::{parse_node_line, Topology};
use serde_json::Value;
use std::path::Path;

/// The path of `scripts/NAME.rhai` in this crate.
fn script(name: &str) -> String {
    format!("{}/scripts/{name}.rhai", env!("CARGO_MANIFEST_DIR"))
}

/// Slot counts of nodes `nodes`, each in its own view.
fn slot_counts(lab: &TestLab, nodes: &[usize]) -> Vec<usize> {
    nodes.iter().map(|&i| lab.slots_of(i).len()).collect()
}

/// Writes `text` as `name` in `dir`; returns its path.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// Prepended to inline scripts: `out(value)` prints one `=> JSON` line.
const OUT: &str = "fn out(x) { print(\"=> \" + #{ v: x }.to_json()); }\n";

/// The values a script printed with `out`, in order.
fn results(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("=> "))
        .map(|j| {
            let v: Value = serde_json::from_str(j).unwrap_or_else(|e| panic!("bad JSON {j}: {e}"));
            v["v"].clone()
        })
        .collect()
}

/// A node id made of one repeated character.
fn nid(c: char) -> String {
    c.to_string().repeat(40)
}

/// A CLUSTER NODES line of a master at 127.0.0.1:`port`.
fn master_line(c: char, port: u16, flags: &str, slots: &str) -> String {
    format!(
        "{} 127.0.0.1:{port}@{} {flags} - 0 0 1 connected {slots}",
        nid(c),
        port + 10000
    )
}

/// A CLUSTER NODES line of a replica of `of`.
fn replica_line(c: char, port: u16, flags: &str, of: char) -> String {
    format!(
        "{} 127.0.0.1:{port}@{} {flags} {} 0 0 1 connected",
        nid(c),
        port + 10000,
        nid(of)
    )
}

/// Writes a topology snapshot (as `list --json` does) made of these lines.
fn topology_file(dir: &Path, lines: &[String]) -> String {
    let nodes: Vec<_> = lines.iter().map(|l| parse_node_line(l).unwrap()).collect();
    let topo = Topology {
        entry_id: nodes[0].node_id.clone(),
        states: nodes
            .iter()
            .map(|n| (n.node_id.clone(), "ok".to_string()))
            .collect(),
        nodes,
        ..Topology::default()
    };
    write(
        dir,
        "topology.json",
        &serde_json::to_string(&topo).expect("topology as JSON"),
    )
}

/// Runs the inline script `text` offline against the topology made of `lines`
/// (entry node 127.0.0.1:7000).
fn offline(lines: &[String], text: &str) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let topo = topology_file(dir.path(), lines);
    let file = write(dir.path(), "t.rhai", &format!("{OUT}{text}"));
    Run::from(
        bin()
            .args(["run", &file, "127.0.0.1:7000", "--topology", &topo])
            .output()
            .expect("run redis-trib"),
    )
}

/// Four uneven masters: a 0-999 (1000), b 1000-9999 (9000), c 10000-11999 (2000),
/// d 12000-16383 (4384).
fn uneven_masters() -> Vec<String> {
    vec![
        master_line('a', 7000, "myself,master", "0-999"),
        master_line('b', 7001, "master", "1000-9999"),
        master_line('c', 7002, "master", "10000-11999"),
        master_line('d', 7003, "master", "12000-16383"),
    ]
}

#[test]
fn rebalance_by_weight_moves_slots_keeps_keys_then_has_nothing_to_do() {
    let lab = lab(3);
    lab.cluster(3);
    let kv = lab.write_keys(0, "rebalance", 1000);
    let weight = format!("weight.{}=2", lab.at(0));
    let out = lab
        .run(&["run", &script("rebalance"), &lab.at(0), "--set", &weight])
        .ok()
        .to_string();
    assert!(out.contains("moved 2730 slots"), "{out}");
    // Weights 2:1:1 of 16384.
    assert_eq!(slot_counts(&lab, &[0, 1, 2]), vec![8192, 4096, 4096]);
    lab.assert_keys(1, &kv);
    assert_eq!(lab.total_keys(0), 1000);
    lab.assert_redis_cli_check(0);

    // Balanced for these weights now: a second run moves nothing.
    let before = lab.snapshot();
    let out = lab
        .run(&["run", &script("rebalance"), &lab.at(1), "--set", &weight])
        .ok()
        .to_string();
    assert!(out.contains("nothing to move"), "{out}");
    assert_eq!(lab.snapshot(), before, "a balanced cluster must not change");
}

#[test]
fn rebalance_respects_the_threshold_and_plans_without_changing_anything() {
    let lab = lab(3);
    lab.cluster(3);
    let rebalance = script("rebalance");
    let before = lab.snapshot();

    // Freshly started: balanced, nothing moves.
    let out = lab.run(&["run", &rebalance, &lab.at(0)]).ok().to_string();
    assert!(out.contains("nothing to move"), "{out}");
    assert_eq!(lab.snapshot(), before);

    // 50 slots off (5512 / 5411 / 5461): under 1% off, below the default 2%.
    lab.run(&["migrate_slots", &lab.at(1), &lab.at(0), "5462-5511"])
        .ok();
    assert_eq!(slot_counts(&lab, &[0, 1, 2]), vec![5512, 5411, 5461]);
    let before = lab.snapshot();
    let out = lab.run(&["run", &rebalance, &lab.at(0)]).ok().to_string();
    assert!(
        out.contains("balanced: no master is more than 2.0% off its target"),
        "{out}"
    );
    assert_eq!(lab.snapshot(), before);

    // Weight 2 on node 0 is 33% off: a threshold of 40% still moves nothing.
    let weight = format!("weight.{}=2", lab.at(0));
    let out = lab
        .run(&[
            "run",
            &rebalance,
            &lab.at(0),
            "--set",
            &weight,
            "--set",
            "threshold=40",
        ])
        .ok()
        .to_string();
    assert!(out.contains("nothing to move"), "{out}");
    assert_eq!(lab.snapshot(), before);

    // Targets are 5462 / 5461 / 5461 in address order (ties to the earlier
    // master): node 0, the only one over its target, gives 50 or 51 slots.
    let first = (0..3).min_by_key(|&i| lab.addr(i).port).unwrap();
    let target = |i: usize| if i == first { 5462 } else { 5461 };
    let expected: Vec<usize> = (0..3).map(target).collect();

    // A dry run prints the plan and changes nothing.
    let out = lab
        .run(&[
            "run",
            &rebalance,
            &lab.at(0),
            "--set",
            "threshold=0.5",
            "--dry-run",
        ])
        .ok()
        .to_string();
    assert!(
        out.contains(&format!("dry run: would move {} slots", 5512 - target(0))),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    let steps: Vec<&str> = out.lines().filter(|l| l.contains(" slots to ")).collect();
    assert!(!steps.is_empty(), "{out}");
    assert!(
        steps
            .iter()
            .all(|l| l.contains(&format!(" {} ", lab.at(0)))),
        "only node 0 gives slots: {out}"
    );
    assert_eq!(
        lab.snapshot(),
        before,
        "a dry run must not change the cluster"
    );

    // Offline, from a saved topology: same plan, no node touched.
    let dir = tempfile::tempdir().unwrap();
    let saved = lab.run(&["list", &lab.at(0), "--json"]).ok().to_string();
    let topo = write(dir.path(), "topo.json", &saved);
    let out = lab
        .run(&[
            "run",
            &rebalance,
            &lab.at(0),
            "--topology",
            &topo,
            "--set",
            &weight,
        ])
        .ok()
        .to_string();
    assert!(out.contains("rebalancing: 2 moves"), "{out}");
    assert!(out.contains("Plan (2 steps, nothing was changed)"), "{out}");
    assert_eq!(
        lab.snapshot(),
        before,
        "an offline run must not change the cluster"
    );

    // Live with a threshold under 1%: every master at its target.
    lab.run(&["run", &rebalance, &lab.at(0), "--set", "threshold=0.5"])
        .ok();
    assert_eq!(slot_counts(&lab, &[0, 1, 2]), expected);
    lab.assert_redis_cli_check(0);

    // Bad parameters are refused before anything moves.
    let before = lab.snapshot();
    lab.run(&["run", &rebalance, &lab.at(0), "--set", "treshold=1"])
        .fails_with("unknown parameter 'treshold'");
    lab.run(&[
        "run",
        &rebalance,
        &lab.at(0),
        "--set",
        "weight.10.9.9.9:1=2",
    ])
    .fails_with("weight given for 10.9.9.9:1, which is not one of the masters");
    lab.run(&[
        "run",
        &rebalance,
        &lab.at(0),
        "--set",
        &format!("weight.{}=-1", lab.at(1)),
    ])
    .fails_with("must be >= 0");
    assert_eq!(lab.snapshot(), before);
}

#[test]
fn drain_node_empties_the_node_evenly_and_keeps_keys() {
    let lab = lab(3);
    lab.cluster(3);
    let kv = lab.write_keys(0, "drain", 1000);
    let drain = script("drain_node");

    let before = lab.snapshot();
    let out = lab
        .run(&["run", &drain, &lab.at(0), &lab.at(2), "--dry-run"])
        .ok()
        .to_string();
    assert!(
        out.contains(&format!("dry run: would move 5461 slots off {}", lab.at(2))),
        "{out}"
    );
    assert!(out.contains("Plan (2 steps, nothing was changed)"), "{out}");
    assert_eq!(
        lab.snapshot(),
        before,
        "a dry run must not change the cluster"
    );

    let out = lab
        .run(&["run", &drain, &lab.at(0), &lab.at(2)])
        .ok()
        .to_string();
    assert!(out.contains(&format!("{} is empty", lab.at(2))), "{out}");
    assert!(lab.slots_of(2).is_empty());
    // 5462 + 2730 and 5461 + 2731: level.
    assert_eq!(slot_counts(&lab, &[0, 1]), vec![8192, 8192]);
    lab.assert_keys(0, &kv);
    // Redis 7 (cluster-allow-replica-migration) turns the emptied master into a
    // replica of the master that took its last slot: it then holds a copy of that
    // master's keys, which node 0 counts as long as it still sees it as a master.
    poll(30, "1000 keys over the masters", || {
        lab.total_keys(0) == 1000
    });
    lab.assert_redis_cli_check(0);
}

#[test]
fn add_capacity_adds_masters_with_replicas() {
    let lab = lab(6);
    lab.cluster(2);
    let kv = lab.write_keys(0, "capacity", 1000);
    let add = script("add_capacity");
    let group1 = format!("{},{}", lab.at(2), lab.at(3));
    let group2 = format!("{},{}", lab.at(4), lab.at(5));

    // A node already in the cluster: refused before anything changes.
    let before = lab.snapshot();
    let bad = format!("{},{}", lab.at(2), lab.at(1));
    lab.run(&["run", &add, &lab.at(0), &bad])
        .fails_with(&format!("{} already serves 8192 slots", lab.at(1)));
    assert_eq!(lab.snapshot(), before);

    let out = lab
        .run(&["run", &add, &lab.at(0), &group1, &group2, "--dry-run"])
        .ok()
        .to_string();
    assert!(
        out.contains("dry run: would add 2 masters and 2 replicas"),
        "{out}"
    );
    assert!(out.contains("CLUSTER REPLICATE"), "{out}");
    assert_eq!(
        lab.snapshot(),
        before,
        "a dry run must not change the cluster"
    );

    let out = lab
        .run(&["run", &add, &lab.at(0), &group1, &group2])
        .ok()
        .to_string();
    assert!(out.contains("added 2 masters and 2 replicas"), "{out}");
    assert_eq!(slot_counts(&lab, &[0, 1, 2, 4]), vec![4096; 4]);
    let (m2, m4) = (lab.id(2), lab.id(4));
    for (replica, master) in [(3, &m2), (5, &m4)] {
        let me = lab.id(replica);
        poll(30, "every node to see the new replicas", || {
            (0..6).all(|i| {
                lab.nodes(i)
                    .iter()
                    .any(|n| n.node_id == me && n.master_id.as_ref() == Some(master))
            })
        });
    }
    lab.assert_keys(0, &kv);
    assert_eq!(lab.total_keys(0), 1000);
    lab.assert_redis_cli_check(0);
}

#[test]
fn health_report_passes_when_healthy_and_names_each_problem() {
    let lab = lab(4);
    lab.cluster(3);
    lab.run(&["replicate", &lab.at(0), &lab.at(3)]).ok();
    let report = script("health_report");

    let out = lab.run(&["run", &report, &lab.at(1)]).ok().to_string();
    assert!(
        out.contains("cluster: 4 nodes (3 masters, 1 replica)"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "WARNING: master {} has no working replica",
            lab.at(1)
        )),
        "{out}"
    );
    assert!(out.contains("status: healthy (3 warnings)"), "{out}");
    // A read-only script works as a dry run too.
    lab.run(&["run", &report, &lab.at(1), "--dry-run"]).ok();

    let json = lab
        .run(&["run", &report, &lab.at(0), "--set", "format=json"])
        .ok()
        .to_string();
    let doc: Value = serde_json::from_str(json.trim()).expect("one JSON document");
    assert_eq!(doc["healthy"], true);
    assert_eq!(doc["slots_per_master"][lab.at(0)], 5462);
    assert_eq!(doc["replicas_per_master"][lab.at(0)], 1);

    let strict = lab.run(&["run", &report, &lab.at(0), "--set", "require_replicas=yes"]);
    strict.fails_with(&format!("master {} has no working replica", lab.at(2)));
    assert!(
        strict.stdout.contains("status: UNHEALTHY (2 errors)"),
        "{}",
        strict.stdout
    );

    // An open slot.
    let slot = lab.slots_of(1)[0].to_string();
    lab.cmd(1, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &lab.id(2)])
        .unwrap();
    lab.run(&["run", &report, &lab.at(0)]).fails_with(&format!(
        "slot {slot} is open: {} migrating to {}",
        lab.at(1),
        lab.at(2)
    ));
    lab.cmd(1, &["CLUSTER", "SETSLOT", &slot, "STABLE"])
        .unwrap();
    lab.run(&["run", &report, &lab.at(0)]).ok();

    // An uncovered slot: removed from every view.
    for i in 0..4 {
        lab.cmd(i, &["CLUSTER", "DELSLOTS", "100"]).unwrap();
    }
    poll(10, "every node to see slot 100 uncovered", || {
        (0..4).all(|i| {
            lab.nodes(i)
                .iter()
                .all(|n| !n.assigned_slots.contains(&100))
        })
    });
    let broken = lab.run(&["run", &report, &lab.at(0)]);
    assert_eq!(broken.code, 1, "{}", broken.stderr);
    broken.fails_with("cluster unhealthy");
    broken.fails_with("1 slot not served by any node: 100");
    assert!(
        broken
            .stdout
            .contains("ERROR: 1 slot not served by any node: 100"),
        "{}",
        broken.stdout
    );
}

#[test]
fn balance_module_targets_weights_and_thresholds() {
    let run = offline(
        &uneven_masters(),
        r#"
        import "balance" as balance;
        let ms = list_masters("127.0.0.1:7000");
        let sum = |t| { let s = 0; for v in t.values() { s += v; } s };
        let even = balance::targets(ms);
        out([sum.call(even), even.values()]);
        let w = #{ "127.0.0.1:7000": 1, "bbbbbbbb": 2.5, "127.0.0.1:7002": "3" };
        w[ms[3].node_id] = 0;
        let t = balance::targets(ms, w);
        out([sum.call(t), t.values()]);
        let a = balance::targets(ms, [1, 2.5, 3, 0]);
        out((a == t));
        // Odd weights still add up exactly to the slots held.
        for ws in [[1, 1, 1], [3, 7, 11], [0.1, 0.2, 0.3]] {
            let three = ms.extract(0, 3);
            out(sum.call(balance::targets(three, ws)));
        }
        out(balance::deviations(ms, ()).values().map(|d| d.round()));
        out(balance::max_deviation(ms, ()).round());
        out(balance::moves_over_threshold(ms, (), 200));
        let plan = balance::moves_over_threshold(ms, (), 50);
        out((plan == balance::spread_plan(ms)));
        out((plan == base_balance_plan(ms)));
        "#,
    );
    let r = results(run.ok());
    assert_eq!(r[0], serde_json::json!([16384, [4096, 4096, 4096, 4096]]));
    // 16384 * 1/6.5, 2.5/6.5, 3/6.5 and 0.
    assert_eq!(r[1], serde_json::json!([16384, [2521, 6301, 7562, 0]]));
    assert_eq!(r[2], true, "a weight array means the same as the map");
    // a, b and c hold 12000 slots between them.
    assert_eq!(r[3], 12000);
    assert_eq!(r[4], 12000);
    assert_eq!(r[5], 12000);
    // a 1000 vs 4096, b 9000, c 2000, d 4384: percent off.
    assert_eq!(r[6], serde_json::json!([76.0, 120.0, 51.0, 7.0]));
    assert_eq!(r[7], 120.0);
    assert_eq!(r[8], serde_json::json!([]), "under the threshold: no plan");
    assert_eq!(r[9], true);
    assert_eq!(r[10], true);

    // Bad weights are refused with the master named.
    let bad = |w: &str, needle: &str| {
        let text = format!(
            "import \"balance\" as balance;\nbalance::targets(list_masters(\"127.0.0.1:7000\"), {w});"
        );
        offline(&uneven_masters(), &text).fails_with(needle);
    };
    bad(
        r#"#{ "127.0.0.1:9999": 1 }"#,
        "weight given for 127.0.0.1:9999, which is not one of the masters",
    );
    bad(
        r#"#{ "127.0.0.1:7001": "heavy" }"#,
        r#"the weight of 127.0.0.1:7001 must be a number, got "heavy""#,
    );
    bad("[1, 2]", "4 masters but 2 weights");
    bad("[0, 0, 0, 0]", "the weights of all masters add up to 0");
}

#[test]
fn balance_module_drain_and_apply_plans() {
    let mut lines = uneven_masters();
    // A failed master receives nothing.
    lines.push(master_line('e', 7004, "master,fail", ""));
    let run = offline(
        &lines,
        r#"
        import "balance" as balance;
        let ms = list_masters("127.0.0.1:7000");
        let short = |plan| plan.map(|m| [m[0].sub_string(0, 1), m[1].sub_string(0, 1), m[2]]);
        // d (4384) goes to a and c only: b (9000) is above the level already.
        out(short.call(balance::drain_plan(ms, "127.0.0.1:7003")));
        out(balance::drain_plan(ms, "127.0.0.1:7004"));
        // b gives its own first 100 slots, never the 100 it receives from a.
        let done = balance::apply_plan([["127.0.0.1:7000", ms[1], 100], [ms[1].node_id, "cccccccc", 100]], ms);
        out(done);
        let after = list_masters("127.0.0.1:7000");
        out(after.map(|m| format_slots(m.assigned_slots)));
        out(balance::plan_lines([[ms[0].node_id, ms[1].node_id, 5]], ms));
        "#,
    );
    let out = run.ok();
    let r = results(out);
    assert_eq!(
        r[0],
        serde_json::json!([["d", "a", 2692], ["d", "c", 1692]])
    );
    assert_eq!(r[1], serde_json::json!([]), "an empty master needs no move");
    assert_eq!(
        r[2],
        serde_json::json!({"moves": 2, "slots": 200, "keys": 0})
    );
    assert_eq!(
        r[3],
        serde_json::json!([
            "100-999",
            "0-99,1100-9999",
            "1000-1099,10000-11999",
            "12000-16383",
            "-"
        ])
    );
    assert_eq!(
        r[4],
        serde_json::json!(["127.0.0.1:7000 (aaaaaaaa) -> 127.0.0.1:7001 (bbbbbbbb): 5 slots"])
    );
    assert!(out.contains("Plan (2 steps, nothing was changed)"), "{out}");

    // A plan asking a source for more than it held is refused before it runs short.
    offline(
        &uneven_masters(),
        r#"
        import "balance" as balance;
        let ms = list_masters("127.0.0.1:7000");
        balance::apply_plan([[ms[0], ms[1], 900], [ms[0], ms[2], 200]], ms);
        "#,
    )
    .fails_with("127.0.0.1:7000 holds 1000 slots but the plan takes 200 more than it has left");
    offline(
        &uneven_masters(),
        r#"
        import "balance" as balance;
        let ms = list_masters("127.0.0.1:7000");
        balance::drain_plan(ms.extract(0, 1), ms[0]);
        "#,
    )
    .fails_with("127.0.0.1:7000 is the only master that can hold slots");
}

#[test]
fn health_module_offline_finds_failed_nodes_open_slots_and_missing_replicas() {
    let lines = vec![
        master_line(
            'a',
            7000,
            "myself,master",
            &format!("100-8191 [5->-{}]", nid('b')),
        ),
        master_line('b', 7001, "master", "8192-16383"),
        master_line('c', 7002, "master,fail", "0-99"),
        replica_line('d', 7003, "slave", 'b'),
        replica_line('e', 7004, "slave,fail", 'a'),
    ];
    let run = offline(
        &lines,
        r#"
        import "health" as health;
        let f = health::check("127.0.0.1:7000");
        out(f);
        out(health::problems(f));
        out(health::lines(f, #{ require_replicas: true }));
        "#,
    );
    let r = results(run.ok());
    let (f, p) = (&r[0], &r[1]);
    assert_eq!(f["masters"], 3);
    assert_eq!(f["replicas"], 2);
    assert_eq!(f["failed_slots"].as_array().unwrap().len(), 100);
    assert_eq!(f["uncovered_slots"], serde_json::json!([]));
    assert_eq!(
        f["open_slots"],
        serde_json::json!([{"slot": 5, "node": "127.0.0.1:7000", "direction": "migrating", "peer": "127.0.0.1:7001"}])
    );
    assert_eq!(
        f["masters_without_replicas"],
        serde_json::json!(["127.0.0.1:7000"])
    );
    assert_eq!(f["slots_per_master"]["127.0.0.1:7000"], 8092);
    let errors: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for needle in [
        "100 slots served by a failed master: 0-99",
        "slot 5 is open: 127.0.0.1:7000 migrating to 127.0.0.1:7001",
        "node 127.0.0.1:7002 is flagged fail",
        "node 127.0.0.1:7004 is flagged fail",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{needle}: {errors:?}"
        );
    }
    assert_eq!(
        p["warnings"],
        serde_json::json!([
            "master 127.0.0.1:7000 has no working replica",
            "replica 127.0.0.1:7003 is on the same host as its master 127.0.0.1:7001",
            "replica 127.0.0.1:7004 is on the same host as its master 127.0.0.1:7000"
        ])
    );
    let lines = r[2].as_array().unwrap();
    assert!(lines.contains(&serde_json::json!(
        "ERROR: master 127.0.0.1:7000 has no working replica"
    )));
    assert!(lines
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("status: UNHEALTHY"));
}

#[test]
fn topology_and_health_modules_on_a_live_cluster() {
    let lab = lab(4);
    lab.cluster(3);
    lab.run(&["replicate", &lab.at(1), &lab.at(3)]).ok();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "t.rhai",
        &(OUT.to_string()
            + r#"
        import "topology" as topology;
        import "health" as health;
        let c = ARGS[0];
        let nodes = list_nodes(c);
        let addrs = |list| list.map(|n| n.addr);
        out(addrs.call(topology::masters_without_replicas(nodes)));
        out(addrs.call(topology::replicas_of(c, ARGS[1])));
        out(topology::master_of(nodes, ARGS[2]).addr);
        out(topology::same_host_replicas(nodes).map(|p| [p.replica.addr, p.master.addr, p.host]));
        out(topology::slot_distribution(nodes));
        out(topology::find(nodes, nodes[1].node_id.sub_string(0, 8)).addr);
        out((topology::find(nodes, "10.1.1.1:1") == ()));
        out(addrs.call(topology::live_masters(c)).len());
        out(health::is_healthy(health::check(c)));
        out(health::report(c));
        "#),
    );
    let out = lab
        .run(&["run", &file, &lab.at(0), &lab.at(1), &lab.at(3)])
        .ok()
        .to_string();
    let r = results(&out);
    let mut unprotected = vec![lab.at(0), lab.at(2)];
    unprotected.sort();
    assert_eq!(r[0], serde_json::json!(unprotected));
    assert_eq!(r[1], serde_json::json!([lab.at(3)]));
    assert_eq!(r[2], serde_json::json!(lab.at(1)));
    assert_eq!(
        r[3],
        serde_json::json!([[lab.at(3), lab.at(1), "127.0.0.1"]])
    );
    let total: i64 = r[4]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(total, 16384);
    assert_eq!(r[4][lab.at(0)], 5462);
    assert!(r[5].is_string());
    assert_eq!(r[6], true, "an unknown node is ()");
    assert_eq!(r[7], 3);
    assert_eq!(r[8], true);
    let report = r[9].as_array().unwrap();
    assert_eq!(report[0], "cluster: 4 nodes (3 masters, 1 replica)");
    assert_eq!(report.last().unwrap(), "status: healthy (3 warnings)");
}

#[test]
fn join_no_load_takes_an_array_of_free_nodes_offline() {
    let out = offline(
        &uneven_masters(),
        r#"join_no_load(ARGS[0], ["127.0.0.1:7100", "127.0.0.1:7101"]);
out(list_masters(ARGS[0]).len());"#,
    );
    let stdout = out.ok().to_string();
    // Both joined as masters; each met the 4 members, the first also the second.
    assert_eq!(results(&stdout), [serde_json::json!(6)]);
    assert!(stdout.contains("Plan (9 steps"), "{stdout}");
    // One of them a member already: refused whole.
    offline(
        &uneven_masters(),
        r#"join_no_load(ARGS[0], ["127.0.0.1:7100", "127.0.0.1:7001"]);"#,
    )
    .fails_with("127.0.0.1:7001 is already in a cluster");
}
