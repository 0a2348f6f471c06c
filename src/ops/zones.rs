//! Zones (availability zones, racks): which failure domain each node lives in, so
//! that `create` spreads masters and replicas across them and `check` reports a
//! master whose replicas share its zone.
//!
//! A node's zone comes from the `--zones FILE` given to the process (see
//! [`ZoneFile`]), else from the server's own `availability-zone` setting (Valkey
//! 8.0+: `CONFIG GET availability-zone`), else it is unknown (or, offline, from the
//! snapshot's `zone` field). Zones read from the servers are remembered in the
//! backend's [`ZoneBook`], and set on the nodes a script lists, so reading `n.zone`
//! costs no round trip.

use crate::addr::Addr;
use crate::backend::Backend;
use crate::topology::{Node, Topology};
pub use crate::topology::{ZoneBook, ZoneFile};
use std::collections::{BTreeMap, BTreeSet};

/// The zone of `addr` as far as `b` knows without asking it (the `--zones` file,
/// else what the server said earlier through this backend).
pub fn known(b: &mut dyn Backend, addr: &Addr) -> Option<String> {
    b.zone_book().known(addr)
}

/// The zone of `addr`: the `--zones` file's, else the server's `availability-zone`
/// (read once per backend; a server without the setting, or one that does not
/// answer, has none).
pub fn zone_of(b: &mut dyn Backend, addr: &Addr) -> Option<String> {
    zones_of(b, std::slice::from_ref(addr)).pop().flatten()
}

/// [`zone_of`] for each of `addrs`, the nodes not settled yet asked all at once.
pub fn zones_of(b: &mut dyn Backend, addrs: &[Addr]) -> Vec<Option<String>> {
    let ask: Vec<Addr> = addrs
        .iter()
        .filter(|a| !b.zone_book().settled(a))
        .cloned()
        .collect();
    if !ask.is_empty() {
        let replies = b.execute_many(&ask, &zone_query());
        for (a, reply) in ask.iter().zip(replies) {
            // Only an answer is remembered: a node that did not answer is asked again later.
            if let Some(z) = reply.ok().map(zone_in) {
                b.zone_book().remember(a, z);
            }
        }
    }
    addrs.iter().map(|a| b.zone_book().known(a)).collect()
}

/// The command asking a node its zone.
fn zone_query() -> Vec<Vec<u8>> {
    ["CONFIG", "GET", "availability-zone"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

/// The zone in a `CONFIG GET availability-zone` reply (`None` when not set or empty).
fn zone_in(reply: redis::Value) -> Option<String> {
    let pair: Vec<String> = redis::from_redis_value(reply).unwrap_or_default();
    pair.get(1).filter(|z| !z.is_empty()).cloned()
}

/// [`learn`] for every node of `topo` that was read, then each node's `zone` set
/// from what is known.
pub fn learn_topology(b: &mut dyn Backend, topo: &mut Topology) {
    let unreachable: BTreeSet<String> = topo.unreachable.keys().cloned().collect();
    learn(b, &topo.nodes, &unreachable);
    for n in &mut topo.nodes {
        if let Some(z) = b.zone_book().known(&n.addr()) {
            n.zone = Some(z);
        }
    }
}

/// Reads (and remembers) the zone of every node of `nodes` that answers: nodes
/// flagged failed or `unreachable` are looked up in the file only.
pub fn learn(b: &mut dyn Backend, nodes: &[Node], unreachable: &BTreeSet<String>) {
    // The nodes neither the file nor the cache answers for, asked all at once.
    let ask: Vec<Addr> = nodes
        .iter()
        .filter(|n| !(n.is_failed() || n.no_addr() || unreachable.contains(&n.node_id)))
        .map(Node::addr)
        .filter(|a| !b.zone_book().settled(a))
        .collect();
    let args: Vec<Vec<u8>> = ["CONFIG", "GET", "availability-zone"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let replies = b.execute_many(&ask, &args);
    for (a, reply) in ask.iter().zip(replies) {
        // Only an answer is remembered: a node that did not answer is asked again.
        let Ok(reply) = reply else { continue };
        let pair: Vec<String> = redis::from_redis_value(reply).unwrap_or_default();
        let z = pair.get(1).filter(|z| !z.is_empty()).cloned();
        b.zone_book().remember(a, z);
    }
}

/// What `check` says about zones (pure), given each node's zone by id: a master
/// serving slots whose every replica is in its own zone is a problem (losing that
/// zone loses the shard) when the cluster spans other zones; a master with some
/// replica in its zone and another elsewhere is a note; so is a cluster in one zone.
/// Nothing when no zone is known.
pub fn zone_findings(
    topo: &Topology,
    zone: &dyn Fn(&Node) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let zones: BTreeMap<&str, Option<String>> = topo
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), zone(n)))
        .collect();
    let known: BTreeSet<&String> = zones.values().flatten().collect();
    if known.is_empty() {
        return (problems, notes);
    }
    if known.len() == 1 {
        notes.push(format!(
            "every node with a known zone is in zone {}: no spreading across zones is possible",
            known.iter().next().map_or("", |z| z.as_str())
        ));
        return (problems, notes);
    }
    for m in topo.masters().filter(|m| !m.assigned_slots.is_empty()) {
        let Some(mz) = zones.get(m.node_id.as_str()).cloned().flatten() else {
            continue;
        };
        let replicas: Vec<&Node> = topo
            .replicas_of(&m.node_id)
            .filter(|r| !r.is_failed())
            .collect();
        let same: Vec<String> = replicas
            .iter()
            .filter(|r| zones.get(r.node_id.as_str()).cloned().flatten().as_deref() == Some(&mz))
            .map(|r| r.addr().to_string())
            .collect();
        if same.is_empty() {
            continue;
        }
        let name = topo.describe(&m.node_id);
        if same.len() == replicas.len() {
            problems.push(format!(
                "master {name} and its replica(s) {} are all in zone {mz}: losing that zone loses these slots; `zones::fix_replicas(cluster)` (import \"zones\") re-points replicas across zones",
                same.join(", ")
            ));
        } else {
            notes.push(format!(
                "master {name} shares zone {mz} with its replica(s) {} (it has another replica in another zone)",
                same.join(", ")
            ));
        }
    }
    (problems, notes)
}

/// `zone_findings` on a live (or simulated) cluster: zones from the file or the
/// servers that answer.
pub fn check_zones(b: &mut dyn Backend, topo: &Topology) -> (Vec<String>, Vec<String>) {
    let unreachable: BTreeSet<String> = topo.unreachable.keys().cloned().collect();
    learn(b, &topo.nodes, &unreachable);
    let book = b.zone_book();
    let zones: BTreeMap<&str, Option<String>> = topo
        .nodes
        .iter()
        .map(|n| {
            (
                n.node_id.as_str(),
                book.known(&n.addr()).or_else(|| n.zone.clone()),
            )
        })
        .collect();
    zone_findings(topo, &|n| zones.get(n.node_id.as_str()).cloned().flatten())
}

/// Adds `"zone"` to each node of a serialized topology (the `list --json`
/// document) whose zone is known; nothing when no zone is.
pub fn annotate(b: &mut dyn Backend, topo: &Topology, doc: &mut serde_json::Value) {
    let unreachable: BTreeSet<String> = topo.unreachable.keys().cloned().collect();
    learn(b, &topo.nodes, &unreachable);
    let Some(nodes) = doc.get_mut("nodes").and_then(|n| n.as_array_mut()) else {
        return;
    };
    for (doc_node, n) in nodes.iter_mut().zip(&topo.nodes) {
        let zone = n.zone.clone().or_else(|| known(b, &n.addr()));
        if let (Some(z), Some(obj)) = (zone, doc_node.as_object_mut()) {
            obj.insert("zone".into(), serde_json::Value::String(z));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(spec: &[(&str, u16, Option<&str>)]) -> Topology {
        // (id letter, port, master letter); masters serve one slot each.
        let id = |c: &str| c.repeat(40);
        let nodes: Vec<Node> = spec
            .iter()
            .enumerate()
            .map(|(i, (me, port, master))| {
                let line = match master {
                    None => format!(
                        "{} 10.0.0.1:{port}@1{port} master - 0 0 {} connected {i}",
                        id(me),
                        i + 1
                    ),
                    Some(m) => format!(
                        "{} 10.0.0.1:{port}@1{port} slave {} 0 0 {} connected",
                        id(me),
                        id(m),
                        i + 1
                    ),
                };
                crate::topology::parse_node_line(&line).unwrap()
            })
            .collect();
        Topology {
            entry_id: nodes[0].node_id.clone(),
            nodes,
            ..Topology::default()
        }
    }

    #[test]
    fn findings_problem_note_and_silence() {
        // a, b masters; c replicates a, d and e replicate b.
        let t = topo(&[
            ("a", 1, None),
            ("b", 2, None),
            ("c", 3, Some("a")),
            ("d", 4, Some("b")),
            ("e", 5, Some("b")),
        ]);
        let zones = |map: &'static [(u16, &'static str)]| {
            move |n: &Node| {
                map.iter()
                    .find(|(p, _)| *p == n.port)
                    .map(|(_, z)| z.to_string())
            }
        };
        let (p, n) = zone_findings(
            &t,
            &zones(&[(1, "x"), (2, "y"), (3, "x"), (4, "y"), (5, "x")]),
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("10.0.0.1:3") && p[0].contains("zone x"),
            "{p:?}"
        );
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(
            n[0].contains("10.0.0.1:4") && n[0].contains("zone y"),
            "{n:?}"
        );
        let (p, n) = zone_findings(
            &t,
            &zones(&[(1, "x"), (2, "y"), (3, "y"), (4, "x"), (5, "x")]),
        );
        assert!(p.is_empty() && n.is_empty(), "{p:?} {n:?}");
        let (p, n) = zone_findings(&t, &zones(&[]));
        assert!(p.is_empty() && n.is_empty());
        let (p, n) = zone_findings(&t, &zones(&[(1, "x"), (3, "x")]));
        assert!(p.is_empty());
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("zone x: no spreading"), "{n:?}");
    }
}
