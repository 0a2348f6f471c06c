//! Disowned slots: slots no master claims in its own line while other nodes still
//! name a live master as their owner. A destination whose claim lost to a higher
//! config epoch leaves slots so (it gave them back to the source, which had already
//! been told they were the destination's: each names the other, neither claims,
//! and clients bounce between the two). `check` names them with the right remedy;
//! `fix` gives each back to the named owner that holds its keys, which claims it
//! with a fresh epoch while every other master is told directly.

use super::step;
use crate::backend::{Backend, SlotState};
use crate::slots::format_ranges;
use crate::topology::{Seen, Topology};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, HashSet};

/// A slot no master claims, and the live masters nodes name as its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disowned {
    /// The slot.
    pub slot: u16,
    /// Each live master some node names as the owner, with how many nodes name it.
    pub named: BTreeMap<String, usize>,
}

/// The slots of `topo` (assembled from each master's own line) that no master
/// claims but some of `views` give to a live master (pure). A slot nobody names, or
/// names only a failed or unreachable node for, is not disowned but uncovered
/// (`rescue`'s job).
pub fn disowned_slots<V: Seen>(topo: &Topology, views: &[V]) -> Vec<Disowned> {
    let uncovered = topo.uncovered_slots();
    if uncovered.is_empty() {
        return Vec::new();
    }
    let live: HashSet<&str> = topo
        .answering_masters()
        .map(|m| m.node_id.as_str())
        .collect();
    let owners: Vec<Vec<Option<&str>>> = views.iter().map(Seen::owners).collect();
    uncovered
        .into_iter()
        .filter_map(|slot| {
            let mut named: BTreeMap<String, usize> = BTreeMap::new();
            for o in &owners {
                if let Some(id) = o[usize::from(slot)].filter(|id| live.contains(id)) {
                    *named.entry(id.to_string()).or_default() += 1;
                }
            }
            (!named.is_empty()).then_some(Disowned { slot, named })
        })
        .collect()
}

/// The owner a disowned slot goes back to, given the keys each named master holds
/// in it: the only one holding keys; with none holding any, the one most nodes
/// name (the lowest id on a tie). Refused when several hold keys (moving them
/// together is a person's call).
pub fn choose_owner(d: &Disowned, keys: &BTreeMap<String, u64>) -> Result<String> {
    let holders: Vec<&String> = d
        .named
        .keys()
        .filter(|id| keys.get(*id).copied().unwrap_or(0) > 0)
        .collect();
    match holders.as_slice() {
        [one] => Ok((*one).clone()),
        [] => d
            .named
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(id, _)| id.clone())
            .ok_or_else(|| anyhow!("slot {}: no node names an owner", d.slot)),
        _ => bail!(
            "slot {}: no master claims it and {} masters hold keys of it; move them to one by hand, then run `redis-trib fix` again",
            d.slot,
            holders.len()
        ),
    }
}

/// What `fix` did for one disowned slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reclaimed {
    /// The slot.
    pub slot: u16,
    /// Its owner now.
    pub owner: String,
    /// The keys that owner holds in it.
    pub keys: u64,
}

/// Gives every disowned slot of `topo` back (see the module doc); `views` are the
/// live nodes' whole views. Every owner is decided before anything changes.
pub fn reclaim<V: Seen>(
    b: &mut dyn Backend,
    topo: &Topology,
    views: &[V],
) -> Result<Vec<Reclaimed>> {
    let disowned = disowned_slots(topo, views);
    let mut plan: BTreeMap<String, Vec<(u16, u64)>> = BTreeMap::new();
    let addr_of = |id: &str| {
        topo.node(id)
            .map(|n| n.addr())
            .ok_or_else(|| anyhow!("node {id} is not in the cluster any more"))
    };
    for d in &disowned {
        let mut keys = BTreeMap::new();
        for id in d.named.keys() {
            keys.insert(
                id.clone(),
                super::fix::count_keys(b, &addr_of(id)?, d.slot)?,
            );
        }
        let owner = choose_owner(d, &keys)?;
        let held = keys.get(&owner).copied().unwrap_or(0);
        plan.entry(owner).or_default().push((d.slot, held));
    }
    let mut done = Vec::new();
    for (owner, slots) in plan {
        let list: Vec<u16> = slots.iter().map(|(s, _)| *s).collect();
        let held: u64 = slots.iter().map(|(_, k)| k).sum();
        let addr = addr_of(&owner)?;
        step(
            b,
            format!(
                "slots {}: no master claims them while other nodes name {} (a claim that lost to a higher config epoch); it claims them back with a new epoch ({held} keys held)",
                format_ranges(&list),
                topo.describe(&owner)
            ),
        );
        b.bump_epoch(&addr)?;
        let state = SlotState::Node(owner.clone());
        b.set_slots(&addr, &list, &state)?;
        for m in topo.answering_masters().filter(|m| m.node_id != owner) {
            b.set_slots(&m.addr(), &list, &state)?;
        }
        done.extend(slots.into_iter().map(|(slot, keys)| Reclaimed {
            slot,
            owner: owner.clone(),
            keys,
        }));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::topology::{parse_node_line, View};

    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }

    fn line(c: char, port: u16, flags: &str, epoch: u64, slots: &str) -> String {
        format!(
            "{} 127.0.0.1:{port}@1{port} {flags} - 0 0 {epoch} connected {slots}",
            id(c)
        )
    }

    fn view(port: u16, lines: &[String]) -> View {
        View {
            addr: Addr::new("127.0.0.1", port),
            nodes: lines.iter().map(|l| parse_node_line(l).unwrap()).collect(),
            cluster_state: "ok".into(),
            current_epoch: 5,
            keys: 0,
        }
    }

    /// `a` (7000) gave slot 100 to `b` (7001), whose claim then lost: `a` names `b`,
    /// `b` names `a`, `c` (7002) names `b`; no own line lists the slot.
    fn disputed() -> (Topology, Vec<View>) {
        let a_own = line('a', 7000, "myself,master", 5, "0-99 101-5460");
        let b_own = line('b', 7001, "myself,master", 4, "5461-10922");
        let c_own = line('c', 7002, "myself,master", 3, "10923-16383");
        let a_as = |flags| line('a', 7000, flags, 5, "0-99 101-5460");
        let b_as = |flags, slots| line('b', 7001, flags, 4, slots);
        let c_as = || line('c', 7002, "master", 3, "10923-16383");
        let views = vec![
            view(
                7000,
                &[a_own.clone(), b_as("master", "100 5461-10922"), c_as()],
            ),
            view(
                7001,
                &[
                    line('a', 7000, "master", 5, "0-5460"),
                    b_own.clone(),
                    c_as(),
                ],
            ),
            view(
                7002,
                &[
                    a_as("master"),
                    b_as("master", "100 5461-10922"),
                    c_own.clone(),
                ],
            ),
        ];
        let own: Vec<_> = [a_own, b_own, c_own]
            .iter()
            .map(|l| parse_node_line(&l.replace("myself,", "")).unwrap())
            .collect();
        let topo = Topology {
            nodes: own,
            ..Topology::default()
        };
        (topo, views)
    }

    #[test]
    fn a_slot_each_side_gives_to_the_other_is_disowned_with_its_votes() {
        let (topo, views) = disputed();
        let found = disowned_slots(&topo, &views);
        assert_eq!(
            found,
            vec![Disowned {
                slot: 100,
                named: BTreeMap::from([(id('a'), 1), (id('b'), 2)]),
            }]
        );
    }

    #[test]
    fn a_slot_named_only_for_a_failed_node_is_uncovered_not_disowned() {
        let (mut topo, views) = disputed();
        for n in topo.nodes.iter_mut().filter(|n| n.port != 7002) {
            n.flags.push("fail".into());
        }
        assert_eq!(disowned_slots(&topo, &views), vec![]);
    }

    #[test]
    fn the_owner_is_the_key_holder_else_the_most_named() {
        let d = Disowned {
            slot: 100,
            named: BTreeMap::from([(id('a'), 1), (id('b'), 2)]),
        };
        let keys = |a: u64, b: u64| BTreeMap::from([(id('a'), a), (id('b'), b)]);
        assert_eq!(choose_owner(&d, &keys(3, 0)).unwrap(), id('a'));
        assert_eq!(choose_owner(&d, &keys(0, 0)).unwrap(), id('b'));
        let tie = Disowned {
            slot: 100,
            named: BTreeMap::from([(id('a'), 1), (id('b'), 1)]),
        };
        assert_eq!(choose_owner(&tie, &keys(0, 0)).unwrap(), id('a'));
        let err = choose_owner(&d, &keys(1, 2)).unwrap_err().to_string();
        assert!(err.contains("2 masters hold keys of it"), "{err}");
    }
}
