//! Planning at scale: the simulation behind dry runs and offline runs applies a plan
//! exactly as the live cluster does (same slot map, same roles), and snapshots past
//! the documented limits are refused with a clear error.

use crate::support::{bin, lab, poll, TestLab};
use redis_trib::topology::{MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_NODES};
use std::path::Path;

/// A plan with every form of move: a count between Nodes, exact slots between an
/// address and an id, and a whole master drained by id prefix (Redis 7 then makes
/// it a replica of the receiver).
const PLAN: &str = r#"
let m = list_masters(ARGS[0]);
let plan = [
    [m[0], m[1], 100],
    #{ src: m[1].addr, dst: m[2].node_id, slots: [m[1].assigned_slots[0], m[1].assigned_slots[7]] },
    [m[3].node_id.sub_string(0, 8), m[0].addr, m[3].slot_count],
];
let done = apply_plan(ARGS[0], plan);
print(`applied ${done.moves} moves, ${done.slots} slots`);
"#;

/// Every node as `id role master slots`, sorted by id.
const SLOT_MAP: &str = r#"
let lines = [];
for n in list_nodes(ARGS[0]) {
    let role = if n.is_master { "master" } else { "replica" };
    lines.push(`${n.node_id} ${role} ${n.master_id} ${format_slots(n.assigned_slots)}`);
}
lines.sort();
for l in lines { print(l); }
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// The slot map and roles the live cluster shows now.
fn live_map(lab: &TestLab, script: &str) -> String {
    lab.run(&["run", script, &lab.at(0)]).ok().to_string()
}

#[test]
fn a_plan_gives_the_same_slot_map_offline_and_live() {
    let lab = lab(4);
    lab.cluster(4);
    let kv = lab.write_keys(0, "scale", 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let snapshot = lab.run(&["list", &lab.at(0), "--json"]).ok().to_string();
    let snap = write(dir.path(), "snap.json", &snapshot);
    let plan = write(dir.path(), "plan.rhai", PLAN);
    let map = write(dir.path(), "map.rhai", &format!("{PLAN}\n{SLOT_MAP}"));
    let show = write(dir.path(), "show.rhai", SLOT_MAP);

    // Offline: the plan applied to the snapshot, and the map it leaves.
    let offline = lab.run(&["run", &map, &lab.at(0), "--topology", &snap]);
    let offline = offline.ok();
    assert!(offline.contains("applied 3 moves"), "{offline}");
    let planned: String = offline
        .lines()
        .filter(|l| {
            l.split(' ')
                .next()
                .is_some_and(|w| w.len() == 40 && w.bytes().all(|c| c.is_ascii_hexdigit()))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(planned.lines().count(), 4, "{offline}");
    assert_eq!(planned.matches(" replica ").count(), 1, "{planned}");

    // Live: the same plan, then the cluster must show the same map and roles.
    let live = lab.run(&["run", &plan, &lab.at(0)]);
    assert!(live.ok().contains("applied 3 moves"), "{}", live.stdout);
    let mut last = String::new();
    poll(20, "the live cluster to show the planned map", || {
        last = live_map(&lab, &show);
        last == planned
    });
    lab.assert_keys(0, &kv);
}

#[test]
fn apply_plan_refuses_a_bad_plan_whole() {
    let lab = lab(3);
    lab.cluster(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = |body: &str, want: &str| {
        let script = write(
            dir.path(),
            "bad.rhai",
            &format!("let m = list_masters(ARGS[0]);\napply_plan(ARGS[0], {body});"),
        );
        let before = lab.stable_nodes(0);
        lab.run(&["run", &script, &lab.at(0)]).fails_with(want);
        assert_eq!(
            lab.stable_nodes(0),
            before,
            "a refused plan changed the cluster"
        );
    };
    bad(
        "[[m[0], m[1], 10], [m[0], \"127.0.0.1:1\", 5]]",
        "plan move #2 (",
    );
    bad(
        "[[m[0], m[1], 10], [m[0], m[2], m[0].slot_count]]",
        "plan move #2",
    );
    bad(
        "[#{ src: m[0], dst: m[1], slots: m[0].assigned_slots.extract(0, 2) }, #{ src: m[0], dst: m[2], slots: [m[0].assigned_slots[1]] }]",
        "is already moved by move #1",
    );
    bad("[[m[1], m[2], 1], [m[0], m[0], 1]]", "same node");
}

#[test]
fn snapshots_past_the_limits_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = write(dir.path(), "list.rhai", "print(list_nodes(ARGS[0]).len());");
    // One node more than the limit.
    let nodes: Vec<String> = (0..=MAX_SNAPSHOT_NODES)
        .map(|i| {
            format!(
                r#"{{"node_id":"{i:040x}","host":"10.0.0.1","port":{},"cport":null,"hostname":null,"flags":["master"],"role_in_cluster":"master","master_id":null,"ping_sent":0,"pong_recv":0,"config_epoch":0,"connected":true,"assigned_slots":[],"slots_migrating":[],"slots_importing":[]}}"#,
                i % 60000 + 1
            )
        })
        .collect();
    let many = write(
        dir.path(),
        "many.json",
        &format!(
            r#"{{"entry_id":"","nodes":[{}],"keys":{{}},"states":{{}},"unreachable":{{}}}}"#,
            nodes.join(",")
        ),
    );
    let run = |snap: &str| {
        let out = bin()
            .args(["run", &script, "10.0.0.1:1", "--topology", snap])
            .output()
            .expect("run redis-trib");
        crate::support::Run::from(out)
    };
    run(&many).fails_with(&format!(
        "lists {} nodes, more than the {MAX_SNAPSHOT_NODES} a topology snapshot may hold",
        MAX_SNAPSHOT_NODES + 1
    ));
    // A file past the size limit is refused before it is read.
    let big = dir.path().join("big.json");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(MAX_SNAPSHOT_BYTES + 1).expect("grow the file");
    run(&big.display().to_string()).fails_with("more than the 32 MiB a topology snapshot may take");
}

/// Per-node commands sent in bulk (live: each node's as one pipeline, nodes at
/// once) keep one result per entry in order: a command a node refuses is an error
/// of its own naming the node, and the node's later commands still run.
#[test]
fn commands_applied_together_report_each_entry() {
    use redis_trib::backend::{Backend, NodeCmd};
    let lab = lab(3);
    let mut b = lab.backend();
    let (a0, a1, a2) = (lab.addr(0), lab.addr(1), lab.addr(2));
    let cmds = vec![
        (a0.clone(), NodeCmd::SetConfigEpoch(7)),
        (a1.clone(), NodeCmd::Replicate("f".repeat(40))),
        (a0.clone(), NodeCmd::AddSlots((0..100).collect(), 30)),
        (
            a1.clone(),
            NodeCmd::SetConfig("cluster-node-timeout".into(), "4321".into()),
        ),
        (a2.clone(), NodeCmd::Meet(a0.clone())),
    ];
    let results = b.apply_many(&cmds);
    assert_eq!(results.len(), 5);
    for i in [0, 2, 3, 4] {
        assert!(results[i].is_ok(), "entry {i}: {:?}", results[i]);
    }
    let refused = format!("{:#}", results[1].as_ref().expect_err("an unknown master"));
    assert!(refused.contains(&a1.to_string()), "{refused}");
    assert!(refused.contains("CLUSTER REPLICATE failed"), "{refused}");

    let me = b.view(&a0).unwrap();
    assert_eq!(me.myself().config_epoch, 7);
    assert_eq!(me.myself().assigned_slots, (0..100).collect::<Vec<u16>>());
    let timeout: Vec<String> = redis::from_redis_value(
        lab.cmd(1, &["CONFIG", "GET", "cluster-node-timeout"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        timeout.get(1).map(String::as_str),
        Some("4321"),
        "{timeout:?}"
    );
    poll(10, "node 0 to know node 2 after its meet", || {
        b.view(&a0).is_ok_and(|v| {
            v.nodes
                .iter()
                .any(|n| n.port == a2.port && !n.in_handshake())
        })
    });
}
