//! Reading a whole cluster through any backend: the entry node's view, then every
//! node it knows read at once (concurrently where the backend can, or from the
//! simulation's shared table), assembled into one [`Topology`].

use super::Backend;
use crate::addr::Addr;
use crate::topology::{Node, Seen, SharedView, Topology, View};
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

/// Same as [`topology`] from an already read entry view. A topology takes each
/// node's own line from that node: only those lines are read of the other nodes.
pub fn topology_from(b: &mut dyn Backend, entry: &View) -> Result<Topology> {
    Ok(read(b, entry, Reach::Live, Lines::Own)?.0)
}

/// Which lines of each node's `CLUSTER NODES` are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lines {
    /// Every line (views compared with each other).
    All,
    /// The node's own line (a topology).
    Own,
}

/// Which of the nodes the entry knows are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Those not flagged failed (what operations act on).
    Live,
    /// Failed ones too (what `check` reports on: a node flagged failed may answer).
    All,
}

/// Every view read, the entry's first: shared with the simulation's node table
/// (n views cost one table), or owned (live nodes).
pub enum Views {
    /// Views over a simulation's shared table.
    Shared(Vec<SharedView>),
    /// Views read from live nodes.
    Owned(Vec<View>),
}

impl Views {
    /// The addresses of the nodes read, the entry's first.
    pub fn addrs(&self) -> Vec<Addr> {
        match self {
            Views::Shared(v) => v.iter().map(|v| v.addr().clone()).collect(),
            Views::Owned(v) => v.iter().map(|v| v.addr.clone()).collect(),
        }
    }
}

/// Reads the cluster `entry` belongs to: every node it knows but itself (not those
/// without an address or in handshake; failed ones as `reach` says), all at once
/// (concurrently where the backend can, from the shared table in a simulation).
/// Returns the assembled topology and the views read, the entry's first.
pub fn read_cluster(b: &mut dyn Backend, entry: &View, reach: Reach) -> Result<(Topology, Views)> {
    read(b, entry, reach, Lines::All)
}

/// [`read_cluster`], reading of the other nodes the `lines` asked for (with
/// [`Lines::Own`], the live views returned hold only their own line).
fn read(
    b: &mut dyn Backend,
    entry: &View,
    reach: Reach,
    lines: Lines,
) -> Result<(Topology, Views)> {
    let my_id = entry.myself().node_id.clone();
    let others: Vec<&Node> = entry.nodes.iter().filter(|n| n.node_id != my_id).collect();
    let skipped =
        |n: &Node| n.no_addr() || n.in_handshake() || (reach == Reach::Live && n.is_failed());
    let flagged = |n: &Node| format!("flagged {}", n.flags.join(","));
    if let Some(shared) = b.shared_view(&entry.addr) {
        // One table for the whole cluster: each node's own line is read from it.
        let mut views = vec![shared?];
        let mut read = Vec::with_capacity(others.len());
        for n in others {
            let view = if skipped(n) {
                Err(flagged(n))
            } else {
                match b.shared_view(&n.addr()) {
                    Some(v) => v.map_err(|e| format!("{e:#}")),
                    None => Err("the backend stopped sharing views".to_string()),
                }
            };
            if let Ok(v) = &view {
                views.push(v.clone());
            }
            read.push((n.node_id.clone(), view));
        }
        let topo = Topology::assemble_from(entry, read);
        return Ok((topo, Views::Shared(views)));
    }
    // Every node to read at once (concurrently where the backend can).
    let to_read: Vec<Addr> = others
        .iter()
        .filter(|n| !skipped(n))
        .map(|n| n.addr())
        .collect();
    let answers = match lines {
        Lines::All => b.views(&to_read),
        Lines::Own => b.own_views(&to_read),
    };
    let mut answers = answers.into_iter();
    let mut read: Vec<(String, std::result::Result<View, String>)> =
        Vec::with_capacity(others.len());
    for n in others {
        let view = if skipped(n) {
            Err(flagged(n))
        } else {
            match answers.next() {
                Some(v) => v.map_err(|e| format!("{e:#}")),
                None => Err("the backend returned too few views".to_string()),
            }
        };
        read.push((n.node_id.clone(), view));
    }
    let topo = Topology::assemble_from(
        entry,
        read.iter()
            .map(|(id, v)| (id.clone(), v.as_ref().map_err(String::clone))),
    );
    let mut views = vec![entry.clone()];
    views.extend(read.into_iter().filter_map(|(_, v)| v.ok()));
    Ok((topo, Views::Owned(views)))
}
