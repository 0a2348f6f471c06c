//! `check` and `info`: read-only reports. `check` finds what an operator must act
//! on (nodes that disagree about slot owners, open slots, uncovered slots, masters
//! that are failing or unreachable); `info` sums keys, slots and replicas.

use super::member;
use crate::addr::Addr;
use crate::backend::Backend;
use crate::slots::{format_ranges, SLOT_COUNT};
use crate::topology::{Topology, View};
use anyhow::Result;
use serde::Serialize;

/// What `check` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    /// Problems to act on; empty means healthy.
    pub problems: Vec<String>,
    /// Facts worth knowing that are not problems (replicas per master...).
    pub notes: Vec<String>,
    /// The topology checked.
    pub topology: Topology,
}

impl CheckReport {
    /// No problem found.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the cluster `addr` belongs to.
pub fn check(b: &mut dyn Backend, addr: &Addr) -> Result<CheckReport> {
    let entry = member(b, addr)?;
    let my_id = entry.myself().node_id.clone();
    let mut views = vec![entry.clone()];
    let mut others = Vec::new();
    for n in entry.nodes.iter().filter(|n| n.node_id != my_id) {
        let read = if n.no_addr() || n.in_handshake() {
            Err(format!("flagged {}", n.flags.join(",")))
        } else {
            b.view(&n.addr()).map_err(|e| format!("{e:#}"))
        };
        if let Ok(v) = &read {
            views.push(v.clone());
        }
        others.push((n.node_id.clone(), read));
    }
    let topology = Topology::assemble(&entry, others);
    let mut problems = disagreements(&views, &topology);
    problems.extend(topology_problems(&topology));
    let mut notes = notes(&topology);
    notes.extend(node_timeout_note(b, &views));
    Ok(CheckReport {
        problems,
        notes,
        topology,
    })
}

/// Problems visible in the assembled topology (pure).
pub fn topology_problems(topo: &Topology) -> Vec<String> {
    let mut problems = Vec::new();
    for n in &topo.nodes {
        if n.is_failed() {
            problems.push(format!(
                "node {} is flagged fail",
                topo.describe(&n.node_id)
            ));
        } else if n.is_suspected() {
            problems.push(format!(
                "node {} is suspected to fail (fail?)",
                topo.describe(&n.node_id)
            ));
        }
        if let Some(why) = topo.unreachable.get(&n.node_id) {
            if !n.is_failed() {
                problems.push(format!(
                    "node {} is unreachable: {why}",
                    topo.describe(&n.node_id)
                ));
            }
        }
    }
    for o in topo.open_slots() {
        let dir = if o.direction == "migrating" {
            "to"
        } else {
            "from"
        };
        problems.push(format!(
            "slot {} is open: {} is {} it {dir} {} (run `redis-trib fix`)",
            o.slot,
            topo.describe(&o.node_id),
            o.direction,
            topo.describe(&o.peer_id)
        ));
    }
    let uncovered = topo.uncovered_slots();
    if !uncovered.is_empty() {
        problems.push(format!(
            "{} slots are not covered: {} (run `redis-trib rescue`)",
            uncovered.len(),
            format_ranges(&uncovered)
        ));
    }
    problems
}

/// Nodes whose slot map differs from the entry node's, with the slots in question.
pub fn disagreements(views: &[View], topo: &Topology) -> Vec<String> {
    let Some(reference) = views.first() else {
        return Vec::new();
    };
    let mine = reference.slot_owners();
    let mut out = Vec::new();
    for v in &views[1..] {
        let theirs = v.slot_owners();
        if theirs == mine {
            continue;
        }
        let differing: Vec<u16> = (0..SLOT_COUNT)
            .filter(|s| mine.get(s) != theirs.get(s))
            .collect();
        let example = differing[0];
        let who = |o: Option<&&str>| o.map_or("nobody".to_string(), |id| topo.describe(id));
        out.push(format!(
            "{} and {} disagree about slots {}: e.g. slot {example} is served by {} according to the first, by {} according to the second",
            reference.addr,
            v.addr,
            format_ranges(&differing),
            who(mine.get(&example)),
            who(theirs.get(&example)),
        ));
    }
    out
}

fn notes(topo: &Topology) -> Vec<String> {
    let mut notes = Vec::new();
    for m in topo.masters().filter(|m| !m.assigned_slots.is_empty()) {
        let replicas = topo.replicas_of(&m.node_id).count();
        notes.push(format!(
            "{}: {} slots, {} keys, {} replica(s)",
            topo.describe(&m.node_id),
            m.assigned_slots.len(),
            topo.keys
                .get(&m.node_id)
                .map_or("?".into(), |k| k.to_string()),
            replicas
        ));
    }
    notes
}

/// A note when the nodes do not share one `cluster-node-timeout` (failure detection
/// and failover then behave differently per node; also what a run killed while a
/// new node's timeout was shortened would leave, see `rejoin`). Nodes whose
/// timeout cannot be read are left out.
fn node_timeout_note(b: &mut dyn Backend, views: &[View]) -> Option<String> {
    let mut by_value: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for v in views {
        if let Some(ms) = super::rejoin::node_timeout(b, &v.addr) {
            by_value.entry(ms).or_default().push(v.addr.to_string());
        }
    }
    if by_value.len() < 2 {
        return None;
    }
    let parts: Vec<String> = by_value
        .iter()
        .map(|(ms, addrs)| format!("{ms} ms on {}", addrs.join(", ")))
        .collect();
    Some(format!(
        "the nodes differ in cluster-node-timeout: {} (`redis-trib set-timeout` makes it one value)",
        parts.join("; ")
    ))
}

/// Per-master summary for `info`.
#[derive(Clone, Debug, Serialize)]
pub struct MasterInfo {
    /// Address.
    pub addr: String,
    /// Node id.
    pub node_id: String,
    /// Keys (None when unreachable).
    pub keys: Option<u64>,
    /// Slots served.
    pub slots: usize,
    /// Number of replicas.
    pub replicas: usize,
}

/// Keys, slots and replicas per master, and totals.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterInfo {
    /// One entry per master.
    pub masters: Vec<MasterInfo>,
    /// Keys over reachable masters.
    pub total_keys: u64,
    /// Slots served.
    pub total_slots: usize,
    /// Replicas in all.
    pub total_replicas: usize,
}

/// Summarises a topology (pure).
pub fn info(topo: &Topology) -> ClusterInfo {
    let masters: Vec<MasterInfo> = topo
        .masters()
        .map(|m| MasterInfo {
            addr: m.addr().to_string(),
            node_id: m.node_id.clone(),
            keys: topo.keys.get(&m.node_id).copied(),
            slots: m.assigned_slots.len(),
            replicas: topo.replicas_of(&m.node_id).count(),
        })
        .collect();
    ClusterInfo {
        total_keys: masters.iter().filter_map(|m| m.keys).sum(),
        total_slots: masters.iter().map(|m| m.slots).sum(),
        total_replicas: masters.iter().map(|m| m.replicas).sum(),
        masters,
    }
}
