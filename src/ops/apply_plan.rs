//! `apply_plan`: a whole plan of slot moves (`src → dst`, a count or exact slots),
//! validated as a whole against the cluster before anything changes, then run by the
//! parallel engine (live) or recorded as plan steps (dry run). Scripts hand it the
//! plans they compute instead of looping over `migrate_slots`, so planning and
//! moving cost one topology read, not one per move.

use super::{ensure_healthy_warn, execute, step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::slots::{format_ranges, SLOT_COUNT};
use crate::topology::{short_id, Node, NodeIndex, Topology};
use anyhow::{bail, Result};
use std::collections::HashMap;

/// How much one move carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Amount {
    /// This many slots, the source's lowest-numbered ones not named elsewhere.
    Count(usize),
    /// Exactly these slots.
    Slots(Vec<u16>),
}

/// One move of a plan, its ends named as scripts name nodes: a node id, an id prefix,
/// or an address (see [`NodeIndex`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanMove {
    /// The giving master.
    pub src: String,
    /// The receiving master.
    pub dst: String,
    /// What moves.
    pub amount: Amount,
}

/// What a plan did (or, in a dry run, would do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Moves run (moves of 0 slots are skipped).
    pub moves: usize,
    /// Slots moved.
    pub slots: usize,
    /// Keys moved.
    pub keys: u64,
}

/// Resolves and checks `plan` against `topo` as a whole: known masters, distinct live
/// ends, exact slots held by their source at the start and named once, counts a
/// source can give besides its named slots. Returns the concrete moves (exact slots
/// first reserved, then each count from its source's lowest-numbered slots left).
pub fn resolve_plan(topo: &Topology, plan: &[PlanMove]) -> Result<Vec<(String, String, Vec<u16>)>> {
    let masters = NodeIndex::new(topo.masters());
    let mut ends: Vec<(&Node, &Node)> = Vec::with_capacity(plan.len());
    // Slot → the move (1-based) naming it.
    let mut named: Vec<usize> = vec![0; usize::from(SLOT_COUNT)];
    let mut owner: Vec<Option<&str>> = vec![None; usize::from(SLOT_COUNT)];
    for m in topo.masters() {
        for &s in &m.assigned_slots {
            if let Some(o) = owner.get_mut(usize::from(s)) {
                *o = Some(m.node_id.as_str());
            }
        }
    }
    for (i, mv) in plan.iter().enumerate() {
        let at = || format!("plan move #{} ({} -> {})", i + 1, mv.src, mv.dst);
        let src = masters
            .resolve(&mv.src, "master")
            .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let dst = masters
            .resolve(&mv.dst, "master")
            .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        if src.node_id == dst.node_id {
            bail!("{}: source and destination are the same node", at());
        }
        if dst.is_failed() || topo.unreachable.contains_key(&dst.node_id) {
            bail!(
                "{}: the destination {} is failing or unreachable",
                at(),
                dst.addr()
            );
        }
        if let Amount::Slots(slots) = &mv.amount {
            for &s in slots {
                let Some(o) = owner.get(usize::from(s)) else {
                    bail!("{}: slot {s} is out of range 0..16383", at());
                };
                if *o != Some(src.node_id.as_str()) {
                    bail!(
                        "{}: {} does not hold slot {s}{}",
                        at(),
                        src.addr(),
                        o.map(|o| format!(" ({} does)", topo.describe(o)))
                            .unwrap_or_default()
                    );
                }
                let seen = &mut named[usize::from(s)];
                if *seen != 0 {
                    bail!("{}: slot {s} is already moved by move #{}", at(), *seen);
                }
                *seen = i + 1;
            }
        }
        ends.push((src, dst));
    }
    // Each source's pool: what it holds minus the slots named anywhere.
    let mut pools: HashMap<&str, std::vec::IntoIter<u16>> = HashMap::new();
    let mut out = Vec::with_capacity(plan.len());
    for (i, (mv, (src, dst))) in plan.iter().zip(&ends).enumerate() {
        let slots = match &mv.amount {
            Amount::Slots(slots) => slots.clone(),
            Amount::Count(n) => {
                let pool = pools.entry(src.node_id.as_str()).or_insert_with(|| {
                    src.assigned_slots
                        .iter()
                        .copied()
                        .filter(|&s| named[usize::from(s)] == 0)
                        .collect::<Vec<u16>>()
                        .into_iter()
                });
                let left = pool.len();
                let taken: Vec<u16> = pool.by_ref().take(*n).collect();
                if taken.len() < *n {
                    bail!(
                        "plan move #{} ({} -> {}): {} holds {} slots but the plan takes {} more than it has left ({left} not given by earlier moves or named)",
                        i + 1,
                        mv.src,
                        mv.dst,
                        src.addr(),
                        src.assigned_slots.len(),
                        n
                    );
                }
                taken
            }
        };
        if !slots.is_empty() {
            out.push((src.node_id.clone(), dst.node_id.clone(), slots));
        }
    }
    Ok(out)
}

/// Applies `plan` to the cluster `entry` belongs to (see [`resolve_plan`]): nothing
/// moves unless the whole plan holds. `planned_from`, when given, are the masters
/// the plan was computed from: a master that holds other slots now refuses the plan
/// (the cluster changed under it).
pub fn apply_plan(
    b: &mut dyn Backend,
    entry: &Addr,
    plan: &[PlanMove],
    planned_from: Option<&[Node]>,
) -> Result<Applied> {
    super::take_lease(b, "apply_plan", entry, &[])?;
    let topo = topology(b, entry)?;
    if let Some(before) = planned_from {
        for m in before {
            let now = topo.node(&m.node_id).map(|n| &n.assigned_slots);
            if now != Some(&m.assigned_slots) {
                bail!(
                    "the cluster changed since the plan was made: {} ({}) held {} slots then, {} now; plan again",
                    m.addr(),
                    short_id(&m.node_id),
                    m.assigned_slots.len(),
                    now.map_or("none (it left)".to_string(), |s| s.len().to_string())
                );
            }
        }
    }
    let moves = resolve_plan(&topo, plan)?;
    if moves.is_empty() {
        step(b, "the plan moves no slot");
        return Ok(Applied::default());
    }
    ensure_healthy_warn(b, &topo, "apply a plan")?;
    let slots: usize = moves.iter().map(|(_, _, s)| s.len()).sum();
    step(
        b,
        format!(
            "applying a plan of {} moves, {slots} slots{}",
            moves.len(),
            if moves.len() == 1 {
                format!(" ({})", format_ranges(&moves[0].2))
            } else {
                String::new()
            }
        ),
    );
    let keys = execute(b, &topo, &moves)?;
    Ok(Applied {
        moves: moves.len(),
        slots,
        keys,
    })
}
