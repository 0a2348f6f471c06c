//! `check` and `info`: read-only reports. `check` finds what an operator must act
//! on (nodes that disagree about slot owners, open slots, uncovered slots, masters
//! that are failing or unreachable); `info` sums keys, slots and replicas.

use super::member;
use crate::addr::Addr;
use crate::backend::read::{read_cluster, Reach, Views};
use crate::backend::Backend;
use crate::slots::format_ranges;
use crate::topology::{OwnerReference, Seen, Topology, View};
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    // Failed nodes are asked too: one that answers is reported as it is.
    let (topology, views) = read_cluster(b, &entry, Reach::All)?;
    let mut problems = match &views {
        Views::Shared(v) => disagreements(v, &topology),
        Views::Owned(v) => disagreements(v, &topology),
    };
    let addrs = views.addrs();
    let disowned = match &views {
        Views::Shared(v) => super::disowned::disowned_slots(&topology, v),
        Views::Owned(v) => super::disowned::disowned_slots(&topology, v),
    };
    problems.extend(disowned_problems(&topology, &disowned));
    let disowned: HashSet<u16> = disowned.iter().map(|d| d.slot).collect();
    problems.extend(topology_problems(&topology, &disowned));
    problems.extend(failover_problems(&topology, &entry));
    problems.extend(setting_problems(b, &addrs));
    let masters: Vec<crate::topology::Node> = topology.masters().cloned().collect();
    problems.extend(
        super::slot_jobs::job_issues(b, &masters)
            .iter()
            .map(|i| format!("{i}: `redis-trib fix` resumes it")),
    );
    let mut notes = notes(&topology);
    // Zones, where known (`--zones FILE` or the servers' availability-zone).
    let (zone_problems, zone_notes) = super::zones::check_zones(b, &topology);
    problems.extend(zone_problems);
    notes.extend(zone_notes);
    Ok(CheckReport {
        problems,
        notes,
        topology,
    })
}

/// Slots no master claims while nodes name an owner, grouped by the owners named.
fn disowned_problems(topo: &Topology, disowned: &[super::disowned::Disowned]) -> Vec<String> {
    let mut by_names: BTreeMap<Vec<&str>, Vec<u16>> = BTreeMap::new();
    for d in disowned {
        let names = d.named.keys().map(String::as_str).collect();
        by_names.entry(names).or_default().push(d.slot);
    }
    by_names
        .into_iter()
        .map(|(names, slots)| {
            let named: Vec<String> = names.iter().map(|id| topo.describe(id)).collect();
            format!(
                "{} slots are claimed by no master while nodes name {} as their owner: {} (a claim that lost to a higher config epoch; run `redis-trib fix`)",
                slots.len(),
                named.join(" or "),
                format_ranges(&slots)
            )
        })
        .collect()
}

/// Problems visible in the assembled topology (pure); `disowned` slots are reported
/// apart (see [`disowned_problems`]), not as uncovered.
pub fn topology_problems(topo: &Topology, disowned: &HashSet<u16>) -> Vec<String> {
    let mut problems = Vec::new();
    for n in &topo.nodes {
        if n.is_failed() {
            // A failed master that owns slots is reported with its failover state.
            if !n.is_master() || n.assigned_slots.is_empty() {
                let what = if n.is_master() {
                    "a master that serves no slots (a replica took over, its slots were rescued, or it had none)".to_string()
                } else {
                    match n.master_id.as_deref() {
                        Some(m) => format!("a replica of {}", topo.describe(m)),
                        None => "a replica".to_string(),
                    }
                };
                let entry = topo
                    .node(&topo.entry_id)
                    .map_or("CLUSTER_NODE".to_string(), |e| e.addr().to_string());
                problems.push(format!(
                    "{} is flagged fail, {what}: `redis-trib forget {entry} {}` removes it from every node's table",
                    super::name_of(topo, n),
                    n.short_id()
                ));
            }
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
    let mut uncovered = topo.uncovered_slots();
    uncovered.retain(|s| !disowned.contains(s));
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
pub fn disagreements<V: Seen>(views: &[V], topo: &Topology) -> Vec<String> {
    let Some(reference) = views.first() else {
        return Vec::new();
    };
    let mut compare = OwnerReference::new(reference);
    let mut out = Vec::new();
    for v in &views[1..] {
        let Some(theirs) = compare.differs(v) else {
            continue;
        };
        let differing = compare.differing(&theirs);
        let mine = &compare.owners;
        let example = differing[0];
        let who = |o: Option<&str>| o.map_or("nobody".to_string(), |id| topo.describe(id));
        out.push(format!(
            "{} and {} disagree about slots {}: e.g. slot {example} is served by {} according to the first, by {} according to the second",
            reference.addr(),
            v.addr(),
            format_ranges(&differing),
            who(mine.get(usize::from(example)).copied().flatten()),
            who(theirs.get(usize::from(example)).copied().flatten()),
        ));
    }
    out
}

fn notes(topo: &Topology) -> Vec<String> {
    // One pass each for names and replica counts: a note per master stays O(1).
    let index = topo.index();
    let mut replicas_of: HashMap<&str, usize> = HashMap::new();
    for r in topo.nodes.iter().filter(|n| !n.is_master()) {
        if let Some(m) = r.master_id.as_deref() {
            *replicas_of.entry(m).or_default() += 1;
        }
    }
    let mut notes = Vec::new();
    for m in topo.masters().filter(|m| !m.assigned_slots.is_empty()) {
        let replicas = replicas_of.get(m.node_id.as_str()).copied().unwrap_or(0);
        notes.push(format!(
            "{}: {} slots, {} keys, {} replica(s)",
            index.describe(&m.node_id),
            m.assigned_slots.len(),
            topo.keys
                .get(&m.node_id)
                .map_or("?".into(), |k| k.to_string()),
            replicas
        ));
    }
    notes
}

/// Where a failed master that owns slots stands: a replica being promoted (it claims
/// the slots, not every node agrees yet), replicas none of which is promoted yet, or
/// no replica at all (`rescue` is the way). `entry` is the view check started from.
pub fn failover_problems(topo: &Topology, entry: &View) -> Vec<String> {
    let mut out = Vec::new();
    for m in topo
        .masters()
        .filter(|m| m.is_failed() && !m.assigned_slots.is_empty())
    {
        let name = topo.describe(&m.node_id);
        let slots = format_ranges(&m.assigned_slots);
        // Its replicas as the entry saw them; their own lines may say they are
        // masters already (a promotion under way).
        let replicas: Vec<&crate::topology::Node> = entry
            .nodes
            .iter()
            .filter(|r| r.master_id.as_deref() == Some(m.node_id.as_str()))
            .filter_map(|r| topo.node(&r.node_id))
            .collect();
        let promoted = replicas.iter().find(|r| {
            r.is_master()
                && m.assigned_slots
                    .iter()
                    .any(|s| r.assigned_slots.binary_search(s).is_ok())
        });
        let live: Vec<String> = replicas
            .iter()
            .filter(|r| !r.is_failed() && !topo.unreachable.contains_key(&r.node_id))
            .map(|r| r.addr().to_string())
            .collect();
        out.push(match (promoted, live.first()) {
            (Some(r), _) => format!(
                "master {name} failed; its replica {} is being promoted (it claims slots {slots}; not every node agrees yet): wait, `redis-trib check` again",
                topo.describe(&r.node_id)
            ),
            (None, Some(first)) => format!(
                "master {name} failed and still owns slots {slots}; none of its replicas ({}) has been promoted yet: Redis promotes one once the masters agree it failed, or run `redis-trib failover {first} --force`",
                live.join(", ")
            ),
            (None, None) => format!(
                "master {name} failed and owns slots {slots} with no live replica to take over: run `redis-trib rescue CLUSTER_NODE FREE_NODE`"
            ),
        });
    }
    out
}

/// For each setting operations lower for a while (see [`super::rejoin::LOWERED`]):
/// the value most nodes share, and the nodes whose value differs, with theirs. A run
/// killed while a new node's value was lowered leaves such a node (failure detection
/// then differs per node, or a master skips its sync delay). Nodes whose value cannot
/// be read are left out; on a tie the larger value counts as the cluster's.
pub(super) fn setting_outliers(b: &mut dyn Backend, addrs: &[Addr]) -> Vec<SettingOutliers> {
    // Every setting of every node in one round: `CONFIG GET` with several names.
    let mut args: Vec<Vec<u8>> = vec![b"CONFIG".to_vec(), b"GET".to_vec()];
    args.extend(
        super::rejoin::LOWERED
            .iter()
            .map(|(name, _)| name.as_bytes().to_vec()),
    );
    let replies: Vec<BTreeMap<String, String>> = b
        .execute_many(addrs, &args)
        .into_iter()
        .map(|reply| {
            let flat: Vec<String> = reply
                .ok()
                .and_then(|r| redis::from_redis_value(r).ok())
                .unwrap_or_default();
            flat.chunks(2)
                .filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone())))
                .collect()
        })
        .collect();
    super::rejoin::LOWERED
        .iter()
        .filter_map(|&(name, unit)| {
            let read: Vec<(Addr, u64)> = addrs
                .iter()
                .zip(&replies)
                .filter_map(|(a, r)| Some((a.clone(), r.get(name)?.parse().ok()?)))
                .collect();
            outliers_of(read).map(|(common, nodes)| SettingOutliers {
                name,
                unit,
                common,
                nodes,
            })
        })
        .collect()
}

/// Nodes whose value of one setting differs from the cluster's.
pub(super) struct SettingOutliers {
    /// The setting (`cluster-node-timeout`).
    pub name: &'static str,
    /// Its unit (`ms`).
    pub unit: &'static str,
    /// The value most nodes share.
    pub common: u64,
    /// The nodes that differ, with their value.
    pub nodes: Vec<(Addr, u64)>,
}

/// The most common value (the larger on a tie) and the entries that differ from it,
/// or `None` when all agree (pure).
fn outliers_of(read: Vec<(Addr, u64)>) -> Option<(u64, Vec<(Addr, u64)>)> {
    let mut counts: std::collections::BTreeMap<u64, usize> = Default::default();
    for (_, ms) in &read {
        *counts.entry(*ms).or_default() += 1;
    }
    // BTreeMap order: the last of the most common values is the largest.
    let common = counts
        .iter()
        .max_by_key(|(ms, n)| (**n, **ms))
        .map(|(ms, _)| *ms)?;
    let outliers: Vec<(Addr, u64)> = read.into_iter().filter(|(_, ms)| *ms != common).collect();
    (!outliers.is_empty()).then_some((common, outliers))
}

/// One problem per node whose value of a lowered setting differs from the cluster's.
fn setting_problems(b: &mut dyn Backend, addrs: &[Addr]) -> Vec<String> {
    let mut out = Vec::new();
    for o in setting_outliers(b, addrs) {
        let (name, unit, common) = (o.name, o.unit, o.common);
        for (a, v) in &o.nodes {
            let remedy = if name == "cluster-node-timeout" {
                " (or `redis-trib set-timeout` sets one value everywhere)"
            } else {
                ""
            };
            out.push(format!(
                "{a} has {name} {v} {unit}, the other nodes {common} {unit} (a run killed while it was lowered leaves this): `redis-trib fix` puts {common} back{remedy}"
            ));
        }
    }
    out
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
    /// Server and version (`valkey 9.1.2`), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
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
    /// Server and version → how many nodes (masters and replicas) run it, when read.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, usize>,
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
            server: topo.servers.get(&m.node_id).cloned(),
        })
        .collect();
    let mut servers = BTreeMap::new();
    for s in topo.servers.values() {
        *servers.entry(s.clone()).or_insert(0) += 1;
    }
    ClusterInfo {
        servers,
        total_keys: masters.iter().filter_map(|m| m.keys).sum(),
        total_slots: masters.iter().map(|m| m.slots).sum(),
        total_replicas: masters.iter().map(|m| m.replicas).sum(),
        masters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(port: u16, lines: &[(char, u16, &str)]) -> View {
        let nodes = lines
            .iter()
            .map(|&(id, p, slots)| {
                let flags = if p == port { "myself,master" } else { "master" };
                let line = format!(
                    "{} 127.0.0.1:{p}@1{p} {flags} - 0 0 1 connected {slots}",
                    id.to_string().repeat(40)
                );
                crate::topology::parse_node_line(&line).unwrap()
            })
            .collect();
        View {
            addr: Addr::new("127.0.0.1", port),
            nodes,
            cluster_state: "ok".into(),
            current_epoch: 1,
            keys: 0,
        }
    }

    #[test]
    fn views_listing_the_same_claims_in_another_order_agree_and_a_moved_slot_does_not() {
        let topo = Topology::default();
        let a = view(7000, &[('a', 7000, "0-8191"), ('b', 7001, "8192-16383")]);
        let b = view(7001, &[('b', 7001, "8192-16383"), ('a', 7000, "0-8191")]);
        let moved = view(7002, &[('a', 7000, "0-8190"), ('b', 7001, "8191-16383")]);
        assert_eq!(
            disagreements(&[a.clone(), b.clone()], &topo),
            Vec::<String>::new()
        );
        let found = disagreements(&[a.clone(), b, moved], &topo);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("127.0.0.1:7002"), "{found:?}");
        assert!(found[0].contains("disagree about slots 8191:"), "{found:?}");
        // Overlapping claims: line order decides the owner, so equal claims are not
        // taken as agreement (the later line wins slot 100 in each view).
        let x = view(7000, &[('a', 7000, "0-16383"), ('b', 7001, "100")]);
        let y = view(7001, &[('b', 7001, "100"), ('a', 7000, "0-16383")]);
        let found = disagreements(&[x, y], &topo);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("disagree about slots 100:"), "{found:?}");
    }

    #[test]
    fn the_common_node_timeout_wins_and_a_tie_goes_to_the_larger() {
        let a = |p: u16, ms: u64| (Addr::new("127.0.0.1", p), ms);
        let (common, odd) = outliers_of(vec![a(1, 3000), a(2, 500), a(3, 3000)]).unwrap();
        assert_eq!((common, odd), (3000, vec![a(2, 500)]));
        let (common, odd) = outliers_of(vec![a(1, 500), a(2, 3000)]).unwrap();
        assert_eq!((common, odd), (3000, vec![a(1, 500)]));
        assert_eq!(outliers_of(vec![a(1, 3000), a(2, 3000)]), None);
        assert_eq!(outliers_of(Vec::new()), None);
    }
}
