//! `forget`: every live node drops a dead or unwanted node from its table.
//!
//! After `rescue` (or a failover) a dead master stays in every node's table, flagged
//! `fail`: `check` stays red and operations that want every node alive refuse. Redis
//! removes a node with `CLUSTER FORGET`, sent to each node, but a node that still
//! knows the forgotten one gossips it back to the others once their 60 s blacklist
//! of it expires. So FORGET goes to every live node at once, then the tables are
//! polled until none knows the node, and FORGET is sent again wherever it came back;
//! all bounded by the backend's timeout.
//!
//! Refused while the node owns slots (`rescue` or a failover first) or is reachable
//! and still serving the cluster (`quit` removes a live node and keeps its keys).

use super::{live_addrs, step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::ops::wait;
use crate::slots::format_ranges;
use crate::topology::{Node, NodeIndex, Topology};
use anyhow::{bail, Result};

/// Removes the node `spec` (node id, id prefix of 4+ characters, or `HOST:PORT`)
/// from every live node of `cluster`'s cluster; returns the node as it was known.
pub fn forget(b: &mut dyn Backend, cluster: &Addr, spec: &str) -> Result<Node> {
    super::take_lease(b, "forget", cluster, &[])?;
    let topo = topology(b, cluster)?;
    let node = find_node(&topo, spec)?.clone();
    let name = name_of(&topo, &node);
    let dead = node.is_failed() || topo.unreachable.contains_key(&node.node_id);
    if !node.assigned_slots.is_empty() {
        if dead {
            bail!(
                "{name} still owns slots {}; give them to a live node first (`redis-trib rescue`, or `redis-trib failover` to one of its replicas), then forget it",
                format_ranges(&node.assigned_slots)
            );
        }
        bail!(
            "{name} is reachable and serves slots {}; use `redis-trib quit {}` to remove it (its slots and keys go to the other masters)",
            format_ranges(&node.assigned_slots),
            node.addr()
        );
    }
    if !dead {
        bail!(
            "{name} is reachable and still a member of the cluster; use `redis-trib quit {}` to remove it (it is reset, so it cannot come back)",
            node.addr()
        );
    }
    let replicas: Vec<String> = topo
        .replicas_of(&node.node_id)
        .filter(|r| !r.is_failed() && !topo.unreachable.contains_key(&r.node_id))
        .map(|r| r.addr().to_string())
        .collect();
    if !replicas.is_empty() {
        bail!(
            "{name} still has live replicas ({}); Redis refuses to forget a replica's master: `redis-trib quit` them first",
            replicas.join(", ")
        );
    }
    let live: Vec<Addr> = live_addrs(&topo)
        .into_iter()
        .filter(|a| *a != node.addr())
        .collect();
    step(
        b,
        format!(
            "every live node ({}) forgets {name}, until none knows it",
            live.len()
        ),
    );
    for a in &live {
        send_forget(b, a, &node.node_id)?;
    }
    let id = node.node_id.clone();
    wait::until(b, &format!("every live node to forget {name}"), |b| {
        let mut knows = Vec::new();
        for a in &live {
            if b.view(a)?.node(&id).is_some() {
                knows.push(a.clone());
            }
        }
        // Gossip from a node that still knew it brought it back: forget it again there.
        for a in &knows {
            send_forget(b, a, &id)?;
        }
        Ok(knows.first().map(|a| format!("{a} still knows {name}")))
    })?;
    Ok(node)
}

/// `CLUSTER FORGET` on one node; a node that no longer knows the id (it learned of
/// its removal meanwhile) is fine.
fn send_forget(b: &mut dyn Backend, node: &Addr, id: &str) -> Result<()> {
    match b.forget(node, id) {
        Ok(()) => Ok(()),
        Err(e) => match b.view(node) {
            Ok(v) if v.node(id).is_none() => Ok(()),
            _ => Err(e),
        },
    }
}

/// How messages name a node: `node host:port (id)`, or `node id` once Redis has
/// dropped the address of a node that failed long ago (`noaddr`).
pub fn name_of(topo: &Topology, node: &Node) -> String {
    if node.no_addr() || node.port == 0 {
        format!("node {} (its address is gone)", node.node_id)
    } else {
        format!("node {}", topo.describe(&node.node_id))
    }
}

/// The node `spec` names: a node id, an id prefix, or an address (see
/// [`NodeIndex`]).
pub fn find_node<'a>(topo: &'a Topology, spec: &str) -> Result<&'a Node> {
    NodeIndex::new(&topo.nodes).resolve(spec, "node")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(lines: &[String]) -> Topology {
        Topology::from_node_lines(lines).unwrap()
    }

    #[test]
    fn finds_a_node_by_id_prefix_or_address() {
        let a = format!("{}{}", "ab".repeat(4), "0".repeat(32));
        let c = format!("{}{}", "ab".repeat(3), "c".repeat(34));
        let t = topo(&[
            format!("{a} 127.0.0.1:7000@17000 master - 0 0 1 connected 0-16383"),
            format!("{c} 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected"),
        ]);
        assert_eq!(find_node(&t, &c).unwrap().port, 7001);
        assert_eq!(find_node(&t, "abababab").unwrap().port, 7000);
        assert_eq!(find_node(&t, "127.0.0.1:7001").unwrap().port, 7001);
        assert!(find_node(&t, "abab")
            .unwrap_err()
            .to_string()
            .contains("matches 2 nodes"));
        assert!(find_node(&t, "127.0.0.1:7009")
            .unwrap_err()
            .to_string()
            .contains("no node of the cluster matches"));
    }
}
