//! `start` / `start_multi`: free nodes become one cluster owning all 16384 slots.

use super::rejoin::with_short_node_timeout;
use super::{free_nodes, step};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::ops::wait;
use crate::slots::{format_ranges, split_evenly};
use anyhow::{bail, Result};

/// One free node becomes a cluster owning every slot, `max_slots` per ADDSLOTS.
pub fn start(b: &mut dyn Backend, addr: &Addr, max_slots: usize) -> Result<()> {
    start_multi(b, std::slice::from_ref(addr), max_slots)
}

/// Several free nodes become one cluster, slots split evenly in the order given.
/// Duplicates (same address, or two spellings of one node) count once.
pub fn start_multi(b: &mut dyn Backend, addrs: &[Addr], max_slots: usize) -> Result<()> {
    if addrs.is_empty() {
        bail!("give at least one node");
    }
    if max_slots == 0 {
        bail!("--max-slots must be at least 1");
    }
    super::take_lease(b, "start", &addrs[0], &addrs[1..])?;
    // Check every node (read all at once) before touching any.
    let mut nodes = Vec::new();
    let mut views = Vec::new();
    for (addr, v) in addrs.iter().zip(free_nodes(b, addrs)?) {
        let id = v.myself().node_id.clone();
        if !nodes.iter().any(|(_, other): &(Addr, _)| other == &id) {
            nodes.push((addr.clone(), id));
            views.push(v);
        }
    }
    let parts = split_evenly(nodes.len());
    for (i, ((addr, _), slots)) in nodes.iter().zip(&parts).enumerate() {
        if nodes.len() > 1 && views[i].myself().config_epoch == 0 {
            b.set_config_epoch(addr, i as u64 + 1)?;
        }
        step(b, format!("{addr}: adding slots {}", format_ranges(slots)));
        b.add_slots(addr, slots, max_slots)?;
    }
    // Meet every pair: after a quit, FORGET keeps a 60 s blacklist on some nodes,
    // so gossip alone would not introduce everyone.
    for (i, (a, _)) in nodes.iter().enumerate() {
        for (other, _) in &nodes[i + 1..] {
            b.meet(a, other)?;
        }
    }
    let members: Vec<Addr> = nodes.into_iter().map(|(a, _)| a).collect();
    if members.len() > 1 {
        step(
            b,
            format!("waiting for {} nodes to know each other", members.len()),
        );
        wait::acquainted(b, &members)?;
    }
    // Brand-new masters: their rejoin delay is shortened (see `rejoin`).
    with_short_node_timeout(b, &members, "they report ok", |b| {
        step(
            b,
            format!("waiting for {} node(s) to report ok", members.len()),
        );
        wait::converged(b, &members)
    })
}
