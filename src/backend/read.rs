//! Reading a whole cluster through any backend: the entry node's view, then every
//! node it knows read at once (concurrently where the backend can, or from the
//! simulation's shared table), assembled into one [`Topology`].

use super::Backend;
use crate::addr::Addr;
use crate::topology::{Node, Topology, View};
use anyhow::{bail, Result};

/// Reads a node that must belong to a cluster (knows other nodes or serves slots).
pub fn member(b: &mut dyn Backend, addr: &Addr) -> Result<View> {
    let v = b.view(addr)?;
    if v.is_alone() && v.myself().assigned_slots.is_empty() {
        bail!("{addr} is not in a cluster (it knows no other node and serves no slot)");
    }
    Ok(v)
}

/// Reads the whole cluster `entry` belongs to: the views of every node it knows
/// (failed or address-less nodes are not contacted).
pub fn topology(b: &mut dyn Backend, entry: &Addr) -> Result<Topology> {
    let v = member(b, entry)?;
    topology_from(b, &v)
}

/// Same as [`topology`] from an already read entry view.
pub fn topology_from(b: &mut dyn Backend, entry: &View) -> Result<Topology> {
    let my_id = entry.myself().node_id.clone();
    if let Some(shared) = b.shared_view(&entry.addr) {
        // One table for the whole cluster: each node's own line is read from it.
        shared?;
        let others: Vec<_> = entry
            .nodes
            .iter()
            .filter(|n| n.node_id != my_id)
            .map(|n| {
                let view = if n.is_failed() || n.no_addr() || n.in_handshake() {
                    Err(format!("flagged {}", n.flags.join(",")))
                } else {
                    match b.shared_view(&n.addr()) {
                        Some(v) => v.map_err(|e| format!("{e:#}")),
                        None => Err("the backend stopped sharing views".to_string()),
                    }
                };
                (n.node_id.clone(), view)
            })
            .collect();
        return Ok(Topology::assemble_from(entry, others));
    }
    // Every reachable node is read at once (concurrently where the backend can).
    let others: Vec<&Node> = entry.nodes.iter().filter(|n| n.node_id != my_id).collect();
    let flagged = |n: &Node| n.is_failed() || n.no_addr() || n.in_handshake();
    let to_read: Vec<Addr> = others
        .iter()
        .filter(|n| !flagged(n))
        .map(|n| n.addr())
        .collect();
    let mut read = b.views(&to_read).into_iter();
    let others = others
        .into_iter()
        .map(|n| {
            let view = if flagged(n) {
                Err(format!("flagged {}", n.flags.join(",")))
            } else {
                match read.next() {
                    Some(v) => v.map_err(|e| format!("{e:#}")),
                    None => Err("the backend returned too few views".to_string()),
                }
            };
            (n.node_id.clone(), view)
        })
        .collect();
    Ok(Topology::assemble(entry, others))
}
