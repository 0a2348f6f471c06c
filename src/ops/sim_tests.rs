//! Every operation run against the simulated backend from a fixture snapshot (the
//! `list --json` document `run --topology` loads), in `cargo test --lib`: the plan
//! it records ([`Sim::steps`]), the slot map and roles read back through the backend
//! afterwards, and its refusals (the error names the problem, and the simulation is
//! exactly as it was: no step recorded, every watched node's view unchanged).
//!
//! Fixtures: [`Snap::cluster`] makes N masters with `split_evenly` slot ranges and R
//! replicas each, masters on ports 7000.., replicas after them, node ids
//! `<port>abab...` (40 hex characters); edits add flags, markers, keys. Ports from
//! [`FREE`] up are in no snapshot: the offline simulation makes them free nodes.

use super::*;
use crate::backend::sim::Sim;
use crate::backend::FailoverMode;
use crate::balance::Move;
use crate::engine::key_copy::ImportOpts;
use crate::slots::split_evenly;
use serde_json::{json, Value};
use std::sync::mpsc;

const HOST: &str = "127.0.0.1";
const BASE: u16 = 7000;
/// Ports from here up are in no snapshot: free nodes.
const FREE: u16 = 7100;

/// The node id of the fixture node on `port` (readable in messages: `7000abab`).
fn id(port: u16) -> String {
    format!("{port:04}{}", "ab".repeat(18))
}

fn at(port: u16) -> Addr {
    Addr::new(HOST, port)
}

// ------------------------------------------------------------------ fixtures

/// A topology snapshot being written.
struct Snap {
    doc: Value,
}

impl Snap {
    /// `masters` masters owning the slots split evenly in port order, `replicas`
    /// replicas each; every master holds 100 keys.
    fn cluster(masters: u16, replicas: u16) -> Snap {
        let parts = split_evenly(usize::from(masters));
        let mut nodes = Vec::new();
        let mut keys = serde_json::Map::new();
        for (i, slots) in (0..masters).zip(&parts) {
            let port = BASE + i;
            let range = format!("{}-{}", slots[0], slots[slots.len() - 1]);
            nodes.push(node_json(port, None, &[&range]));
            keys.insert(id(port), json!(100));
        }
        for i in 0..masters {
            for j in 0..replicas {
                let port = BASE + masters + i * replicas + j;
                nodes.push(node_json(port, Some(BASE + i), &[]));
                keys.insert(id(port), json!(100));
            }
        }
        Snap {
            doc: json!({
                "entry_id": id(BASE),
                "nodes": nodes,
                "keys": keys,
                "states": {},
                "unreachable": {}
            }),
        }
    }

    /// A snapshot given as text.
    fn text(text: &str) -> Snap {
        Snap {
            doc: serde_json::from_str(text).expect("fixture JSON"),
        }
    }

    fn node(&mut self, port: u16) -> &mut Value {
        self.doc["nodes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|n| n["port"] == port)
            .unwrap_or_else(|| panic!("no fixture node on port {port}"))
    }

    /// Adds a master on `port` owning `ranges` (none: an empty master).
    fn add_master(mut self, port: u16, ranges: &[&str]) -> Snap {
        self.doc["nodes"]
            .as_array_mut()
            .unwrap()
            .push(node_json(port, None, ranges));
        self.doc["keys"][id(port)] = json!(0);
        self
    }

    fn slots(mut self, port: u16, ranges: &[&str]) -> Snap {
        self.node(port)["assigned_slots"] = json!(ranges);
        self
    }

    fn flag(mut self, port: u16, flag: &str) -> Snap {
        self.node(port)["flags"]
            .as_array_mut()
            .unwrap()
            .push(json!(flag));
        self
    }

    fn migrating(mut self, port: u16, slot: u16, to: u16) -> Snap {
        self.node(port)["slots_migrating"]
            .as_array_mut()
            .unwrap()
            .push(json!([slot, id(to)]));
        self
    }

    fn importing(mut self, port: u16, slot: u16, from: u16) -> Snap {
        self.node(port)["slots_importing"]
            .as_array_mut()
            .unwrap()
            .push(json!([slot, id(from)]));
        self
    }

    fn keys(mut self, port: u16, keys: u64) -> Snap {
        self.doc["keys"][id(port)] = json!(keys);
        self
    }

    /// The simulation `run --topology` would plan on: the snapshot goes through the
    /// same loader and checks.
    fn sim(&self) -> Sim {
        let topo = Topology::from_json(&self.doc.to_string()).expect("the fixture loads");
        Sim::offline(&topo)
    }
}

fn node_json(port: u16, master: Option<u16>, ranges: &[&str]) -> Value {
    let role = if master.is_some() { "slave" } else { "master" };
    json!({
        "node_id": id(port), "host": HOST, "port": port, "cport": port + 10000,
        "hostname": null, "flags": [role], "role_in_cluster": role,
        "master_id": master.map(id), "ping_sent": 0, "pong_recv": 0,
        "config_epoch": u64::from(port - BASE + 1), "connected": true,
        "assigned_slots": ranges, "slots_migrating": [], "slots_importing": []
    })
}

/// Two masters, one replica of the first: a snapshot as `list --json` writes it.
const TWO_MASTERS_ONE_REPLICA: &str = r#"{
  "entry_id": "7000abababababababababababababababababab",
  "nodes": [
    {"node_id": "7000abababababababababababababababababab", "host": "127.0.0.1", "port": 7000,
     "cport": 17000, "hostname": null, "flags": ["master"], "role_in_cluster": "master",
     "master_id": null, "ping_sent": 0, "pong_recv": 0, "config_epoch": 1, "connected": true,
     "assigned_slots": ["0-8191"], "slots_migrating": [], "slots_importing": []},
    {"node_id": "7001abababababababababababababababababab", "host": "127.0.0.1", "port": 7001,
     "cport": 17001, "hostname": null, "flags": ["master"], "role_in_cluster": "master",
     "master_id": null, "ping_sent": 0, "pong_recv": 0, "config_epoch": 2, "connected": true,
     "assigned_slots": ["8192-16383"], "slots_migrating": [], "slots_importing": []},
    {"node_id": "7002abababababababababababababababababab", "host": "127.0.0.1", "port": 7002,
     "cport": 17002, "hostname": null, "flags": ["slave"], "role_in_cluster": "slave",
     "master_id": "7000abababababababababababababababababab", "ping_sent": 0, "pong_recv": 0,
     "config_epoch": 1, "connected": true,
     "assigned_slots": [], "slots_migrating": [], "slots_importing": []}
  ],
  "keys": {"7000abababababababababababababababababab": 10,
           "7001abababababababababababababababababab": 20,
           "7002abababababababababababababababababab": 10},
  "states": {},
  "unreachable": {}
}"#;

// ------------------------------------------------------------------ read back

/// The cluster `port` belongs to, read through the backend.
fn read(sim: &mut Sim, port: u16) -> Topology {
    topology(sim, &at(port)).expect("the cluster reads")
}

fn node_on(t: &Topology, port: u16) -> &Node {
    t.nodes
        .iter()
        .find(|n| n.port == port)
        .unwrap_or_else(|| panic!("no node on port {port} in the cluster"))
}

fn held(t: &Topology, port: u16) -> Vec<u16> {
    node_on(t, port).assigned_slots.clone()
}

/// (port, slot count) of every master, in port order.
fn counts(t: &Topology) -> Vec<(u16, usize)> {
    let mut out: Vec<_> = t
        .masters()
        .map(|m| (m.port, m.assigned_slots.len()))
        .collect();
    out.sort_unstable();
    out
}

/// The port of the master `port` replicates (`None`: it is a master).
fn master_of(t: &Topology, port: u16) -> Option<u16> {
    let n = node_on(t, port);
    if n.is_master() {
        return None;
    }
    let m = n.master_id.as_deref().expect("a replica names its master");
    Some(t.node(m).expect("its master is known").port)
}

fn ports(t: &Topology) -> Vec<u16> {
    let mut p: Vec<u16> = t.nodes.iter().map(|n| n.port).collect();
    p.sort_unstable();
    p
}

/// The node on `port` knows no other node and serves nothing.
fn assert_free(sim: &mut Sim, port: u16) {
    let v = sim.view(&at(port)).unwrap();
    assert!(v.is_alone(), "{port} still knows {} nodes", v.nodes.len());
    assert!(v.myself().assigned_slots.is_empty());
    assert!(v.myself().is_master());
}

// ------------------------------------------------------------------ the plan

fn kinds(sim: &Sim) -> Vec<&str> {
    sim.steps().iter().map(|s| s.action.as_str()).collect()
}

/// How many steps of kind `action`.
fn count_of(sim: &Sim, action: &str) -> usize {
    kinds(sim).iter().filter(|k| **k == action).count()
}

/// Every pair of ports a recorded meet step introduces, each as (lower, higher), sorted.
fn met_pairs(sim: &Sim) -> Vec<(u16, u16)> {
    let mut pairs = Vec::new();
    for s in sim.steps().iter().filter(|s| s.action == "meet") {
        let from = port_of(&s.node);
        for word in s.detail.split_whitespace() {
            if let Ok(other) = Addr::parse(word) {
                pairs.push((from.min(other.port), from.max(other.port)));
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

fn port_of(addr: &str) -> u16 {
    Addr::parse(addr).expect("a step names an address").port
}

/// The slot moves recorded: (source port, destination port, slot count).
fn moves(sim: &Sim) -> Vec<(u16, u16, usize)> {
    sim.steps()
        .iter()
        .filter(|s| s.action == "move_slots")
        .map(|s| {
            (
                port_of(s.src.as_deref().expect("a move has a source")),
                port_of(s.dst.as_deref().expect("a move has a destination")),
                s.count.expect("a move counts its slots"),
            )
        })
        .collect()
}

/// (node port, slot count) of each step of kind `action`.
fn steps_of(sim: &Sim, action: &str) -> Vec<(u16, Option<usize>)> {
    sim.steps()
        .iter()
        .filter(|s| s.action == action)
        .map(|s| (port_of(&s.node), s.count))
        .collect()
}

// ------------------------------------------------------------------ refusals

/// What the nodes on `watch` report, to compare before and after a refusal.
fn fingerprint(sim: &mut Sim, watch: &[u16]) -> Vec<String> {
    watch
        .iter()
        .map(|&p| match sim.view(&at(p)) {
            Ok(v) => serde_json::to_string(&v).unwrap(),
            Err(e) => format!("error: {e:#}"),
        })
        .collect()
}

/// Runs `op`, which must fail with an error containing `needle`, and checks it
/// recorded no step and left every node of `watch` as it was.
fn refused<T>(sim: &mut Sim, watch: &[u16], needle: &str, op: impl FnOnce(&mut Sim) -> Result<T>) {
    let steps = sim.steps().len();
    let before = fingerprint(sim, watch);
    let err = match op(sim) {
        Ok(_) => panic!("accepted; expected a refusal naming {needle:?}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(
        sim.steps()[steps..],
        [],
        "the refusal ({err}) recorded steps"
    );
    assert_eq!(
        fingerprint(sim, watch),
        before,
        "the refusal ({err}) changed the cluster"
    );
}

/// Ports 7000.. of a fixture with `n` nodes.
fn all(n: u16) -> Vec<u16> {
    (BASE..BASE + n).collect()
}

/// Collects the events the simulation emits.
fn tap(sim: &mut Sim) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    sim.set_tap(Some(tx));
    rx
}

fn warnings(rx: &mpsc::Receiver<Event>) -> Vec<String> {
    rx.try_iter()
        .filter_map(|e| match e {
            Event::Warning(w) => Some(w),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ start

#[test]
fn start_gives_one_free_node_every_slot() {
    let mut sim = Snap::cluster(3, 0).sim();
    start(&mut sim, &at(FREE), 1000).unwrap();
    assert_eq!(steps_of(&sim, "add_slots"), [(FREE, Some(16384))]);
    assert_eq!(kinds(&sim), ["add_slots"], "one node: no epoch, no meet");
    let v = sim.view(&at(FREE)).unwrap();
    assert_eq!(v.myself().assigned_slots.len(), 16384);
    assert_eq!(v.cluster_state, "ok");
    // The snapshot's cluster is another cluster: untouched.
    assert_eq!(
        counts(&read(&mut sim, BASE)),
        [(7000, 5462), (7001, 5461), (7002, 5461)]
    );
}

#[test]
fn start_multi_splits_slots_in_order_meets_every_pair_and_counts_duplicates_once() {
    let mut sim = Snap::cluster(3, 0).sim();
    let nodes = [at(FREE), at(FREE + 1), at(FREE + 2), at(FREE)];
    start_multi(&mut sim, &nodes, 16384).unwrap();
    assert_eq!(count_of(&sim, "set_config_epoch"), 3);
    assert_eq!(
        steps_of(&sim, "add_slots"),
        [
            (FREE, Some(5462)),
            (FREE + 1, Some(5461)),
            (FREE + 2, Some(5461))
        ]
    );
    assert_eq!(met_pairs(&sim).len(), 3, "every pair once");
    let t = read(&mut sim, FREE + 2);
    assert_eq!(
        counts(&t),
        [(FREE, 5462), (FREE + 1, 5461), (FREE + 2, 5461)]
    );
    assert_eq!(held(&t, FREE + 1)[0], 5462);
    // Distinct config epochs.
    let mut epochs: Vec<u64> = t.nodes.iter().map(|n| n.config_epoch).collect();
    epochs.dedup();
    assert_eq!(epochs.len(), 3);
}

#[test]
fn start_refuses_bad_arguments_and_nodes_that_are_not_free() {
    let mut sim = Snap::cluster(3, 0).sim();
    let watch = [BASE, FREE, FREE + 1];
    refused(&mut sim, &watch, "give at least one node", |s| {
        start_multi(s, &[], 16384)
    });
    refused(&mut sim, &watch, "--max-slots must be at least 1", |s| {
        start(s, &at(FREE), 0)
    });
    // The free node comes first: nothing is done to it before the member is refused.
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7000 is already in a cluster",
        |s| start_multi(s, &[at(FREE), at(BASE)], 16384),
    );
}

#[test]
fn start_refuses_a_lone_node_that_serves_slots_or_holds_keys() {
    let lone = |ranges: &[&str], keys: u64| {
        let mut doc = Snap::cluster(1, 0).slots(BASE, ranges).keys(BASE, keys);
        doc.node(BASE)["config_epoch"] = json!(0);
        doc.sim()
    };
    let mut sim = lone(&["0-99"], 0);
    refused(
        &mut sim,
        &[BASE],
        "127.0.0.1:7000 already serves slots 0-99",
        |s| start(s, &at(BASE), 16384),
    );
    let mut sim = lone(&[], 5);
    refused(&mut sim, &[BASE], "127.0.0.1:7000 holds 5 keys", |s| {
        start(s, &at(BASE), 16384)
    });
}

// ------------------------------------------------------------------ create

#[test]
fn create_makes_three_masters_and_three_replicas_from_six_free_nodes() {
    let mut sim = Snap::cluster(3, 0).sim();
    let nodes: Vec<Addr> = (FREE..FREE + 6).map(at).collect();
    create(&mut sim, &nodes, 1, 16384).unwrap();
    assert_eq!(count_of(&sim, "set_config_epoch"), 6);
    let added: Vec<Option<usize>> = steps_of(&sim, "add_slots").iter().map(|s| s.1).collect();
    assert_eq!(added, [Some(5462), Some(5461), Some(5461)]);
    assert_eq!(
        count_of(&sim, "meet"),
        6,
        "one meet step per node that sends any"
    );
    let mut pairs = met_pairs(&sim);
    assert_eq!(pairs.len(), 15, "every pair of 6 once: {pairs:?}");
    pairs.dedup();
    assert_eq!(pairs.len(), 15, "a pair met twice");
    assert_eq!(count_of(&sim, "replicate"), 3);
    let t = read(&mut sim, FREE);
    assert_eq!(t.nodes.len(), 6);
    assert_eq!(t.masters().count(), 3);
    assert!(t.uncovered_slots().is_empty());
    for r in t.nodes.iter().filter(|n| !n.is_master()) {
        let m = master_of(&t, r.port).unwrap();
        assert_ne!(m, r.port);
        assert!(
            !held(&t, m).is_empty(),
            "{} replicates a slotless node",
            r.port
        );
    }
    // One replica per master.
    let mut of: Vec<u16> = t
        .nodes
        .iter()
        .filter_map(|n| master_of(&t, n.port))
        .collect();
    of.sort_unstable();
    of.dedup();
    assert_eq!(of.len(), 3);
}

#[test]
fn create_refuses_too_few_masters_before_contacting_any_node_and_a_member() {
    let mut sim = Snap::cluster(3, 0).sim();
    let five: Vec<Addr> = (FREE..FREE + 5).map(at).collect();
    refused(
        &mut sim,
        &[BASE],
        "5 nodes with --replicas 1 make 2 masters; a cluster needs at least 3 masters",
        |s| create(s, &five, 1, 16384),
    );
    let mut with_member: Vec<Addr> = (FREE..FREE + 2).map(at).collect();
    with_member.push(at(BASE + 1));
    let watch = [BASE, BASE + 1, FREE, FREE + 1];
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7001 is already in a cluster",
        |s| create(s, &with_member, 0, 16384),
    );
    refused(&mut sim, &watch, "--max-slots must be at least 1", |s| {
        create(s, &five, 0, 0)
    });
}

// ------------------------------------------------------------------ join

#[test]
fn join_meets_every_member_then_moves_the_new_master_its_fair_share() {
    let mut sim = Snap::cluster(3, 0).sim();
    join(&mut sim, &at(BASE), &at(FREE), &mut DefaultBalancer).unwrap();
    assert_eq!(
        steps_of(&sim, "meet"),
        [(FREE, None), (FREE, None), (FREE, None)],
        "the new node meets each of the 3 members"
    );
    assert_eq!(
        moves(&sim),
        [(7000, FREE, 1366), (7001, FREE, 1365), (7002, FREE, 1365)]
    );
    let t = read(&mut sim, BASE);
    assert_eq!(
        counts(&t),
        [(7000, 4096), (7001, 4096), (7002, 4096), (FREE, 4096)]
    );
    assert!(t.uncovered_slots().is_empty());
    // Keys follow their slots (in proportion, in the simulation): none lost.
    assert_eq!(t.total_keys(), 300);
}

#[test]
fn join_no_load_adds_an_empty_master() {
    let mut sim = Snap::cluster(3, 0).sim();
    let after = join_no_load(&mut sim, &at(BASE), &at(FREE)).unwrap();
    assert_eq!(kinds(&sim), ["meet", "meet", "meet"]);
    assert_eq!(ports(&after), [7000, 7001, 7002, FREE]);
    let t = read(&mut sim, FREE);
    assert_eq!(
        counts(&t),
        [(7000, 5462), (7001, 5461), (7002, 5461), (FREE, 0)]
    );
}

#[test]
fn join_no_load_adds_several_empty_masters_at_once_or_none() {
    let mut sim = Snap::cluster(3, 0).sim();
    let news = [at(FREE), at(FREE + 1), at(FREE + 2)];
    let after = join_no_load_many(&mut sim, &at(BASE), &news).unwrap();
    assert_eq!(ports(&after), [7000, 7001, 7002, FREE, FREE + 1, FREE + 2]);
    // Each new node meets the 3 members and the new nodes after it.
    assert_eq!(count_of(&sim, "meet"), 3 * 3 + 2 + 1);
    let t = read(&mut sim, FREE + 2);
    assert_eq!(t.nodes.len(), 6);
    assert_eq!(
        t.masters().filter(|m| m.assigned_slots.is_empty()).count(),
        3
    );
    // One of them not free (or given twice): refused before anything is met.
    let watch = [BASE, BASE + 1, BASE + 2, FREE, FREE + 1];
    let mut sim = Snap::cluster(3, 0).sim();
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7002 is already in a cluster",
        |s| join_no_load_many(s, &at(BASE), &[at(FREE), at(BASE + 2)]),
    );
    let mut sim = Snap::cluster(3, 0).sim();
    refused(&mut sim, &watch, "127.0.0.1:7100 is given twice", |s| {
        join_no_load_many(s, &at(BASE), &[at(FREE), at(FREE + 1), at(FREE)])
    });
}

#[test]
fn join_goes_on_past_a_dead_replica_with_a_warning() {
    let mut sim = Snap::cluster(3, 1).flag(7003, "fail").sim();
    let events = tap(&mut sim);
    join_no_load(&mut sim, &at(BASE), &at(FREE)).unwrap();
    let w = warnings(&events);
    assert!(
        w.iter()
            .any(|w| w.contains("replica 127.0.0.1:7003") && w.contains("going on without it")),
        "{w:?}"
    );
    // The dead replica is not met.
    assert_eq!(count_of(&sim, "meet"), 5);
}

#[test]
fn join_refuses_an_unhealthy_cluster_a_member_and_a_bad_balancer_plan() {
    let watch = [BASE, BASE + 1, BASE + 2, FREE];
    let mut sim = Snap::cluster(3, 0).flag(7002, "fail").sim();
    refused(
        &mut sim,
        &watch,
        "cannot add a node: master 127.0.0.1:7002 (7002abab) owns slots 10923-16383 and is flagged master,fail",
        |s| join(s, &at(BASE), &at(FREE), &mut DefaultBalancer),
    );
    let mut sim = Snap::cluster(3, 0).migrating(7000, 7, 7001).sim();
    refused(&mut sim, &watch, "cannot add a node: slot 7 is open", |s| {
        join_no_load(s, &at(BASE), &at(FREE))
    });
    let mut sim = Snap::cluster(3, 0).slots(7002, &["10923-16000"]).sim();
    refused(
        &mut sim,
        &watch,
        "cannot add a node: slots 16001-16383 are not served by any node",
        |s| join(s, &at(BASE), &at(FREE), &mut DefaultBalancer),
    );
    let mut sim = Snap::cluster(3, 0).sim();
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7002 is already in a cluster",
        |s| join(s, &at(BASE), &at(BASE + 2), &mut DefaultBalancer),
    );
    // A balancer whose plan does not add up refuses the join before any meet.
    struct Greedy;
    impl Balancer for Greedy {
        fn plan(&mut self, masters: &[Node], new: &Node, _w: &[f64]) -> Result<Vec<Move>> {
            Ok(vec![Move {
                src: masters[0].node_id.clone(),
                dst: new.node_id.clone(),
                count: 99_999,
            }])
        }
    }
    refused(&mut sim, &watch, "99999", |s| {
        join(s, &at(BASE), &at(FREE), &mut Greedy)
    });
}

// ------------------------------------------------------------------ replicate

#[test]
fn replicate_attaches_a_free_node_to_a_master_or_to_a_replicas_master() {
    let mut sim = Snap::cluster(3, 1).sim();
    replicate(&mut sim, &at(7001), &at(FREE)).unwrap();
    assert_eq!(
        count_of(&sim, "meet"),
        6,
        "the free node meets every member"
    );
    assert_eq!(steps_of(&sim, "replicate"), [(FREE, None)]);
    let t = read(&mut sim, BASE);
    assert_eq!(master_of(&t, FREE), Some(7001));
    // Given a replica (7003 replicates 7000), the new node replicates its master.
    replicate(&mut sim, &at(7003), &at(FREE + 1)).unwrap();
    let t = read(&mut sim, BASE);
    assert_eq!(master_of(&t, FREE + 1), Some(7000));
    assert_eq!(counts(&t), [(7000, 5462), (7001, 5461), (7002, 5461)]);
}

#[test]
fn replicate_polls_the_members_through_shared_tables() {
    // A view of its own copies the whole node table: waiting for every member to see
    // the new replica that way cost n^2 node copies per poll (37 s and 7.5 GB for one
    // replica at 2,000 masters + 2,000 replicas).
    let mut sim = Snap::cluster(40, 1).sim();
    replicate(&mut sim, &at(BASE + 3), &at(FREE)).unwrap();
    assert!(
        sim.views_copied() < 10,
        "{} views copied",
        sim.views_copied()
    );
}

#[test]
fn waits_on_every_member_read_the_shared_tables() {
    // move_replica, quit and failover wait for every member to agree: with a view of
    // its own per member, each poll copied the whole table once per member.
    let mut sim = Snap::cluster(40, 1).sim();
    move_replica(&mut sim, &at(7040), &at(7001)).unwrap();
    assert!(
        sim.views_copied() < 10,
        "move_replica: {}",
        sim.views_copied()
    );
    let mut sim = Snap::cluster(40, 1).sim();
    quit(&mut sim, &at(7041)).unwrap();
    assert!(sim.views_copied() < 10, "quit: {}", sim.views_copied());
    let mut sim = Snap::cluster(40, 1).sim();
    failover(&mut sim, &at(7042), FailoverMode::Default).unwrap();
    assert!(sim.views_copied() < 10, "failover: {}", sim.views_copied());
}

#[test]
fn replicate_refuses_a_failed_master_and_a_node_that_is_not_free() {
    let watch = [BASE, BASE + 2, FREE];
    let mut sim = Snap::cluster(3, 0).sim();
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7002 is already in a cluster",
        |s| replicate(s, &at(BASE), &at(BASE + 2)),
    );
    let mut sim = Snap::cluster(3, 1).flag(7000, "fail").sim();
    refused(
        &mut sim,
        &[7001, 7003, FREE],
        "master 127.0.0.1:7000 is flagged fail; cannot attach a replica to it",
        |s| replicate(s, &at(7003), &at(FREE)),
    );
}

// ------------------------------------------------------------------ move_replica

#[test]
fn move_replica_sends_one_replicate_and_the_cluster_sees_the_new_master() {
    let mut sim = Snap::cluster(3, 1).sim();
    let moved = move_replica(&mut sim, &at(7003), &at(7001)).unwrap();
    assert!(moved.changed);
    assert_eq!(
        moved.old_master.as_deref(),
        Some("127.0.0.1:7000 (7000abab)")
    );
    assert_eq!(moved.new_master, "127.0.0.1:7001 (7001abab)");
    assert_eq!(kinds(&sim), ["replicate"]);
    let t = read(&mut sim, BASE);
    assert_eq!(master_of(&t, 7003), Some(7001));
    // Named by one of its replicas (7004 replicates 7001): the master it replicates.
    move_replica(&mut sim, &at(7005), &at(7004)).unwrap();
    assert_eq!(master_of(&read(&mut sim, BASE), 7005), Some(7001));
}

#[test]
fn move_replica_leaves_a_replica_already_under_the_new_master_alone() {
    let mut sim = Snap::cluster(3, 1).sim();
    let moved = move_replica(&mut sim, &at(7003), &at(7000)).unwrap();
    assert!(!moved.changed);
    assert_eq!(sim.steps(), []);
}

#[test]
fn move_replica_turns_an_empty_master_into_a_replica() {
    let mut sim = Snap::cluster(3, 0).add_master(7003, &[]).sim();
    let moved = move_replica(&mut sim, &at(7003), &at(7002)).unwrap();
    assert_eq!(moved.old_master, None);
    assert_eq!(master_of(&read(&mut sim, BASE), 7003), Some(7002));
}

#[test]
fn move_replica_refuses_masters_with_slots_or_keys_itself_dead_and_foreign_masters() {
    let watch = all(7);
    let mut sim = Snap::cluster(3, 1).sim();
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7001 is a master serving 5461 slots",
        |s| move_replica(s, &at(7001), &at(7000)),
    );
    refused(&mut sim, &watch, "are the same node", |s| {
        move_replica(s, &at(7003), &at(7003))
    });
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7100 is not a node of this cluster",
        |s| move_replica(s, &at(7003), &at(FREE)),
    );
    let mut sim = Snap::cluster(3, 1).flag(7002, "fail").sim();
    refused(
        &mut sim,
        &watch,
        "the new master 127.0.0.1:7002 (7002abab) is failed or unreachable",
        |s| move_replica(s, &at(7003), &at(7002)),
    );
    let mut sim = Snap::cluster(3, 0)
        .add_master(7003, &[])
        .keys(7003, 4)
        .sim();
    refused(
        &mut sim,
        &all(4),
        "127.0.0.1:7003 is a master without slots but holds 4 keys",
        |s| move_replica(s, &at(7003), &at(7000)),
    );
}

// ------------------------------------------------------------------ quit

#[test]
fn quit_of_a_master_spreads_its_slots_and_keys_then_forgets_and_resets_it() {
    let mut sim = Snap::cluster(3, 0).sim();
    quit(&mut sim, &at(7002)).unwrap();
    let m = moves(&sim);
    assert_eq!(m.len(), 2);
    assert!(m.iter().all(|(src, _, _)| *src == 7002));
    assert_eq!(m.iter().map(|x| x.2).sum::<usize>(), 5461);
    assert_eq!(steps_of(&sim, "forget"), [(7000, None), (7001, None)]);
    assert_eq!(steps_of(&sim, "reset"), [(7002, None)]);
    assert_eq!(kinds(&sim).last(), Some(&"reset"));
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 8192), (7001, 8192)]);
    assert_eq!(ports(&t), [7000, 7001]);
    assert_eq!(t.total_keys(), 300, "quit keeps every key");
    assert_free(&mut sim, 7002);
    assert_ne!(sim.view(&at(7002)).unwrap().myself().node_id, id(7002));
}

#[test]
fn quit_of_a_replica_moves_nothing() {
    let mut sim = Snap::cluster(3, 1).sim();
    quit(&mut sim, &at(7004)).unwrap();
    assert_eq!(moves(&sim), []);
    assert_eq!(count_of(&sim, "forget"), 5);
    let t = read(&mut sim, BASE);
    assert_eq!(ports(&t), [7000, 7001, 7002, 7003, 7005]);
    assert_free(&mut sim, 7004);
}

#[test]
fn quit_refuses_the_last_node_a_master_with_replicas_and_an_unhealthy_cluster() {
    let mut sim = Snap::cluster(1, 0).sim();
    refused(
        &mut sim,
        &[BASE],
        "is the last node of its cluster; use `shutdown`",
        |s| quit(s, &at(BASE)),
    );
    let mut sim = Snap::cluster(3, 1).sim();
    refused(
        &mut sim,
        &all(6),
        "127.0.0.1:7000 is a master that still has replicas (127.0.0.1:7003)",
        |s| quit(s, &at(BASE)),
    );
    let mut sim = Snap::cluster(3, 0).flag(7001, "fail").sim();
    refused(
        &mut sim,
        &[7000, 7002],
        "cannot remove 127.0.0.1:7002: master 127.0.0.1:7001",
        |s| quit(s, &at(7002)),
    );
}

// ------------------------------------------------------------------ shutdown

#[test]
fn shutdown_resets_the_last_empty_node() {
    let mut sim = Snap::cluster(1, 0).keys(BASE, 0).sim();
    shutdown(&mut sim, &at(BASE)).unwrap();
    assert_eq!(steps_of(&sim, "reset"), [(BASE, None)]);
    assert_eq!(sim.steps().len(), 1);
    assert_free(&mut sim, BASE);
}

#[test]
fn shutdown_refuses_a_node_with_peers_or_keys() {
    let mut sim = Snap::text(TWO_MASTERS_ONE_REPLICA).sim();
    refused(
        &mut sim,
        &all(3),
        "127.0.0.1:7001 is not the last node of its cluster (it knows 2 other nodes)",
        |s| shutdown(s, &at(7001)),
    );
    let mut sim = Snap::cluster(1, 0).keys(BASE, 5).sim();
    refused(
        &mut sim,
        &[BASE],
        "127.0.0.1:7000 still holds 5 keys",
        |s| shutdown(s, &at(BASE)),
    );
    refused(
        &mut sim,
        &[FREE],
        "127.0.0.1:7100 is not in a cluster",
        |s| shutdown(s, &at(FREE)),
    );
}

// ------------------------------------------------------------------ fix

#[test]
fn fix_finishes_a_migration_described_by_both_markers() {
    let mut sim = Snap::cluster(3, 0)
        .migrating(7000, 100, 7001)
        .importing(7001, 100, 7000)
        .sim();
    let done = fix(&mut sim, &at(BASE)).unwrap();
    assert_eq!(
        done,
        [Repair::Finish {
            slot: 100,
            from: id(7000),
            to: id(7001)
        }]
    );
    assert_eq!(moves(&sim), [(7000, 7001, 1)]);
    assert_eq!(sim.steps()[0].slots, "100");
    let t = read(&mut sim, BASE);
    assert_eq!(t.open_slots(), []);
    assert!(held(&t, 7001).contains(&100));
    assert!(!held(&t, 7000).contains(&100));
    assert_eq!(counts(&t), [(7000, 5461), (7001, 5462), (7002, 5461)]);
}

#[test]
fn fix_finishes_a_migration_only_the_owner_marked() {
    let mut sim = Snap::cluster(3, 0).migrating(7002, 16383, 7000).sim();
    let done = fix(&mut sim, &at(BASE)).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(moves(&sim), [(7002, 7000, 1)]);
    let t = read(&mut sim, BASE);
    assert_eq!(t.open_slots(), []);
    assert_eq!(held(&t, 7000).last(), Some(&16383));
}

#[test]
fn fix_clears_a_stray_marker_after_moving_its_keys_back_to_the_owner() {
    // 7001 imports slot 100 from 7002, which does not own it: 7000 does.
    let mut sim = Snap::cluster(3, 0).importing(7001, 100, 7002).sim();
    let done = fix(&mut sim, &at(BASE)).unwrap();
    assert_eq!(
        done,
        [Repair::Clear {
            slot: 100,
            node: id(7001),
            owner: id(7000)
        }]
    );
    assert_eq!(kinds(&sim), ["move_keys", "set_slots"]);
    let (keys, stable) = (&sim.steps()[0], &sim.steps()[1]);
    assert_eq!(
        (keys.node.as_str(), keys.dst.as_deref(), keys.slots.as_str()),
        ("127.0.0.1:7001", Some("127.0.0.1:7000"), "100")
    );
    assert_eq!(
        (port_of(&stable.node), stable.detail.as_str()),
        (7001, "CLUSTER SETSLOT ... STABLE")
    );
    let t = read(&mut sim, BASE);
    assert_eq!(t.open_slots(), []);
    assert!(held(&t, 7000).contains(&100), "the owner keeps the slot");
}

#[test]
fn fix_clears_a_marker_toward_the_owners_own_replica() {
    let mut sim = Snap::cluster(3, 1).migrating(7000, 5, 7003).sim();
    let done = fix(&mut sim, &at(BASE)).unwrap();
    assert_eq!(
        done,
        [Repair::Dangling {
            slot: 5,
            node: id(7000),
            peer: id(7003)
        }]
    );
    assert_eq!(kinds(&sim), ["set_slots"]);
    let t = read(&mut sim, BASE);
    assert_eq!(t.open_slots(), []);
    assert_eq!(held(&t, 7000).len(), 5462);
}

#[test]
fn fix_with_nothing_open_does_nothing() {
    let mut sim = Snap::cluster(3, 1).sim();
    assert_eq!(fix(&mut sim, &at(BASE)).unwrap(), []);
    assert_eq!(sim.steps(), []);
}

#[test]
fn fix_refuses_an_open_slot_without_owner_a_dead_target_and_several_targets() {
    let mut sim = Snap::cluster(3, 0)
        .slots(7002, &["10923-16382"])
        .importing(7001, 16383, 7002)
        .sim();
    refused(
        &mut sim,
        &all(3),
        "slot 16383 is open on 127.0.0.1:7001 (7001abab) but no node serves it; run `redis-trib rescue` first",
        |s| fix(s, &at(BASE)),
    );
    let mut sim = Snap::cluster(3, 0)
        .add_master(7003, &[])
        .flag(7003, "fail")
        .migrating(7000, 9, 7003)
        .sim();
    refused(
        &mut sim,
        &all(3),
        "slot 9 is migrating from 127.0.0.1:7000 (7000abab) to 127.0.0.1:7003 (7003abab), which is not a reachable master",
        |s| fix(s, &at(BASE)),
    );
    let mut sim = Snap::cluster(3, 0)
        .migrating(7000, 9, 7001)
        .importing(7002, 9, 7000)
        .sim();
    refused(
        &mut sim,
        &all(3),
        "slot 9 is being moved from its owner 127.0.0.1:7000 (7000abab) to several nodes at once",
        |s| fix(s, &at(BASE)),
    );
}

// ------------------------------------------------------------------ migrate_slots

#[test]
fn migrate_slots_moves_exactly_the_given_slots() {
    let mut sim = Snap::cluster(3, 0).sim();
    let slots: Vec<u16> = [0, 1, 2].into_iter().chain(10..20).collect();
    migrate_slots(&mut sim, &at(7000), &at(7002), &slots).unwrap();
    assert_eq!(moves(&sim), [(7000, 7002, 13)]);
    assert_eq!(sim.steps()[0].slots, "0-2,10-19");
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5449), (7001, 5461), (7002, 5474)]);
    assert_eq!(held(&t, 7000)[..3], [3, 4, 5]);
    assert_eq!(held(&t, 7002)[..13], slots[..]);
}

#[test]
fn migrate_slots_given_out_of_order_moves_each_slot_once() {
    let mut sim = Snap::cluster(3, 0).sim();
    migrate_slots(&mut sim, &at(7000), &at(7001), &[10, 2, 5, 2]).unwrap();
    assert_eq!(moves(&sim), [(7000, 7001, 3)]);
    assert_eq!(sim.steps()[0].slots, "2,5,10");
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5459), (7001, 5464), (7002, 5461)]);
    assert!(t.slot_owners().iter().all(Option::is_some));
    for slot in [2, 5, 10] {
        assert!(!held(&t, 7000).contains(&slot), "7000 still holds {slot}");
        assert!(held(&t, 7001).contains(&slot), "7001 lacks {slot}");
    }
}

#[test]
fn migrate_slots_of_every_slot_turns_the_emptied_master_into_a_replica() {
    let mut sim = Snap::text(TWO_MASTERS_ONE_REPLICA).sim();
    let slots: Vec<u16> = (8192..16384).collect();
    migrate_slots(&mut sim, &at(7001), &at(7000), &slots).unwrap();
    let t = read(&mut sim, BASE);
    assert_eq!(held(&t, 7000).len(), 16384);
    assert_eq!(master_of(&t, 7001), Some(7000), "as Redis 7 does");
    assert_eq!(t.keys[&id(7000)], 30, "the emptied master's 20 keys moved");
}

#[test]
fn migrate_slots_refuses_bad_pairs_slots_not_held_and_open_slots() {
    let watch = all(6);
    let mut sim = Snap::cluster(3, 1).sim();
    refused(&mut sim, &watch, "no slots to migrate", |s| {
        migrate_slots(s, &at(7000), &at(7001), &[])
    });
    refused(&mut sim, &watch, "are the same node (7000abab)", |s| {
        migrate_slots(s, &at(7000), &at(7000), &[0])
    });
    refused(
        &mut sim,
        &watch,
        "source 127.0.0.1:7003 is a replica",
        |s| migrate_slots(s, &at(7003), &at(7001), &[0]),
    );
    refused(
        &mut sim,
        &watch,
        "destination 127.0.0.1:7004 is a replica",
        |s| migrate_slots(s, &at(7000), &at(7004), &[0]),
    );
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7000 does not hold slots 5462-5463,20000",
        |s| migrate_slots(s, &at(7000), &at(7001), &[1, 5462, 5463, 20000]),
    );
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7100 is not in a cluster",
        |s| migrate_slots(s, &at(7000), &at(FREE), &[0]),
    );
    let mut sim = Snap::cluster(3, 0).importing(7002, 6000, 7001).sim();
    refused(
        &mut sim,
        &all(3),
        "cannot migrate slots: slot 6000 is open (127.0.0.1:7002 (7002abab) importing from",
        |s| migrate_slots(s, &at(7000), &at(7001), &[0]),
    );
    let mut sim = Snap::cluster(3, 0).flag(7002, "fail").sim();
    refused(
        &mut sim,
        &all(2),
        "destination 127.0.0.1:7002 is failing or unreachable",
        |s| migrate_slots(s, &at(7000), &at(7002), &[0]),
    );
}

#[test]
fn migrate_slots_refuses_nodes_of_two_clusters() {
    let mut sim = Snap::cluster(3, 0).sim();
    start(&mut sim, &at(FREE), 16384).unwrap();
    let steps = sim.steps().len();
    let err = migrate_slots(&mut sim, &at(FREE), &at(7000), &[0]).unwrap_err();
    assert!(
        format!("{err:#}").contains("are not in the same cluster"),
        "{err:#}"
    );
    assert_eq!(sim.steps().len(), steps);
}

// ------------------------------------------------------------------ rescue

#[test]
fn rescue_gives_a_failed_masters_slots_to_a_free_node() {
    let mut sim = Snap::cluster(3, 0).flag(7002, "fail").sim();
    rescue(&mut sim, &at(BASE), &at(FREE)).unwrap();
    // Met by the live members only; the epoch bumped before the slots are claimed, on
    // the free node and on every live master.
    assert_eq!(steps_of(&sim, "meet"), [(FREE, None), (FREE, None)]);
    let claims = steps_of(&sim, "set_slots");
    assert_eq!(
        claims,
        [(FREE, Some(5461)), (7000, Some(5461)), (7001, Some(5461))]
    );
    let bump = kinds(&sim).iter().position(|k| *k == "bump_epoch").unwrap();
    let first_claim = kinds(&sim).iter().position(|k| *k == "set_slots").unwrap();
    assert!(bump < first_claim, "{:?}", kinds(&sim));
    let t = read(&mut sim, BASE);
    assert_eq!(held(&t, FREE), (10923..16384).collect::<Vec<u16>>());
    assert!(t.uncovered_slots().is_empty());
    assert!(t.failed_slots().is_empty());
    assert!(node_on(&t, 7002).is_failed(), "the dead node stays known");
    assert_eq!(sim.view(&at(FREE)).unwrap().cluster_state, "ok");
}

#[test]
fn rescue_adds_uncovered_slots_to_a_free_node() {
    let mut sim = Snap::cluster(3, 0).slots(7002, &["10923-16000"]).sim();
    rescue(&mut sim, &at(BASE), &at(FREE)).unwrap();
    assert_eq!(steps_of(&sim, "add_slots"), [(FREE, Some(383))]);
    assert_eq!(count_of(&sim, "bump_epoch"), 0, "nothing failed");
    let t = read(&mut sim, BASE);
    assert_eq!(held(&t, FREE), (16001..16384).collect::<Vec<u16>>());
    assert!(t.uncovered_slots().is_empty());
}

#[test]
fn rescue_refuses_a_healthy_or_merely_suspected_cluster_and_a_member() {
    let mut sim = Snap::cluster(3, 0).sim();
    let watch = [BASE, BASE + 1, BASE + 2, FREE];
    refused(
        &mut sim,
        &watch,
        "the cluster of 127.0.0.1:7000 has no failed or uncovered slots; nothing to rescue",
        |s| rescue(s, &at(BASE), &at(FREE)),
    );
    let mut sim = Snap::cluster(3, 0).flag(7002, "fail?").sim();
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7002 is only suspected to fail (fail?)",
        |s| rescue(s, &at(BASE), &at(FREE)),
    );
    let mut sim = Snap::cluster(4, 0).flag(7003, "fail").sim();
    refused(
        &mut sim,
        &all(3),
        "127.0.0.1:7002 is already in a cluster",
        |s| rescue(s, &at(BASE), &at(7002)),
    );
}

// ------------------------------------------------------------------ rebalance

/// 3 masters holding 8192 / 4096 / 4096 slots.
fn lopsided() -> Snap {
    Snap::cluster(3, 0)
        .slots(7000, &["0-8191"])
        .slots(7001, &["8192-12287"])
        .slots(7002, &["12288-16383"])
}

#[test]
fn rebalance_moves_slots_from_the_heaviest_master_until_counts_are_even() {
    let mut sim = lopsided().sim();
    let planned = rebalance(&mut sim, &at(BASE), &RebalanceOpts::default()).unwrap();
    let recorded = moves(&sim);
    assert_eq!(recorded.len(), planned.len());
    assert!(
        recorded.iter().all(|(src, _, _)| *src == 7000),
        "{recorded:?}"
    );
    assert_eq!(recorded.iter().map(|m| m.2).sum::<usize>(), 8192 - 5462);
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5462), (7001, 5461), (7002, 5461)]);
    assert_eq!(t.total_keys(), 300);
}

#[test]
fn rebalance_within_the_threshold_moves_nothing() {
    // 6000 / 5192 / 5192: 7000 is 9.9% over its target of 5461.3.
    let snap = Snap::cluster(3, 0)
        .slots(7000, &["0-5999"])
        .slots(7001, &["6000-11191"])
        .slots(7002, &["11192-16383"]);
    let mut sim = snap.sim();
    let loose = RebalanceOpts {
        threshold_pct: 10.0,
        ..RebalanceOpts::default()
    };
    assert!(rebalance(&mut sim, &at(BASE), &loose).unwrap().is_empty());
    assert_eq!(sim.steps(), []);
    let tight = RebalanceOpts {
        threshold_pct: 9.0,
        ..RebalanceOpts::default()
    };
    assert!(!rebalance(&mut sim, &at(BASE), &tight).unwrap().is_empty());
    assert_eq!(
        counts(&read(&mut sim, BASE)),
        [(7000, 5462), (7001, 5461), (7002, 5461)]
    );
}

#[test]
fn rebalance_follows_weights() {
    let mut sim = Snap::cluster(3, 0).sim();
    let opts = RebalanceOpts {
        weights: vec![("127.0.0.1:7001".into(), 2.0), ("7002abab".into(), 1.0)],
        ..RebalanceOpts::default()
    };
    rebalance(&mut sim, &at(BASE), &opts).unwrap();
    assert!(moves(&sim).iter().all(|(_, dst, _)| *dst == 7001));
    assert_eq!(
        counts(&read(&mut sim, BASE)),
        [(7000, 4096), (7001, 8192), (7002, 4096)]
    );
}

#[test]
fn rebalance_with_weight_zero_drains_a_master_which_becomes_a_replica() {
    let mut sim = Snap::cluster(3, 0).sim();
    let opts = RebalanceOpts {
        weights: vec![("7002".into(), 0.0)],
        ..RebalanceOpts::default()
    };
    rebalance(&mut sim, &at(BASE), &opts).unwrap();
    let m = moves(&sim);
    assert!(m.iter().all(|(src, _, _)| *src == 7002), "{m:?}");
    assert_eq!(m.iter().map(|x| x.2).sum::<usize>(), 5461);
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 8192), (7001, 8192)]);
    assert!(
        master_of(&t, 7002).is_some(),
        "the emptied master follows a new owner"
    );
    assert_eq!(t.total_keys(), 300);
}

#[test]
fn rebalance_fills_an_empty_master_only_with_use_empty_masters() {
    let snap = Snap::cluster(3, 0).add_master(7003, &[]);
    let mut sim = snap.sim();
    assert!(rebalance(&mut sim, &at(BASE), &RebalanceOpts::default())
        .unwrap()
        .is_empty());
    assert_eq!(sim.steps(), []);
    let opts = RebalanceOpts {
        use_empty_masters: true,
        ..RebalanceOpts::default()
    };
    rebalance(&mut sim, &at(BASE), &opts).unwrap();
    assert!(moves(&sim).iter().all(|(_, dst, _)| *dst == 7003));
    assert_eq!(
        counts(&read(&mut sim, BASE)),
        [(7000, 4096), (7001, 4096), (7002, 4096), (7003, 4096)]
    );
}

#[test]
fn rebalance_refuses_unknown_or_empty_weighted_masters_and_an_unhealthy_cluster() {
    let mut sim = Snap::cluster(3, 0).add_master(7003, &[]).sim();
    let weighted = |spec: &str| RebalanceOpts {
        weights: vec![(spec.into(), 2.0)],
        ..RebalanceOpts::default()
    };
    refused(
        &mut sim,
        &all(4),
        "no master of the cluster matches '127.0.0.1:7999'",
        |s| rebalance(s, &at(BASE), &weighted("127.0.0.1:7999")),
    );
    refused(
        &mut sim,
        &all(4),
        "--weight 7003: 127.0.0.1:7003 has no slots; add --use-empty-masters",
        |s| rebalance(s, &at(BASE), &weighted("7003")),
    );
    let mut sim = lopsided().flag(7001, "fail").sim();
    refused(
        &mut sim,
        &[7000, 7002],
        "cannot rebalance: master 127.0.0.1:7001",
        |s| rebalance(s, &at(BASE), &RebalanceOpts::default()),
    );
}

// ------------------------------------------------------------------ reshard

#[test]
fn reshard_takes_exactly_n_slots_from_every_master_in_proportion() {
    let mut sim = Snap::cluster(3, 0).sim();
    let made = reshard(&mut sim, &at(BASE), &[], "127.0.0.1:7002", 1000).unwrap();
    assert_eq!(made.len(), 2);
    assert_eq!(moves(&sim), [(7000, 7002, 500), (7001, 7002, 500)]);
    assert_eq!(
        counts(&read(&mut sim, BASE)),
        [(7000, 4962), (7001, 4961), (7002, 6461)]
    );
}

#[test]
fn reshard_from_named_sources_only() {
    let mut sim = Snap::cluster(3, 0).sim();
    reshard(&mut sim, &at(BASE), &["7001abab".into()], "7000", 61).unwrap();
    assert_eq!(moves(&sim), [(7001, 7000, 61)]);
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5523), (7001, 5400), (7002, 5461)]);
    // The source's lowest-numbered slots go.
    assert_eq!(held(&t, 7001)[0], 5462 + 61);
}

#[test]
fn reshard_refuses_too_many_slots_a_source_as_destination_and_unknown_nodes() {
    let mut sim = Snap::cluster(3, 0).sim();
    let watch = all(3);
    refused(
        &mut sim,
        &watch,
        "the sources hold 5461 slots in all; cannot move 5462",
        |s| reshard(s, &at(BASE), &["7001".into()], "7000", 5462),
    );
    refused(
        &mut sim,
        &watch,
        "127.0.0.1:7000 is both a source and the destination",
        |s| reshard(s, &at(BASE), &["7000".into(), "7001".into()], "7000", 10),
    );
    refused(&mut sim, &watch, "--slots must be at least 1", |s| {
        reshard(s, &at(BASE), &[], "7000", 0)
    });
    refused(
        &mut sim,
        &watch,
        "no master of the cluster matches 'beef'",
        |s| reshard(s, &at(BASE), &[], "beef", 10),
    );
    let mut sim = Snap::cluster(3, 0).migrating(7001, 6000, 7002).sim();
    refused(&mut sim, &watch, "cannot reshard: slot 6000 is open", |s| {
        reshard(s, &at(BASE), &[], "7000", 10)
    });
}

// ------------------------------------------------------------------ set_timeout

#[test]
fn set_timeout_sets_every_node() {
    let mut sim = Snap::cluster(3, 1).sim();
    assert_eq!(set_timeout(&mut sim, &at(BASE), 5000).unwrap(), 6);
    let set = steps_of(&sim, "set_config");
    let mut nodes: Vec<u16> = set.iter().map(|s| s.0).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, all(6));
    assert!(sim
        .steps()
        .iter()
        .all(|s| s.detail == "CONFIG SET cluster-node-timeout 5000"));
}

#[test]
fn set_timeout_refuses_a_small_value_and_an_unreachable_node() {
    let mut sim = Snap::cluster(3, 0).sim();
    refused(
        &mut sim,
        &all(3),
        "a cluster-node-timeout of 99 ms is too small",
        |s| set_timeout(s, &at(BASE), 99),
    );
    let mut sim = Snap::cluster(3, 1).flag(7005, "fail").sim();
    refused(
        &mut sim,
        &all(5),
        "node 127.0.0.1:7005 (7005abab) is unreachable (flagged slave,fail); it would keep its old timeout",
        |s| set_timeout(s, &at(BASE), 5000),
    );
}

// ------------------------------------------------------------------ forget

/// 3 masters and a dead master without slots on 7003.
fn with_dead_empty_master() -> Snap {
    Snap::cluster(3, 0).add_master(7003, &[]).flag(7003, "fail")
}

#[test]
fn forget_sends_forget_to_every_live_node_and_the_node_leaves_the_table() {
    let mut sim = with_dead_empty_master().sim();
    let gone = forget(&mut sim, &at(BASE), "127.0.0.1:7003").unwrap();
    assert_eq!(gone.node_id, id(7003));
    assert_eq!(
        steps_of(&sim, "forget"),
        [(7000, None), (7001, None), (7002, None)]
    );
    assert!(sim
        .steps()
        .iter()
        .all(|s| s.detail == format!("CLUSTER FORGET {}", id(7003))));
    let t = read(&mut sim, BASE);
    assert_eq!(ports(&t), [7000, 7001, 7002]);
    // By id prefix too.
    let mut sim = with_dead_empty_master().sim();
    forget(&mut sim, &at(BASE), "7003abab").unwrap();
    assert_eq!(ports(&read(&mut sim, BASE)), [7000, 7001, 7002]);
}

#[test]
fn forget_refuses_nodes_that_serve_slots_are_alive_have_live_replicas_or_are_unknown() {
    let mut sim = Snap::cluster(3, 1).flag(7002, "fail").sim();
    refused(
        &mut sim,
        &all(2),
        "node 127.0.0.1:7002 (7002abab) still owns slots 10923-16383",
        |s| forget(s, &at(BASE), "127.0.0.1:7002"),
    );
    refused(
        &mut sim,
        &all(2),
        "node 127.0.0.1:7001 (7001abab) is reachable and serves slots 5462-10922; use `redis-trib quit 127.0.0.1:7001`",
        |s| forget(s, &at(BASE), "7001abab"),
    );
    refused(
        &mut sim,
        &all(2),
        "is reachable and still a member of the cluster",
        |s| forget(s, &at(BASE), "127.0.0.1:7003"),
    );
    refused(
        &mut sim,
        &all(2),
        "no node of the cluster matches '127.0.0.1:7999'",
        |s| forget(s, &at(BASE), "127.0.0.1:7999"),
    );
    let mut snap = with_dead_empty_master();
    snap.doc["nodes"]
        .as_array_mut()
        .unwrap()
        .push(node_json(7004, Some(7003), &[]));
    let mut with_replica = snap.sim();
    refused(
        &mut with_replica,
        &all(3),
        "node 127.0.0.1:7003 (7003abab) still has live replicas (127.0.0.1:7004)",
        |s| forget(s, &at(BASE), "7003"),
    );
}

// ------------------------------------------------------------------ failover

#[test]
fn failover_makes_the_replica_master_of_its_masters_slots() {
    let mut sim = Snap::text(TWO_MASTERS_ONE_REPLICA).sim();
    let done = failover(&mut sim, &at(7002), FailoverMode::Default).unwrap();
    assert_eq!(done.old_master, "127.0.0.1:7000 (7000abab)");
    assert_eq!(done.slots, (0..8192).collect::<Vec<u16>>());
    assert_eq!(steps_of(&sim, "failover"), [(7002, Some(8192))]);
    assert_eq!(sim.steps().len(), 1);
    let t = read(&mut sim, 7001);
    assert_eq!(counts(&t), [(7001, 8192), (7002, 8192)]);
    assert_eq!(master_of(&t, 7000), Some(7002), "the old master follows");
}

#[test]
fn failover_of_a_dead_master_needs_force_or_takeover() {
    let snap = Snap::cluster(3, 1).flag(7000, "fail");
    let mut sim = snap.sim();
    refused(
        &mut sim,
        &[7001, 7002, 7003],
        "127.0.0.1:7003's master 127.0.0.1:7000 (7000abab) is unreachable (flagged master,fail): a plain failover needs it; use --force",
        |s| failover(s, &at(7003), FailoverMode::Default),
    );
    failover(&mut sim, &at(7003), FailoverMode::Force).unwrap();
    assert!(sim.steps()[0].detail.starts_with("CLUSTER FAILOVER FORCE"));
    let mut sim = snap.sim();
    failover(&mut sim, &at(7003), FailoverMode::Takeover).unwrap();
    assert!(sim.steps()[0]
        .detail
        .starts_with("CLUSTER FAILOVER TAKEOVER"));
    let t = read(&mut sim, 7001);
    assert_eq!(held(&t, 7003).len(), 5462);
    assert!(t.failed_slots().is_empty());
}

#[test]
fn failover_refuses_a_master_and_a_replica_of_a_slotless_master() {
    let mut sim = Snap::cluster(3, 1).sim();
    refused(
        &mut sim,
        &all(6),
        "127.0.0.1:7001 is a master already",
        |s| failover(s, &at(7001), FailoverMode::Default),
    );
    let mut snap = Snap::cluster(3, 0).add_master(7003, &[]);
    snap.doc["nodes"]
        .as_array_mut()
        .unwrap()
        .push(node_json(7004, Some(7003), &[]));
    let mut sim = snap.sim();
    refused(
        &mut sim,
        &all(5),
        "127.0.0.1:7004's master 127.0.0.1:7003 (7003abab) serves no slots",
        |s| failover(s, &at(7004), FailoverMode::Force),
    );
}

// ------------------------------------------------------------------ import, backup

#[test]
fn import_refuses_an_unhealthy_cluster_and_a_source_that_is_one_of_its_nodes() {
    let opts = ImportOpts::new(Default::default());
    let mut sim = Snap::cluster(3, 1).sim();
    refused(
        &mut sim,
        &all(6),
        "127.0.0.1:7004 is a node of this cluster (7004abab); import takes a standalone Redis",
        |s| import(s, &at(BASE), &at(7004), &opts),
    );
    let mut sim = Snap::cluster(3, 0).slots(7001, &["5462-10000"]).sim();
    refused(
        &mut sim,
        &all(3),
        "cannot import: slots 10001-10922 are not served by any node",
        |s| import(s, &at(BASE), &at(FREE), &opts),
    );
}

#[test]
fn backup_refuses_a_dead_master_uncovered_slots_and_a_used_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut sim = Snap::cluster(3, 0).flag(7001, "fail").sim();
    refused(
        &mut sim,
        &[7000, 7002],
        "cannot back up: master 127.0.0.1:7001 (7001abab) is not reachable",
        |s| backup(s, &at(BASE), dir.path()),
    );
    let mut sim = Snap::cluster(3, 0).slots(7002, &["10923-16000"]).sim();
    refused(
        &mut sim,
        &all(3),
        "cannot back up: slots 16001-16383 are not served by any node",
        |s| backup(s, &at(BASE), dir.path()),
    );
    std::fs::write(dir.path().join("old.rdb"), b"x").unwrap();
    let mut sim = Snap::cluster(3, 0).sim();
    refused(
        &mut sim,
        &all(3),
        "is not empty; back up into a new or empty directory",
        |s| backup(s, &at(BASE), dir.path()),
    );
}

// ------------------------------------------------------------------ apply_plan

#[test]
fn apply_plan_runs_counted_and_exact_moves_as_one_plan() {
    let mut sim = Snap::cluster(3, 0).sim();
    let plan = [
        PlanMove {
            src: "127.0.0.1:7000".into(),
            dst: id(7002),
            amount: Amount::Count(100),
        },
        PlanMove {
            src: "7001abab".into(),
            dst: "127.0.0.1:7002".into(),
            amount: Amount::Slots(vec![5462, 9000]),
        },
    ];
    let applied = apply_plan(&mut sim, &at(BASE), &plan, None).unwrap();
    assert_eq!((applied.moves, applied.slots), (2, 102));
    assert_eq!(moves(&sim), [(7000, 7002, 100), (7001, 7002, 2)]);
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5362), (7001, 5459), (7002, 5563)]);
    assert_eq!(held(&t, 7000)[0], 100, "counts take the lowest slots");
    assert!(held(&t, 7002).contains(&9000));
}

#[test]
fn apply_plan_refuses_a_plan_that_does_not_hold_as_a_whole() {
    let mut sim = Snap::cluster(3, 0).sim();
    let watch = all(3);
    let mv = |src: &str, dst: &str, amount: Amount| PlanMove {
        src: src.into(),
        dst: dst.into(),
        amount,
    };
    // The first move is fine; the second names a slot 7001 does not hold.
    let plan = [
        mv("7000abab", "7002abab", Amount::Count(10)),
        mv("7001abab", "7002abab", Amount::Slots(vec![0])),
    ];
    refused(
        &mut sim,
        &watch,
        "plan move #2 (7001abab -> 7002abab): 127.0.0.1:7001 does not hold slot 0 (127.0.0.1:7000 (7000abab) does)",
        |s| apply_plan(s, &at(BASE), &plan, None),
    );
    refused(
        &mut sim,
        &watch,
        "plan move #1 (7009abab -> 7002abab): no master of the cluster matches '7009abab'",
        |s| {
            apply_plan(
                s,
                &at(BASE),
                &[mv("7009abab", "7002abab", Amount::Count(1))],
                None,
            )
        },
    );
    refused(&mut sim, &watch, "takes 5462 more than it has left", |s| {
        apply_plan(
            s,
            &at(BASE),
            &[mv("7001abab", "7000abab", Amount::Count(5462))],
            None,
        )
    });
    // Planned on masters that no longer hold what they held.
    let mut before: Vec<Node> = read(&mut sim, BASE).masters().cloned().collect();
    before[0].assigned_slots.pop();
    refused(
        &mut sim,
        &watch,
        "the cluster changed since the plan was made",
        |s| {
            apply_plan(
                s,
                &at(BASE),
                &[mv("7000abab", "7001abab", Amount::Count(1))],
                Some(&before),
            )
        },
    );
}

// ------------------------------------------------------------------ the simulation

#[test]
fn sim_assigning_slots_in_one_cluster_leaves_another_cluster_alone() {
    // A free node started as its own cluster while the snapshot's cluster is loaded
    // (a dry run that builds a new cluster next to the one it read).
    let mut sim = Snap::cluster(3, 0).sim();
    start(&mut sim, &at(FREE), 16384).unwrap();
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5462), (7001, 5461), (7002, 5461)]);
    assert!(t.uncovered_slots().is_empty());
    assert_eq!(sim.view(&at(BASE)).unwrap().cluster_state, "ok");
}

// ------------------------------------------------------------------ check

#[test]
fn check_reports_nothing_on_a_healthy_cluster_and_names_what_is_wrong_otherwise() {
    let mut sim = Snap::cluster(3, 1).sim();
    let report = check(&mut sim, &at(BASE)).unwrap();
    assert_eq!(report.problems, Vec::<String>::new());
    let mut sim = Snap::cluster(3, 1)
        .migrating(7000, 42, 7001)
        .slots(7002, &["10923-16000"])
        .sim();
    let report = check(&mut sim, &at(BASE)).unwrap();
    let text = report.problems.join("\n");
    assert!(text.contains("42"), "{text}");
    assert!(text.contains("16001-16383"), "{text}");
    assert_eq!(sim.steps(), [], "check changes nothing");
}

// ------------------------------------------------------------------ zones

#[test]
fn zones_come_from_the_snapshot_and_from_each_backends_own_file() {
    // 7000 and its replica 7002 in one zone, 7001 in another: check's zone problem.
    let mut snap = Snap::text(TWO_MASTERS_ONE_REPLICA);
    for (port, zone) in [(7000, "a"), (7001, "b"), (7002, "a")] {
        snap.node(port)["zone"] = json!(zone);
    }
    let mut sim = snap.sim();
    let report = check(&mut sim, &at(7000)).unwrap();
    assert!(
        report.problems.iter().any(|p| p.contains("all in zone a")),
        "{:?}",
        report.problems
    );
    // A --zones file is the backend's: it wins over the snapshot, and a second
    // backend without it knows only the snapshot.
    let file =
        crate::topology::ZoneFile::parse(std::path::Path::new("zones.txt"), "127.0.0.1:7002 c\n")
            .unwrap();
    let mut with_file = snap.sim().with_zones(Some(std::sync::Arc::new(file)));
    let report = check(&mut with_file, &at(7000)).unwrap();
    assert!(
        !report.problems.iter().any(|p| p.contains("zone")),
        "{:?}",
        report.problems
    );
    assert_eq!(with_file.zone_book().known(&at(7002)).as_deref(), Some("c"));
    assert_eq!(sim.zone_book().known(&at(7002)), None);
}

#[test]
fn a_big_creates_meet_steps_name_the_first_and_last_nodes_met() {
    let mut sim = Snap::cluster(3, 0).sim();
    let nodes: Vec<Addr> = (FREE..FREE + 20).map(at).collect();
    create(&mut sim, &nodes, 1, 16384).unwrap();
    let meets: Vec<_> = sim.steps().iter().filter(|s| s.action == "meet").collect();
    assert_eq!(meets.len(), 20, "one meet step per node");
    // Node 0 meets the next 10: the first 4 and the last 4 are named.
    let first = &meets[0].detail;
    assert!(
        first.starts_with("CLUSTER MEET each of 10 nodes: "),
        "{first}"
    );
    let named: Vec<u16> = first
        .split_whitespace()
        .filter_map(|w| Addr::parse(w).ok())
        .map(|a| a.port)
        .collect();
    let f = FREE;
    assert_eq!(
        named,
        [f + 1, f + 2, f + 3, f + 4, f + 7, f + 8, f + 9, f + 10]
    );
    assert!(first.contains(" … "), "{first}");
    let t = read(&mut sim, FREE);
    assert_eq!(t.nodes.len(), 20, "every node met every other");
}

// ------------------------------------------------------------------ apply_many

#[test]
fn apply_many_records_each_command_in_order_as_the_single_primitives_do_and_a_nodes_meets_as_one_step(
) {
    use crate::backend::NodeCmd;
    let mut sim = Snap::cluster(3, 0).sim();
    let (a, b, c) = (at(FREE), at(FREE + 1), at(FREE + 2));
    let cmds = vec![
        (a.clone(), NodeCmd::SetConfigEpoch(1)),
        (b.clone(), NodeCmd::SetConfigEpoch(2)),
        (a.clone(), NodeCmd::AddSlots((0..8192).collect(), 16384)),
        (b.clone(), NodeCmd::AddSlots((8192..16384).collect(), 1000)),
        (a.clone(), NodeCmd::Meet(b.clone())),
        (a.clone(), NodeCmd::Meet(c.clone())),
        (c.clone(), NodeCmd::Replicate(id_at(&mut sim, FREE))),
        (
            c.clone(),
            NodeCmd::SetConfig("repl-diskless-sync-delay".into(), "0".into()),
        ),
    ];
    let results = sim.apply_many(&cmds);
    assert_eq!(results.len(), cmds.len());
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        kinds(&sim),
        [
            "set_config_epoch",
            "set_config_epoch",
            "add_slots",
            "add_slots",
            "meet",
            "replicate",
            "set_config"
        ]
    );
    assert_eq!(
        steps_of(&sim, "add_slots"),
        [(FREE, Some(8192)), (FREE + 1, Some(8192))]
    );
    // A node's consecutive meets are one step naming each node met.
    assert_eq!(met_pairs(&sim), [(FREE, FREE + 1), (FREE, FREE + 2)]);
    let t = read(&mut sim, FREE);
    assert_eq!(counts(&t), [(FREE, 8192), (FREE + 1, 8192)]);
    assert_eq!(master_of(&t, FREE + 2), Some(FREE));
    // The snapshot's own cluster is untouched.
    let t = read(&mut sim, BASE);
    assert_eq!(counts(&t), [(7000, 5462), (7001, 5461), (7002, 5461)]);
}

/// The node id the simulation gives the node on `port`.
fn id_at(sim: &mut Sim, port: u16) -> String {
    sim.view(&at(port)).unwrap().myself().node_id.clone()
}

#[test]
fn replica_links_up_answers_once_per_replica_in_order() {
    let mut sim = Snap::cluster(3, 1).sim();
    let asked = [at(BASE + 3), at(BASE + 4), at(BASE + 5)];
    let up = sim.replica_links_up(&asked);
    assert_eq!(up.len(), 3);
    assert!(up.into_iter().all(|r| r.is_ok_and(|u| u)));
    assert!(sim.replica_links_up(&[]).is_empty());
    assert_eq!(sim.steps(), [], "asking changes nothing");
}
