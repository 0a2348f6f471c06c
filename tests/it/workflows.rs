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
