//! `quit`: a node leaves its cluster. A master's slots (with their keys) go to the
//! other masters first, then every node forgets it, then it is reset.

use super::{concrete, ensure_healthy_warn, execute, holder, live_addrs, step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::balance::{base_balance_plan, Holder};
use crate::ops::wait;
use anyhow::{bail, Result};

/// Removes the node at `addr` from its cluster, keeping every key.
pub fn quit(b: &mut dyn Backend, addr: &Addr) -> Result<()> {
    super::take_lease(b, "quit", addr, &[])?;
    let topo = topology(b, addr)?;
    let me = topo.node(&topo.entry_id).expect("the entry node").clone();
    if topo.nodes.len() == 1 {
        bail!("{addr} is the last node of its cluster; use `shutdown` to dissolve the cluster");
    }
    ensure_healthy_warn(b, &topo, &format!("remove {addr}"))?;
    let replicas: Vec<String> = topo
        .replicas_of(&me.node_id)
        .map(|n| n.addr().to_string())
        .collect();
    if me.is_master() && !replicas.is_empty() {
        bail!(
            "{addr} is a master that still has replicas ({}); quit them first",
            replicas.join(", ")
        );
    }
    let others: Vec<Addr> = live_addrs(&topo)
        .into_iter()
        .filter(|a| a != &me.addr())
        .collect();
    if me.is_master() && !me.assigned_slots.is_empty() {
        // Give the slots away by the default plan with this node weighted 0, counting
        // only masters that will remain.
        let holders: Vec<Holder> = topo
            .masters()
            .map(|m| holder(m, if m.node_id == me.node_id { 0.0 } else { 1.0 }))
            .collect();
        if holders.len() < 2 {
            bail!("{addr} is the only master; its slots have nowhere to go");
        }
        let moves: Vec<_> = base_balance_plan(&holders)?
            .into_iter()
            .filter(|m| m.src == me.node_id)
            .collect();
        execute(b, &topo, &concrete(&topo, &moves)?)?;
    }
    step(b, format!("every node forgets {addr} ({})", me.short_id()));
    for other in &others {
        b.forget(other, &me.node_id)?;
    }
    step(b, format!("{addr}: reset"));
    b.reset(addr)?;
    wait::until(b, &format!("every node to forget {addr}"), |b| {
        wait::with_views(b, &others, |views| {
            views
                .iter()
                .find(|v| v.find(&me.node_id).is_some())
                .map(|v| format!("{} still knows {addr}", v.addr()))
        })
    })?;
    wait::converged(b, &others)
}
