//! `rebalance` and `reshard`, with redis-cli's semantics but exact plans: every slot
//! is accounted for (redis-cli's reshard table loses slots to rounding).

use super::{ensure_healthy_warn, live_addrs, run_moves, step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::balance::{base_balance_plan, pick_slots, targets, validate_plan, Holder, Move};
use crate::topology::{Node, Topology};
use crate::wait;
use anyhow::{bail, Result};
use std::collections::BTreeMap;

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

/// Finds a master by node id, id prefix (4+ characters) or address.
pub fn find_master<'a>(topo: &'a Topology, spec: &str) -> Result<&'a Node> {
    let by_addr = Addr::parse(spec).ok();
    let hits: Vec<&Node> = topo
        .masters()
        .filter(|m| {
            m.node_id == spec
                || (spec.len() >= 4 && m.node_id.starts_with(spec))
                || by_addr.as_ref().is_some_and(|a| &m.addr() == a)
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no master of the cluster matches '{spec}' (give a node id, an id prefix or HOST:PORT)"
        ),
        _ => bail!(
            "'{spec}' matches {} masters; give more of the id",
            hits.len()
        ),
    }
}

/// A master that is neither flagged failed nor unreachable: one slots can move to.
fn is_live(topo: &Topology, m: &Node) -> bool {
    !m.is_failed() && !m.is_suspected() && !topo.unreachable.contains_key(&m.node_id)
}

/// The moves `rebalance` would make (pure): empty when every participating master is
/// within `threshold_pct` of its target.
pub fn rebalance_plan(topo: &Topology, opts: &RebalanceOpts) -> Result<Vec<Move>> {
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
    let holders: Vec<Holder> = topo
        .masters()
        .filter(|m| is_live(topo, m) && (opts.use_empty_masters || !m.assigned_slots.is_empty()))
        .map(|m| Holder {
            id: m.node_id.clone(),
            slots: m.assigned_slots.len(),
            weight: weight_of.get(&m.node_id).copied().unwrap_or(1.0),
        })
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

/// Rebalances the cluster `addr` belongs to; returns the moves made.
pub fn rebalance(b: &mut dyn Backend, addr: &Addr, opts: &RebalanceOpts) -> Result<Vec<Move>> {
    super::take_lease(b, "rebalance", addr, &[])?;
    let topo = topology(b, addr)?;
    ensure_healthy_warn(b, &topo, "rebalance")?;
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
    execute_moves(b, &topo, &moves)?;
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
    execute_moves(b, &topo, &moves)?;
    Ok(moves)
}

fn execute_moves(b: &mut dyn Backend, topo: &Topology, moves: &[Move]) -> Result<()> {
    let holders: Vec<Holder> = topo
        .masters()
        .map(|m| Holder {
            id: m.node_id.clone(),
            slots: m.assigned_slots.len(),
            weight: 1.0,
        })
        .collect();
    validate_plan(&holders, moves)?;
    let held: BTreeMap<String, Vec<u16>> = topo
        .masters()
        .map(|m| (m.node_id.clone(), m.assigned_slots.clone()))
        .collect();
    let concrete: Vec<_> = pick_slots(&held, moves)?
        .into_iter()
        .map(|(m, s)| (m.src, m.dst, s))
        .collect();
    run_moves(b, topo, &concrete)?;
    step(b, "waiting for the cluster to agree on the new slot map");
    wait::converged(b, &live_addrs(topo))
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
