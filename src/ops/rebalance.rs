//! `rebalance` and `reshard`, with redis-cli's semantics but exact plans: every slot
//! is accounted for (redis-cli's reshard table loses slots to rounding).

use super::{concrete, ensure_healthy_warn, execute, holder, step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::balance::{base_balance_plan, targets, Holder, Move};
use crate::topology::{Node, NodeIndex, Topology};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// What `rebalance` evens out among the masters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BalanceBy {
    /// Slot counts (redis-cli's rebalance).
    #[default]
    Slots,
    /// Keys: slots move by their key counts (`CLUSTER SLOT-STATS` or
    /// `COUNTKEYSINSLOT`).
    Keys,
    /// Memory: each slot weighs its keys times its master's `used_memory` per key.
    Memory,
}

impl std::str::FromStr for BalanceBy {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<BalanceBy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "slots" => Ok(BalanceBy::Slots),
            "keys" => Ok(BalanceBy::Keys),
            "memory" => Ok(BalanceBy::Memory),
            other => bail!("rebalance by '{other}': give slots, keys or memory"),
        }
    }
}

impl BalanceBy {
    /// The word, as `--by` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceBy::Slots => "slots",
            BalanceBy::Keys => "keys",
            BalanceBy::Memory => "memory",
        }
    }
}

/// Options of `rebalance`.
#[derive(Clone, Debug)]
pub struct RebalanceOpts {
    /// (node id prefix or address, weight); unnamed masters weigh 1.
    pub weights: Vec<(String, f64)>,
    /// Rebalance only when some master is off its target by more than this percent.
    pub threshold_pct: f64,
    /// Give slots to masters that have none.
    pub use_empty_masters: bool,
}

impl Default for RebalanceOpts {
    fn default() -> Self {
        RebalanceOpts {
            weights: Vec::new(),
            threshold_pct: 2.0,
            use_empty_masters: false,
        }
    }
}

/// Finds a master by node id, id prefix or address (see [`NodeIndex`]).
pub fn find_master<'a>(topo: &'a Topology, spec: &str) -> Result<&'a Node> {
    NodeIndex::new(topo.masters()).resolve(spec, "master")
}

/// A master that is neither flagged failed nor unreachable: one slots can move to.
fn is_live(topo: &Topology, m: &Node) -> bool {
    !m.is_failed() && !m.is_suspected() && !topo.unreachable.contains_key(&m.node_id)
}

/// Each named master's weight (unnamed: 1).
fn weights_of(topo: &Topology, opts: &RebalanceOpts) -> Result<BTreeMap<String, f64>> {
    let mut weight_of: BTreeMap<String, f64> = BTreeMap::new();
    for (spec, w) in &opts.weights {
        let m = find_master(topo, spec)?;
        if m.assigned_slots.is_empty() && !opts.use_empty_masters {
            bail!(
                "--weight {spec}: {} has no slots; add --use-empty-masters to give it some",
                m.addr()
            );
        }
        weight_of.insert(m.node_id.clone(), *w);
    }
    Ok(weight_of)
}

/// The moves `rebalance` would make (pure): empty when every participating master is
/// within `threshold_pct` of its target.
pub fn rebalance_plan(topo: &Topology, opts: &RebalanceOpts) -> Result<Vec<Move>> {
    let weight_of = weights_of(topo, opts)?;
    let holders: Vec<Holder> = topo
        .masters()
        .filter(|m| is_live(topo, m) && (opts.use_empty_masters || !m.assigned_slots.is_empty()))
        .map(|m| holder(m, weight_of.get(&m.node_id).copied().unwrap_or(1.0)))
        .collect();
    let goal = targets(&holders)?;
    let over = holders.iter().zip(&goal).any(|(h, &t)| {
        if t == 0 {
            h.slots > 0
        } else {
            (h.slots as f64 - t as f64).abs() / t as f64 * 100.0 > opts.threshold_pct
        }
    });
    if !over {
        return Ok(Vec::new());
    }
    base_balance_plan(&holders)
}

/// The concrete moves (source id, destination id, slots) that even out `loads`
/// (per master id: each slot it serves and that slot's load, keys or bytes) by
/// weight (pure). Empty when every participating master is within `threshold_pct`
/// of its target. Heaviest slots go first, each to the master furthest below its
/// target, as long as a move brings the two closer to their targets; a master of
/// weight 0 gives every slot away.
pub fn load_plan(
    topo: &Topology,
    opts: &RebalanceOpts,
    loads: &BTreeMap<String, Vec<(u16, f64)>>,
) -> Result<Vec<(String, String, Vec<u16>)>> {
    let weight_of = weights_of(topo, opts)?;
    let ids: Vec<String> = topo
        .masters()
        .filter(|m| is_live(topo, m) && (opts.use_empty_masters || !m.assigned_slots.is_empty()))
        .map(|m| m.node_id.clone())
        .collect();
    let weight: Vec<f64> = ids
        .iter()
        .map(|id| weight_of.get(id).copied().unwrap_or(1.0))
        .collect();
    let total_weight: f64 = weight.iter().sum();
    if total_weight <= 0.0 {
        bail!("every master weighs 0: nothing could hold the slots");
    }
    let slots_of = |id: &String| loads.get(id).cloned().unwrap_or_default();
    let mut cur: Vec<f64> = ids
        .iter()
        .map(|id| slots_of(id).iter().map(|(_, l)| l).sum())
        .collect();
    let total: f64 = cur.iter().sum();
    let target: Vec<f64> = weight.iter().map(|w| total * w / total_weight).collect();
    let off = |i: usize, cur: &[f64]| {
        if target[i] <= 0.0 {
            if cur[i] > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        } else {
            (cur[i] - target[i]).abs() / target[i] * 100.0
        }
    };
    let draining = |i: usize| weight[i] <= 0.0;
    let must_drain = (0..ids.len()).any(|i| draining(i) && !slots_of(&ids[i]).is_empty());
    if !must_drain && (0..ids.len()).all(|i| off(i, &cur) <= opts.threshold_pct) {
        return Ok(Vec::new());
    }
    let slack = |i: usize| target[i] * opts.threshold_pct / 200.0;
    let mut moves: BTreeMap<(usize, usize), Vec<u16>> = BTreeMap::new();
    let mut donors: Vec<usize> = (0..ids.len())
        .filter(|&i| cur[i] > target[i] || draining(i))
        .collect();
    donors.sort_by(|&a, &b| (cur[b] - target[b]).total_cmp(&(cur[a] - target[a])));
    for d in donors {
        let mut slots = slots_of(&ids[d]);
        slots.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (slot, l) in slots {
            let receiver = (0..ids.len())
                .filter(|&r| r != d && !draining(r))
                .max_by(|&a, &b| (target[a] - cur[a]).total_cmp(&(target[b] - cur[b])));
            let Some(r) = receiver else {
                bail!("no master can take the slots of {}", topo.describe(&ids[d]));
            };
            if !draining(d) {
                let (excess, deficit) = (cur[d] - target[d], target[r] - cur[r]);
                if excess <= slack(d) {
                    break;
                }
                // Only moves that bring both closer to their targets.
                if l <= 0.0 || l >= excess + deficit || deficit <= 0.0 {
                    continue;
                }
            }
            cur[d] -= l;
            cur[r] += l;
            moves.entry((d, r)).or_default().push(slot);
        }
    }
    Ok(moves
        .into_iter()
        .map(|((d, r), mut slots)| {
            slots.sort_unstable();
            (ids[d].clone(), ids[r].clone(), slots)
        })
        .collect())
}

/// Each live master's load per slot for `by` (keys or estimated bytes).
fn read_loads(
    b: &mut dyn Backend,
    topo: &Topology,
    by: BalanceBy,
) -> Result<BTreeMap<String, Vec<(u16, f64)>>> {
    let mut loads = BTreeMap::new();
    for m in topo.masters().filter(|m| is_live(topo, m)) {
        let counts = b.slot_key_counts(&m.addr(), &m.assigned_slots)?;
        let keys: u64 = counts.iter().sum();
        let per_key = match by {
            BalanceBy::Memory => match m.used_memory {
                Some(_) if keys == 0 => 0.0,
                Some(used) => used as f64 / keys as f64,
                None => bail!(
                    "{}: used_memory is unknown (an offline snapshot without metrics: take a new one with `redis-trib list HOST:PORT --json`)",
                    m.addr()
                ),
            },
            _ => 1.0,
        };
        let per_slot = m
            .assigned_slots
            .iter()
            .zip(counts)
            .map(|(&s, k)| (s, k as f64 * per_key))
            .collect();
        loads.insert(m.node_id.clone(), per_slot);
    }
    Ok(loads)
}

/// Rebalances the slot counts of the cluster `addr` belongs to; returns the moves
/// made.
pub fn rebalance(b: &mut dyn Backend, addr: &Addr, opts: &RebalanceOpts) -> Result<Vec<Move>> {
    rebalance_by(b, addr, opts, BalanceBy::Slots)
}

/// Rebalances the cluster `addr` belongs to by slots, keys or memory; returns the
/// moves made.
pub fn rebalance_by(
    b: &mut dyn Backend,
    addr: &Addr,
    opts: &RebalanceOpts,
    by: BalanceBy,
) -> Result<Vec<Move>> {
    super::take_lease(b, "rebalance", addr, &[])?;
    let mut topo = topology(b, addr)?;
    ensure_healthy_warn(b, &topo, "rebalance")?;
    if by != BalanceBy::Slots {
        super::metrics::fill(b, &mut topo);
        let loads = read_loads(b, &topo, by)?;
        let unit = if by == BalanceBy::Keys {
            "keys"
        } else {
            "bytes (estimated)"
        };
        for (id, per_slot) in &loads {
            let sum: f64 = per_slot.iter().map(|(_, l)| l).sum();
            step(
                b,
                format!(
                    "{}: {sum:.0} {unit} in {} slots",
                    topo.describe(id),
                    per_slot.len()
                ),
            );
        }
        let concrete = load_plan(&topo, opts, &loads)?;
        if concrete.is_empty() {
            step(
                b,
                format!(
                    "every master is within {}% of its target {}: nothing to move",
                    opts.threshold_pct,
                    by.as_str()
                ),
            );
            return Ok(Vec::new());
        }
        execute(b, &topo, &concrete)?;
        return Ok(concrete
            .into_iter()
            .map(|(src, dst, slots)| Move {
                src,
                dst,
                count: slots.len(),
            })
            .collect());
    }
    let moves = rebalance_plan(&topo, opts)?;
    if moves.is_empty() {
        step(
            b,
            format!(
                "every master is within {}% of its target: nothing to move",
                opts.threshold_pct
            ),
        );
        return Ok(moves);
    }
    execute(b, &topo, &concrete(&topo, &moves)?)?;
    Ok(moves)
}

/// The moves of a reshard (pure): `count` slots to `to`, taken from `from` (all
/// other masters with slots when empty) in proportion to what each holds, exactly.
pub fn reshard_plan(topo: &Topology, from: &[String], to: &str, count: usize) -> Result<Vec<Move>> {
    let target = find_master(topo, to)?;
    if !is_live(topo, target) {
        bail!(
            "the destination {} is failed or unreachable; give a live master",
            topo.describe(&target.node_id)
        );
    }
    let sources: Vec<&Node> = if from.is_empty() {
        topo.masters()
            .filter(|m| {
                m.node_id != target.node_id && !m.assigned_slots.is_empty() && is_live(topo, m)
            })
            .collect()
    } else {
        from.iter()
            .map(|s| find_master(topo, s))
            .collect::<Result<_>>()?
    };
    if sources.iter().any(|s| s.node_id == target.node_id) {
        bail!("{} is both a source and the destination", target.addr());
    }
    let available: usize = sources.iter().map(|s| s.assigned_slots.len()).sum();
    if count == 0 {
        bail!("--slots must be at least 1");
    }
    if count > available {
        bail!("the sources hold {available} slots in all; cannot move {count}");
    }
    // Largest remainder over the sources' shares, so exactly `count` move.
    let exact: Vec<f64> = sources
        .iter()
        .map(|s| count as f64 * s.assigned_slots.len() as f64 / available as f64)
        .collect();
    let mut take: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let mut left = count - take.iter().sum::<usize>();
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if take[i] < sources[i].assigned_slots.len() {
            take[i] += 1;
            left -= 1;
        }
    }
    Ok(sources
        .iter()
        .zip(take)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| Move {
            src: s.node_id.clone(),
            dst: target.node_id.clone(),
            count: n,
        })
        .collect())
}

/// Moves exactly `count` slots to `to`; returns the moves made.
pub fn reshard(
    b: &mut dyn Backend,
    addr: &Addr,
    from: &[String],
    to: &str,
    count: usize,
) -> Result<Vec<Move>> {
    super::take_lease(b, "reshard", addr, &[])?;
    let topo = topology(b, addr)?;
    ensure_healthy_warn(b, &topo, "reshard")?;
    let moves = reshard_plan(&topo, from, to, count)?;
    execute(b, &topo, &concrete(&topo, &moves)?)?;
    Ok(moves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::parse_node_line;

    fn topo(spec: &[(char, u16, &str)]) -> Topology {
        let nodes = spec
            .iter()
            .map(|(c, port, slots)| {
                parse_node_line(&format!(
                    "{} 127.0.0.1:{port}@1{port} master - 0 0 1 connected {slots}",
                    c.to_string().repeat(40)
                ))
                .unwrap()
            })
            .collect();
        Topology {
            nodes,
            ..Topology::default()
        }
    }

    fn three_and_empty() -> Topology {
        topo(&[
            ('a', 7000, "0-5461"),
            ('b', 7001, "5462-10922"),
            ('c', 7002, "10923-16383"),
            ('d', 7003, ""),
        ])
    }

    #[test]
    fn ignores_empty_masters_unless_asked() {
        let t = three_and_empty();
        assert!(rebalance_plan(&t, &RebalanceOpts::default())
            .unwrap()
            .is_empty());
        let opts = RebalanceOpts {
            use_empty_masters: true,
            ..RebalanceOpts::default()
        };
        let plan = rebalance_plan(&t, &opts).unwrap();
        assert_eq!(plan.iter().map(|m| m.count).sum::<usize>(), 4096);
        assert!(plan.iter().all(|m| m.dst == "d".repeat(40)));
    }

    #[test]
    fn weights_by_prefix_or_address_and_zero_drains() {
        let t = three_and_empty();
        let opts = RebalanceOpts {
            weights: vec![("bbbb".into(), 0.0)],
            ..RebalanceOpts::default()
        };
        let plan = rebalance_plan(&t, &opts).unwrap();
        assert_eq!(
            plan.iter()
                .filter(|m| m.src == "b".repeat(40))
                .map(|m| m.count)
                .sum::<usize>(),
            5461
        );
        let opts = RebalanceOpts {
            weights: vec![("127.0.0.1:7000".into(), 2.0)],
            ..RebalanceOpts::default()
        };
        let plan = rebalance_plan(&t, &opts).unwrap();
        assert_eq!(
            plan.iter()
                .filter(|m| m.dst == "a".repeat(40))
                .map(|m| m.count)
                .sum::<usize>(),
            8192 - 5462
        );
        let opts = RebalanceOpts {
            weights: vec![("dddd".into(), 1.0)],
            ..RebalanceOpts::default()
        };
        assert!(rebalance_plan(&t, &opts)
            .unwrap_err()
            .to_string()
            .contains("--use-empty-masters"));
        let opts = RebalanceOpts {
            weights: vec![("zzzz".into(), 1.0)],
            ..RebalanceOpts::default()
        };
        assert!(rebalance_plan(&t, &opts)
            .unwrap_err()
            .to_string()
            .contains("no master"));
    }

    #[test]
    fn load_plan_moves_heavy_slots_toward_the_targets() {
        let t = topo(&[('a', 7000, "0-2"), ('b', 7001, "3-5")]);
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let mut loads = BTreeMap::new();
        loads.insert(a.clone(), vec![(0, 60.0), (1, 30.0), (2, 10.0)]);
        loads.insert(b.clone(), vec![(3, 0.0), (4, 0.0), (5, 0.0)]);
        let plan = load_plan(&t, &RebalanceOpts::default(), &loads).unwrap();
        // 100 keys: 50 each is the target; slot 0 (60) alone overshoots less than
        // it improves, so it goes; then a holds 40, within reach of 50.
        assert_eq!(plan, vec![(a.clone(), b.clone(), vec![0])]);
        // Balanced already: nothing.
        loads.insert(b.clone(), vec![(3, 50.0), (4, 50.0), (5, 0.0)]);
        assert!(load_plan(&t, &RebalanceOpts::default(), &loads)
            .unwrap()
            .is_empty());
        // Weight 0 gives every slot away, empty ones too.
        let opts = RebalanceOpts {
            weights: vec![("aaaa".into(), 0.0)],
            ..RebalanceOpts::default()
        };
        let plan = load_plan(&t, &opts, &loads).unwrap();
        assert_eq!(plan, vec![(a, b, vec![0, 1, 2])]);
        assert!("memory".parse::<BalanceBy>().is_ok());
        assert!("bytes"
            .parse::<BalanceBy>()
            .unwrap_err()
            .to_string()
            .contains("slots, keys or memory"));
    }

    #[test]
    fn threshold_skips_small_imbalances() {
        let t = topo(&[('a', 7000, "0-8250"), ('b', 7001, "8251-16383")]);
        // 8251 vs 8192 is 0.7% off.
        assert!(rebalance_plan(&t, &RebalanceOpts::default())
            .unwrap()
            .is_empty());
        let opts = RebalanceOpts {
            threshold_pct: 0.5,
            ..RebalanceOpts::default()
        };
        assert_eq!(rebalance_plan(&t, &opts).unwrap()[0].count, 59);
    }

    #[test]
    fn reshard_moves_exactly_n_slots_in_proportion() {
        let t = three_and_empty();
        for n in [1, 7, 100, 4096, 16383] {
            let plan = reshard_plan(&t, &[], "127.0.0.1:7003", n).unwrap();
            assert_eq!(plan.iter().map(|m| m.count).sum::<usize>(), n, "n = {n}");
        }
        let plan = reshard_plan(&t, &["aaaa".into()], "dddd", 10).unwrap();
        assert_eq!(
            plan,
            vec![Move {
                src: "a".repeat(40),
                dst: "d".repeat(40),
                count: 10
            }]
        );
        assert!(reshard_plan(&t, &["aaaa".into()], "aaaa", 10).is_err());
        assert!(reshard_plan(&t, &["aaaa".into()], "dddd", 6000)
            .unwrap_err()
            .to_string()
            .contains("hold 5462"));
    }
}
