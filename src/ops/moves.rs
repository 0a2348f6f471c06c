//! The one way operations move slots. A plan of counts ([`Move`]: source,
//! destination, how many) is made [`concrete`] against a topology (validated,
//! each source giving its lowest-numbered slots), then [`execute`]d: every move
//! handed at once to the backend's parallel engine, then a wait until every node
//! agrees on the new slot map. join, quit, rebalance, reshard, migrate_slots and
//! apply_plan all move slots through here.

use super::{live_addrs, step};
use crate::backend::Backend;
use crate::balance::{pick_slots, validate_plan, Holder, Move};
use crate::engine::Job;
use crate::ops::wait;
use crate::topology::{epoch_collision, Node, Topology};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// One concrete move: source id, destination id, the slots.
pub type Concrete = (String, String, Vec<u16>);

/// A master as planning sees it: its id, how many slots it holds, `weight`.
pub fn holder(m: &Node, weight: f64) -> Holder {
    Holder {
        id: m.node_id.clone(),
        slots: m.assigned_slots.len(),
        weight,
    }
}

/// `masters` paired with `weights`, as planning wants them.
pub fn holders(masters: &[Node], weights: &[f64]) -> Vec<Holder> {
    masters
        .iter()
        .zip(weights)
        .map(|(m, &w)| holder(m, w))
        .collect()
}

/// The slots each move of `moves` takes, from the masters of `topo`: the plan is
/// validated as a whole first (every node a master, no source giving more than it
/// holds), then each source gives its lowest-numbered slots, none twice.
pub fn concrete(topo: &Topology, moves: &[Move]) -> Result<Vec<Concrete>> {
    let holders: Vec<Holder> = topo.masters().map(|m| holder(m, 1.0)).collect();
    validate_plan(&holders, moves)?;
    let held: BTreeMap<String, Vec<u16>> = topo
        .masters()
        .map(|m| (m.node_id.clone(), m.assigned_slots.clone()))
        .collect();
    Ok(pick_slots(&held, moves)?
        .into_iter()
        .map(|(m, slots)| (m.src, m.dst, slots))
        .collect())
}

/// Carries out `moves` (see [`run_moves`]) and waits until every live node of
/// `topo` agrees on the new slot map. Returns the keys moved.
pub fn execute(b: &mut dyn Backend, topo: &Topology, moves: &[Concrete]) -> Result<u64> {
    let keys = run_moves(b, topo, moves)?;
    step(b, "waiting for the cluster to agree on the new slot map");
    wait::converged(b, &live_addrs(topo))?;
    Ok(keys)
}

/// Moves concrete slot sets (in parallel where the backend can), announcing each.
/// Masters sharing a config epoch (left by another tool, or by claims made at once)
/// are first given time to settle it: see [`crate::engine::epochs`].
pub fn run_moves(b: &mut dyn Backend, topo: &Topology, moves: &[Concrete]) -> Result<u64> {
    if let Some(collision) = epoch_collision(topo.answering_masters()) {
        step(
            b,
            format!("waiting for config epochs to settle before moving slots: {collision}"),
        );
        wait::epochs_distinct(b, &live_addrs(topo))?;
    }
    // Masters that must learn the new owners: not the dead ones.
    let masters: Vec<Node> = topo
        .masters()
        .filter(|m| !topo.unreachable.contains_key(&m.node_id))
        .cloned()
        .collect();
    let mut jobs = Vec::new();
    let index = topo.index();
    for (src, dst, slots) in moves {
        let (Some(s), Some(d)) = (index.node(src), index.node(dst)) else {
            bail!("move names a node that is not in the cluster");
        };
        step(
            b,
            format!(
                "moving {} slots from {} to {}",
                slots.len(),
                index.describe(src),
                index.describe(dst)
            ),
        );
        jobs.push(Job {
            src: s.clone(),
            dst: d.clone(),
            slots: slots.clone(),
        });
    }
    Ok(b.move_many(&jobs, &masters)?.keys)
}
