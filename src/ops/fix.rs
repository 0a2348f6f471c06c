//! `fix`: finish or repair every open (migrating / importing) slot in the cluster.
//!
//! A marker that describes a migration from the slot's owner (the owner migrating to
//! X, or X importing from the owner) is finished: the remaining keys move to X and X
//! becomes the owner. A marker that fits no migration (importing from a node that
//! does not own the slot, say) is cleared after the keys that node holds in the slot
//! are moved back to the owner. Nothing is dropped either way.

use super::{live_addrs, step, topology};
use crate::addr::Addr;
use crate::backend::{Backend, SlotState};
use crate::topology::{Node, OpenSlot, Topology};
use crate::wait;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};

/// What to do about one open slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Finish moving `slot` from its owner `from` to `to`.
    Finish {
        /// The slot.
        slot: u16,
        /// Current owner.
        from: String,
        /// Intended owner.
        to: String,
    },
    /// Move `node`'s keys of `slot` to the owner, then clear its marker.
    Clear {
        /// The slot.
        slot: u16,
        /// The node with a stray marker.
        node: String,
        /// The slot's owner.
        owner: String,
    },
}

/// Decides the repairs for a topology's open slots (pure).
pub fn plan_repairs(topo: &Topology) -> Result<Vec<Repair>> {
    let owners = topo.slot_owners();
    let mut by_slot: BTreeMap<u16, Vec<OpenSlot>> = BTreeMap::new();
    for o in topo.open_slots() {
        by_slot.entry(o.slot).or_default().push(o);
    }
    let mut repairs = Vec::new();
    for (slot, markers) in by_slot {
        let Some(owner) = owners[slot as usize].map(|n| n.node_id.clone()) else {
            bail!(
                "slot {slot} is open on {} but no node serves it; run `redis-trib rescue` first",
                topo.describe(&markers[0].node_id)
            );
        };
        // (from, to) of each marker, read as a migration.
        let pairs: Vec<(&str, &str)> = markers
            .iter()
            .map(|o| match o.direction.as_str() {
                "migrating" => (o.node_id.as_str(), o.peer_id.as_str()),
                _ => (o.peer_id.as_str(), o.node_id.as_str()),
            })
            .collect();
        let targets: BTreeSet<&str> = pairs
            .iter()
            .filter(|(from, to)| *from == owner && *to != owner)
            .map(|(_, to)| *to)
            .collect();
        if targets.len() > 1 {
            bail!(
                "slot {slot} is being moved from its owner {} to several nodes at once; resolve it by hand",
                topo.describe(&owner)
            );
        }
        let target = targets.into_iter().next();
        if let Some(to) = target {
            match topo.node(to) {
                Some(t) if t.is_master() && !t.is_failed() && !topo.unreachable.contains_key(to) => {}
                _ => bail!(
                    "slot {slot} is migrating from {} to {}, which is not a reachable master; cannot finish it",
                    topo.describe(&owner),
                    topo.describe(to)
                ),
            }
            repairs.push(Repair::Finish {
                slot,
                from: owner.clone(),
                to: to.to_string(),
            });
        }
        // Markers that are not part of that migration are cleared.
        for (o, (from, to)) in markers.iter().zip(&pairs) {
            let part_of_finish = target.is_some_and(|t| *from == owner && *to == t);
            if !part_of_finish {
                repairs.push(Repair::Clear {
                    slot,
                    node: o.node_id.clone(),
                    owner: owner.clone(),
                });
            }
        }
    }
    Ok(repairs)
}

/// Repairs every open slot of the cluster `addr` belongs to; returns the repairs done.
pub fn fix(b: &mut dyn Backend, addr: &Addr) -> Result<Vec<Repair>> {
    let topo = topology(b, addr)?;
    let repairs = plan_repairs(&topo)?;
    let masters: Vec<Node> = topo.masters().cloned().collect();
    for r in &repairs {
        match r {
            Repair::Finish { slot, from, to } => {
                step(
                    b,
                    format!(
                        "slot {slot}: finishing its move from {} to {}",
                        topo.describe(from),
                        topo.describe(to)
                    ),
                );
                let (f, t) = (
                    topo.node(from).expect("known"),
                    topo.node(to).expect("known"),
                );
                b.move_slots(f, t, &[*slot], &masters)?;
            }
            Repair::Clear { slot, node, owner } => {
                step(
                    b,
                    format!(
                        "slot {slot}: clearing the stray marker on {}",
                        topo.describe(node)
                    ),
                );
                let (n, o) = (
                    topo.node(node).expect("known"),
                    topo.node(owner).expect("known"),
                );
                if node != owner {
                    b.move_keys(n, o, *slot)?;
                }
                b.set_slots(&n.addr(), &[*slot], &SlotState::Stable)?;
            }
        }
    }
    if !repairs.is_empty() {
        wait::converged(b, &live_addrs(&topo))?;
    }
    Ok(repairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::parse_node_line;

    fn topo(lines: &[String]) -> Topology {
        let mut t = Topology {
            nodes: lines.iter().map(|l| parse_node_line(l).unwrap()).collect(),
            ..Topology::default()
        };
        t.sort();
        t
    }
    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }
    fn line(c: char, port: u16, slots: &str) -> String {
        format!(
            "{} 127.0.0.1:{port}@1{port} master - 0 0 1 connected {slots}",
            id(c)
        )
    }

    #[test]
    fn finishes_a_migration_marked_on_both_sides() {
        let t = topo(&[
            line('a', 7000, &format!("0-8191 [5->-{}]", id('b'))),
            line('b', 7001, &format!("8192-16383 [5-<-{}]", id('a'))),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Finish {
                slot: 5,
                from: id('a'),
                to: id('b')
            }]
        );
    }

    #[test]
    fn finishes_a_lone_importing_or_migrating_marker() {
        let t = topo(&[
            line('a', 7000, "0-8191"),
            line('b', 7001, &format!("8192-16383 [5-<-{}]", id('a'))),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Finish {
                slot: 5,
                from: id('a'),
                to: id('b')
            }]
        );
        let t = topo(&[
            line('a', 7000, &format!("0-8191 [5->-{}]", id('b'))),
            line('b', 7001, "8192-16383"),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Finish {
                slot: 5,
                from: id('a'),
                to: id('b')
            }]
        );
    }

    #[test]
    fn clears_a_marker_that_fits_no_migration() {
        // b imports slot 5 from c, but a owns slot 5.
        let t = topo(&[
            line('a', 7000, "0-8191"),
            line('b', 7001, &format!("8192-16383 [5-<-{}]", id('c'))),
            line('c', 7002, ""),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Clear {
                slot: 5,
                node: id('b'),
                owner: id('a')
            }]
        );
    }

    #[test]
    fn refuses_open_slot_without_owner() {
        let t = topo(&[
            line('a', 7000, &format!("0-4 6-16383 [5-<-{}]", id('b'))),
            line('b', 7001, ""),
        ]);
        assert!(plan_repairs(&t)
            .unwrap_err()
            .to_string()
            .contains("no node serves it"));
    }
}
