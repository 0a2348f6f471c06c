//! Property test: bad input never panics. Random realistic `CLUSTER NODES` replies
//! and topology snapshots, mutated (bytes, tokens, JSON fields, numbers), go
//! through the parser and the snapshot loader; whatever they accept goes through
//! the pure checks and plans, and (a share of them) through check, fix, rebalance,
//! reshard, quit, join and migrate on the simulated backend. Any panic fails the
//! test with the input that caused it.
//!
//! `FUZZ_SEED=<n>` and `FUZZ_CASES=<n>` change the seed and the number of cases.

use crate::addr::Addr;
use crate::backend::sim::Sim;
use crate::balance::{pick_slots, validate_plan, Holder};
use crate::ops;
use crate::render::{check_text, info_text, plan_text, topology_text, Painter};
use crate::topology::convergence_problem;
use crate::topology::{parse_cluster_nodes, Node, Topology, View};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Cases per test (two tests of text, two of JSON: 4 × 26,000 = 104,000).
const CASES: usize = 26_000;
/// One case in this many runs the pure checks and plans on what was accepted.
const PURE_EVERY: usize = 16;
/// One case in this many runs an operation on a simulated cluster (slower).
const SIM_EVERY: usize = 400;
/// One generated cluster in this many serves all 16384 slots (slower to check).
const FULL_EVERY: u8 = 16;

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

fn seed(default: u64) -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bases generated per test; each case mutates one of them (generating a fresh
/// one per case would cost more than the case itself).
const BASES: usize = 256;

/// Runs `case` on a base picked among [`BASES`] made by `make`, with a fresh
/// generator per case; a panic is reported with the seed of the case and the input
/// `case` produced. `case` tells whether the input was accepted (and went on to the
/// checks); at least a fifth must be, or the fuzz would test only the refusals.
fn run_cases<B>(
    name: &str,
    seed: u64,
    make: impl Fn(&mut fastrand::Rng) -> B,
    case: impl Fn(&mut fastrand::Rng, &B, &mut String, usize) -> bool,
) {
    let mut accepted = 0;
    let mut rng = fastrand::Rng::with_seed(seed);
    let bases: Vec<B> = (0..BASES).map(|_| make(&mut rng)).collect();
    for i in 0..cases() {
        let case_seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let mut rng = fastrand::Rng::with_seed(case_seed);
        let base = &bases[rng.usize(..bases.len())];
        let mut input = String::new();
        let outcome = catch_unwind(AssertUnwindSafe(|| case(&mut rng, base, &mut input, i)));
        match outcome {
            Ok(ok) => accepted += usize::from(ok),
            Err(panic) => {
                eprintln!("{name}: case {i} (seed {case_seed}) panicked on input:\n{input}");
                resume_unwind(panic);
            }
        }
    }
    eprintln!("{name}: {accepted} of {} inputs accepted", cases());
    assert!(
        accepted * 5 >= cases(),
        "{name}: only {accepted} inputs accepted"
    );
}

// ---------------------------------------------------------------- generation

fn random_id(rng: &mut fastrand::Rng) -> String {
    (0..40)
        .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
        .collect()
}

/// A realistic reply: 1-6 masters with 0-2 replicas each (see [`cluster_text`]).
fn cluster_nodes_text(rng: &mut fastrand::Rng) -> String {
    cluster_text(rng, 6, 2)
}

/// A realistic reply: 1 to `max_masters` masters with up to `max_replicas` replicas
/// each, slots split in ranges (some left out), Redis 3 / 4 / 7 address forms, IPv4
/// or IPv6, assorted flags and markers.
fn cluster_text(rng: &mut fastrand::Rng, max_masters: usize, max_replicas: usize) -> String {
    let masters = rng.usize(1..=max_masters);
    let replicas = rng.usize(0..=max_replicas);
    let n = masters * (1 + replicas);
    let ids: Vec<String> = (0..n).map(|_| random_id(rng)).collect();
    let myself = rng.usize(..n);
    let ipv6 = rng.u8(..8) == 0;
    let form = rng.u8(..3);
    // Boundaries of the masters' slot ranges: all 16384 slots now and then; most
    // cases serve a few dozen (anywhere, up to slot 16383), which keeps them cheap.
    let (low, high) = if rng.u8(..FULL_EVERY) == 0 {
        (0, 16384)
    } else {
        let low = [0, 16384 - 64, rng.u16(..16384 - 64)][rng.usize(..3)];
        (low, low + rng.u16(..=64))
    };
    let mut cuts: Vec<u16> = (1..masters).map(|_| rng.u16(low..=high)).collect();
    cuts.sort_unstable();
    cuts.insert(0, low);
    cuts.push(high);
    let mut out = String::new();
    for (i, id) in ids.iter().enumerate() {
        let master_of = (i >= masters).then(|| (i - masters) % masters);
        let port = 7000 + i as u16;
        let host = if ipv6 { "::1" } else { "127.0.0.1" };
        let addr = match form {
            0 => format!("{host}:{port}"),
            1 => format!("{host}:{port}@{}", port + 10000),
            _ => format!("{host}:{port}@{},node-{i}.example", port + 10000),
        };
        let mut flags = Vec::new();
        if i == myself {
            flags.push("myself");
        }
        flags.push(if master_of.is_some() {
            "slave"
        } else {
            "master"
        });
        match rng.u8(..20) {
            0 => flags.push("fail"),
            1 => flags.push("fail?"),
            2 => flags.push("nofailover"),
            3 => flags = vec!["handshake", "noaddr"],
            _ => {}
        }
        let master = match master_of {
            Some(m) if flags.contains(&"slave") => ids[m].clone(),
            _ => "-".to_string(),
        };
        let link = if rng.u8(..10) == 0 {
            "disconnected"
        } else {
            "connected"
        };
        let mut line = format!(
            "{id} {addr} {} {master} {} {} {} {link}",
            flags.join(","),
            rng.u64(..2_000_000_000_000),
            rng.u64(..2_000_000_000_000),
            rng.u64(..10)
        );
        if master_of.is_none() {
            let (first, end) = (cuts[i], cuts[i + 1]);
            if end > first {
                let last = end - 1;
                match rng.u8(..4) {
                    0 if last > first + 2 => {
                        // A hole and a lone slot.
                        line.push_str(&format!(" {first}-{} {last}", last - 2));
                    }
                    _ => line.push_str(&format!(" {first}-{last}")),
                }
                if rng.u8(..6) == 0 && n > 1 {
                    let peer = &ids[(i + rng.usize(1..n)) % n];
                    let slot = rng.u16(first..=last);
                    let arrow = if rng.bool() { "->-" } else { "-<-" };
                    line.push_str(&format!(" [{slot}{arrow}{peer}]"));
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Values that break naive parsers.
const TOKENS: &[&str] = &[
    "",
    "-",
    "0",
    "1",
    "16383",
    "16384",
    "65535",
    "65536",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "0-16383",
    "16383-0",
    "5-3",
    "0-65535",
    "[0->-]",
    "[16384->-ID]",
    "[65535-<-ID]",
    "[5->-ID]",
    "[5-<-ID]",
    "[->-]",
    "[5<>ID]",
    "[",
    "]",
    "é",
    "ééééééééé",
    "aé",
    "abc",
    "ID",
    "éééééééééééééééééééééééééééééééééééééééé",
    "07C37DFEB235213A872192D90877D0CD55635B91",
    "master",
    "slave",
    "myself,master",
    "myself,slave",
    "fail",
    "fail?",
    "handshake",
    "noaddr",
    "noflags",
    ":0@0",
    ":7000",
    "127.0.0.1:7000@17000",
    "[::1]:7000",
    "::1:7000@17000,host",
    "host:70000",
    "127.0.0.1:7000@99999",
    "127.0.0.1:-1",
    ",",
    "@",
    ":",
    "connected",
    "disconnected",
    "\u{0}",
    "\t",
    "\n",
    "\u{200b}",
];

fn token(rng: &mut fastrand::Rng, ids: &[String]) -> String {
    let t = TOKENS[rng.usize(..TOKENS.len())];
    let id = if ids.is_empty() {
        "x".to_string()
    } else {
        ids[rng.usize(..ids.len())].clone()
    };
    t.replace("ID", &id)
}

/// 1-4 random edits: bytes flipped, inserted, removed or duplicated; tokens
/// replaced; lines dropped or doubled.
fn mutate_text(rng: &mut fastrand::Rng, text: &str) -> String {
    let ids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').next().map(String::from))
        .collect();
    let mut s = text.to_string();
    for _ in 0..rng.usize(1..=4) {
        match rng.u8(..7) {
            0 | 1 => {
                // Replace one token.
                let mut parts: Vec<String> = s.split(' ').map(String::from).collect();
                let i = rng.usize(..parts.len());
                parts[i] = token(rng, &ids);
                s = parts.join(" ");
            }
            2 => {
                // Append a token to a line.
                let mut lines: Vec<String> = s.lines().map(String::from).collect();
                if !lines.is_empty() {
                    let i = rng.usize(..lines.len());
                    let t = token(rng, &ids);
                    lines[i].push(' ');
                    lines[i].push_str(&t);
                }
                s = lines.join("\n");
            }
            3 => {
                // Drop or double a line.
                let mut lines: Vec<String> = s.lines().map(String::from).collect();
                if !lines.is_empty() {
                    let i = rng.usize(..lines.len());
                    if rng.bool() {
                        lines.remove(i);
                    } else {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                    }
                }
                s = lines.join("\n");
            }
            _ => {
                let mut bytes = s.into_bytes();
                if bytes.is_empty() {
                    bytes.push(b'0');
                }
                let i = rng.usize(..bytes.len());
                match rng.u8(..4) {
                    0 => bytes[i] ^= 1 << rng.u8(..8),
                    1 => bytes.insert(i, b" -:@,[]>0123456789abcdef\xc3\xa9"[rng.usize(..26)]),
                    2 => {
                        bytes.remove(i);
                    }
                    _ => {
                        let end = (i + rng.usize(1..12)).min(bytes.len());
                        let piece = bytes[i..end].to_vec();
                        bytes.splice(i..i, piece);
                    }
                }
                s = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
    }
    s
}

/// A snapshot as `list --json` writes it, from a generated reply (smaller than the
/// replies: a JSON case costs more).
fn snapshot(rng: &mut fastrand::Rng) -> Option<Topology> {
    let nodes = parse_cluster_nodes(&cluster_text(rng, 4, 1)).ok()?;
    let entry = view_from(&nodes, 7000)?;
    let mut topo = Topology::assemble(&entry, Vec::new());
    for n in &topo.nodes {
        if rng.u8(..4) != 0 {
            topo.keys.insert(n.node_id.clone(), rng.u64(..1_000_000));
        }
        topo.states.insert(n.node_id.clone(), "ok".into());
    }
    Some(topo)
}

fn json_value(rng: &mut fastrand::Rng, ids: &[String]) -> Value {
    match rng.u8(..12) {
        0 => json!(rng.i64(..)),
        1 => [
            json!(0),
            json!(16383),
            json!(16384),
            json!(65535),
            json!(65536),
            json!(-1),
            json!(u64::MAX),
        ][rng.usize(..7)]
        .clone(),
        2 => json!([1e30, -0.5, 0.5, 1e-300][rng.usize(..4)]),
        3 => Value::Null,
        4 => json!(rng.bool()),
        5 => json!([]),
        6 => json!({}),
        7 => json!([token(rng, ids)]),
        8 => json!([[json_value_number(rng), token(rng, ids)]]),
        _ => json!(token(rng, ids)),
    }
}

fn json_value_number(rng: &mut fastrand::Rng) -> Value {
    json!([0, 5, 16383, 16384, 65535, 65536, -1, i64::MAX][rng.usize(..8)])
}

const NODE_FIELDS: &[&str] = &[
    "node_id",
    "host",
    "port",
    "cport",
    "hostname",
    "flags",
    "role_in_cluster",
    "master_id",
    "ping_sent",
    "pong_recv",
    "config_epoch",
    "connected",
    "assigned_slots",
    "slots_migrating",
    "slots_importing",
];

/// 1-3 edits of the document: a field set to an odd value or removed, a marker or
/// a replica link added, a node doubled or dropped, a key count made huge, or (now
/// and then) the text itself damaged.
fn mutate_json(rng: &mut fastrand::Rng, doc: &mut Value) -> Option<String> {
    let ids: Vec<String> = doc["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .filter_map(|n| n["node_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for _ in 0..rng.usize(1..=3) {
        // Node edits index only nodes that exist (serde_json panics otherwise).
        let count = doc["nodes"].as_array().map_or(0, Vec::len);
        let i = rng.usize(..count.max(1));
        match rng.u8(..10) {
            0..=3 if count > 0 => {
                let field = NODE_FIELDS[rng.usize(..NODE_FIELDS.len())];
                doc["nodes"][i][field] = json_value(rng, &ids);
            }
            4 if count > 0 => {
                let field = NODE_FIELDS[rng.usize(..NODE_FIELDS.len())];
                if let Some(n) = doc["nodes"][i].as_object_mut() {
                    n.remove(field);
                }
            }
            5 if count > 0 => {
                let field = if rng.bool() {
                    "slots_migrating"
                } else {
                    "slots_importing"
                };
                let peer = ids.get(rng.usize(..ids.len().max(1))).cloned();
                let slot = if rng.bool() {
                    json!(rng.u16(..16384))
                } else {
                    json_value_number(rng)
                };
                if let Some(list) = doc["nodes"][i][field].as_array_mut() {
                    list.push(json!([slot, peer]));
                }
            }
            6 if count > 1 => {
                // Make node i a replica of node j.
                let j = rng.usize(..count);
                let node = &mut doc["nodes"][i];
                node["role_in_cluster"] = json!("slave");
                node["flags"] = json!(["slave"]);
                node["master_id"] = json!(ids.get(j));
                if rng.bool() {
                    node["assigned_slots"] = json!([]);
                }
            }
            7 if count > 0 => {
                if let Some(ns) = doc["nodes"].as_array_mut() {
                    if rng.bool() {
                        let n = ns[i].clone();
                        ns.push(n);
                    } else {
                        ns.remove(i);
                    }
                }
            }
            8 => {
                let id = ids.get(i).cloned().unwrap_or_default();
                doc["keys"][id] = json!([u64::MAX, 1 << 40, (1u64 << 40) + 1][rng.usize(..3)]);
            }
            _ => {
                let text = doc.to_string();
                let mutated = mutate_text(rng, &text);
                return Some(mutated);
            }
        }
    }
    None
}

// ---------------------------------------------------------------- exercising

/// A view of `nodes` as the node flagged `myself` reports it (none without one).
fn view_from(nodes: &[Node], port: u16) -> Option<View> {
    if nodes.iter().filter(|n| n.is_myself()).count() != 1 {
        return None;
    }
    Some(View {
        addr: Addr::new("127.0.0.1", port),
        nodes: nodes.to_vec(),
        cluster_state: "ok".into(),
        current_epoch: 1,
        keys: 0,
    })
}

/// The same nodes as node `i` would report them (it is `myself`).
fn view_as(nodes: &[Node], i: usize) -> Option<View> {
    let mut nodes = nodes.to_vec();
    for n in nodes.iter_mut() {
        n.flags.retain(|f| f != "myself");
    }
    nodes.get_mut(i)?.flags.push("myself".into());
    view_from(&nodes, 7000 + i as u16)
}

/// Something a user could type to name a node.
fn node_spec(rng: &mut fastrand::Rng, topo: &Topology) -> String {
    let n = topo.nodes.get(rng.usize(..topo.nodes.len().max(1)));
    match (rng.u8(..5), n) {
        (0, Some(n)) => n.node_id.clone(),
        (1, Some(n)) => n.node_id.chars().take(rng.usize(..10)).collect(),
        (2, Some(n)) => n.addr().to_string(),
        _ => token(rng, &[]),
    }
}

fn weight(rng: &mut fastrand::Rng) -> f64 {
    [0.0, 1.0, 2.5, 1e-300, 1e300, f64::MAX, 1e6][rng.usize(..7)]
}

/// What costs little per node: names, addresses, markers, the checks of a snapshot.
fn exercise_cheap(rng: &mut fastrand::Rng, topo: &Topology) {
    let _ = topo.open_slots();
    let _ = topo.total_keys();
    let _ = topo.live_masters().count();
    for n in &topo.nodes {
        let _ = topo.describe(&n.node_id);
        let _ = topo.replicas_of(&n.node_id).count();
        let _ = n.addr().to_string();
    }
    let _ = topo.describe(&token(rng, &[]));
    let _ = topo.validate();
}

/// Everything pure that runs on a topology.
fn exercise_pure(rng: &mut fastrand::Rng, topo: &Topology) {
    exercise_cheap(rng, topo);
    let _ = topo.uncovered_slots();
    let _ = topo.failed_slots();
    let info = ops::info(topo);
    let _ = info_text(&info);
    let _ = topology_text(topo, rng.bool(), Painter { color: rng.bool() });
    if let Ok(text) = serde_json::to_string(topo) {
        let _ = Topology::from_json(&text);
    }

    let opts = ops::RebalanceOpts {
        weights: (0..rng.usize(..3))
            .map(|_| (node_spec(rng, topo), weight(rng)))
            .collect(),
        threshold_pct: [0.0, 2.0, -1.0, 1e300][rng.usize(..4)],
        use_empty_masters: rng.bool(),
    };
    let holders: Vec<Holder> = topo
        .masters()
        .map(|m| Holder {
            id: m.node_id.clone(),
            slots: m.assigned_slots.len(),
            weight: 1.0,
        })
        .collect();
    let held: BTreeMap<String, Vec<u16>> = topo
        .masters()
        .map(|m| (m.node_id.clone(), m.assigned_slots.clone()))
        .collect();
    let from: Vec<String> = (0..rng.usize(..3)).map(|_| node_spec(rng, topo)).collect();
    let count = [0, 1, 100, 16384, usize::MAX][rng.usize(..5)];
    let plans = [
        ops::rebalance_plan(topo, &opts),
        ops::reshard_plan(topo, &from, &node_spec(rng, topo), count),
    ];
    for moves in plans.into_iter().flatten() {
        if validate_plan(&holders, &moves).is_ok() {
            let _ = pick_slots(&held, &moves);
        }
    }
}

/// The operations, each on a fresh simulated copy of `topo`.
fn exercise_sim(rng: &mut fastrand::Rng, topo: &Topology) {
    // The simulation resolves host names; only IP addresses keep the test offline.
    if topo.nodes.is_empty()
        || topo
            .nodes
            .iter()
            .any(|n| n.host.parse::<std::net::IpAddr>().is_err())
    {
        return;
    }
    let pick = |rng: &mut fastrand::Rng| topo.nodes[rng.usize(..topo.nodes.len())].addr();
    let free = Addr::new("10.9.9.9", 7000);

    let mut sim = Sim::offline(topo);
    let at = pick(rng);
    match rng.u8(..7) {
        0 => {
            if let Ok(report) = ops::check(&mut sim, &at) {
                let _ = check_text(&report, Painter { color: false });
            }
        }
        1 => {
            let _ = ops::fix(&mut sim, &at);
        }
        2 => {
            let opts = ops::RebalanceOpts {
                use_empty_masters: rng.bool(),
                ..ops::RebalanceOpts::default()
            };
            let _ = ops::rebalance(&mut sim, &at, &opts);
        }
        3 => {
            let from: Vec<String> = (0..rng.usize(..2)).map(|_| node_spec(rng, topo)).collect();
            let to = node_spec(rng, topo);
            let count = [1, 100, 16384][rng.usize(..3)];
            let _ = ops::reshard(&mut sim, &at, &from, &to, count);
        }
        4 => {
            let _ = ops::quit(&mut sim, &at);
        }
        5 => {
            let _ = ops::join(&mut sim, &at, &free, &mut ops::DefaultBalancer);
        }
        _ => {
            let slots: Vec<u16> = (0..rng.usize(..4)).map(|_| rng.u16(..16384)).collect();
            let _ = ops::migrate_slots(&mut sim, &at, &pick(rng), &slots);
            let _ = ops::replicate(&mut sim, &pick(rng), &pick(rng));
        }
    }
    let _ = plan_text(sim.steps());
}

/// A parsed reply as the operations would see it: assembled from the views of the
/// nodes (each its own `myself`) when it has a `myself` line, else taken as is.
fn topology_of(nodes: &[Node]) -> Topology {
    let Some(entry) = view_from(nodes, 7000) else {
        let mut topo = Topology {
            nodes: nodes.to_vec(),
            ..Topology::default()
        };
        topo.sort();
        return topo;
    };
    let mut views = vec![entry.clone()];
    let mut others = Vec::new();
    // A few other nodes' views (all of them would make the case slow).
    for (i, n) in nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.is_myself())
        .take(3)
    {
        match view_as(nodes, i) {
            Some(v) => {
                views.push(v.clone());
                others.push((n.node_id.clone(), Ok(v)));
            }
            None => others.push((n.node_id.clone(), Err("unreachable".to_string()))),
        }
    }
    let _ = convergence_problem(&views);
    Topology::assemble(&entry, others)
}

fn text_case(rng: &mut fastrand::Rng, base: &str, input: &mut String, i: usize) -> bool {
    *input = if rng.u8(..4) == 0 {
        base.to_string()
    } else {
        mutate_text(rng, base)
    };
    let Ok(nodes) = parse_cluster_nodes(input) else {
        return false;
    };
    if !i.is_multiple_of(PURE_EVERY) {
        let topo = Topology {
            nodes,
            ..Topology::default()
        };
        exercise_cheap(rng, &topo);
        return true;
    }
    let topo = topology_of(&nodes);
    exercise_pure(rng, &topo);
    if i.is_multiple_of(SIM_EVERY) {
        exercise_sim(rng, &topo);
    }
    true
}

/// A snapshot document to mutate (`null` in the rare case generation failed).
fn snapshot_doc(rng: &mut fastrand::Rng) -> Value {
    snapshot(rng)
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null)
}

fn json_case(rng: &mut fastrand::Rng, base: &Value, input: &mut String, i: usize) -> bool {
    let mut doc = base.clone();
    *input = match rng.u8(..4) {
        0 => doc.to_string(),
        _ => mutate_json(rng, &mut doc).unwrap_or_else(|| doc.to_string()),
    };
    let Ok(topo) = Topology::from_json(input) else {
        return false;
    };
    if !i.is_multiple_of(PURE_EVERY) {
        exercise_cheap(rng, &topo);
        return true;
    }
    exercise_pure(rng, &topo);
    if i.is_multiple_of(SIM_EVERY) {
        exercise_sim(rng, &topo);
    }
    true
}

#[test]
fn fuzz_cluster_nodes_text_a() {
    run_cases(
        "cluster nodes text",
        seed(1),
        cluster_nodes_text,
        |rng, base: &String, input, i| text_case(rng, base, input, i),
    );
}

#[test]
fn fuzz_cluster_nodes_text_b() {
    run_cases(
        "cluster nodes text",
        seed(2),
        cluster_nodes_text,
        |rng, base: &String, input, i| text_case(rng, base, input, i),
    );
}

#[test]
fn fuzz_topology_json_a() {
    run_cases("topology json", seed(3), snapshot_doc, json_case);
}

#[test]
fn fuzz_topology_json_b() {
    run_cases("topology json", seed(4), snapshot_doc, json_case);
}

#[test]
fn generated_inputs_are_mostly_valid() {
    // The fuzz is only as good as its bases: unmutated, they must parse and load.
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..200 {
        let text = cluster_nodes_text(&mut rng);
        let nodes = parse_cluster_nodes(&text).unwrap();
        let topo = topology_of(&nodes);
        Topology::from_json(&serde_json::to_string(&topo).unwrap()).unwrap();
    }
}

#[test]
fn fuzz_typed_arguments() {
    // What operators type: addresses (IPv6 too) and slot lists, mutated.
    let bases = [
        "127.0.0.1:7000",
        "[::1]:7000",
        "::1:7000",
        "node-a.example:6379",
        "0 2 4-7",
        "0,16383",
        "0-16383",
    ];
    let mut rng = fastrand::Rng::with_seed(seed(5));
    for _ in 0..cases() / 4 {
        let base = bases[rng.usize(..bases.len())];
        let text = mutate_text(&mut rng, base);
        if let Ok(addr) = Addr::parse(&text) {
            assert_eq!(Addr::parse(&addr.to_string()).ok(), Some(addr), "{text:?}");
        }
        if let Ok(slots) = crate::slots::parse_slot_list(&[text.as_str()]) {
            assert!(slots.windows(2).all(|w| w[0] < w[1]), "{text:?}");
            let _ = crate::slots::format_ranges(&slots);
        }
    }
}
