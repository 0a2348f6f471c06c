//! Balance plans: how many slots each master should hold (by weight), which moves
//! (`src → dst, count`) get there, validation of plans written by scripts, and the
//! choice of concrete slots for each move. All pure.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One master as planning sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Holder {
    /// Node id.
    pub id: String,
    /// Slots it holds now.
    pub slots: usize,
    /// Its weight (0 drains it).
    pub weight: f64,
}

/// Move `count` slots from `src` to `dst` (node ids).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// Giving node id.
    pub src: String,
    /// Receiving node id.
    pub dst: String,
    /// Number of slots.
    pub count: usize,
}

/// Target slot counts: `total * weight / total_weight`, floors plus the remaining
/// slots to the largest remainders (ties to the earlier holder), so they sum to the
/// slots held in all.
pub fn targets(holders: &[Holder]) -> Result<Vec<usize>> {
    if holders.is_empty() {
        bail!("no masters to balance");
    }
    if let Some(h) = holders
        .iter()
        .find(|h| !h.weight.is_finite() || h.weight < 0.0)
    {
        bail!(
            "weight of node {} must be a number >= 0, got {}",
            h.id,
            h.weight
        );
    }
    let total_weight: f64 = holders.iter().map(|h| h.weight).sum();
    if total_weight <= 0.0 {
        bail!("the weights of all masters add up to 0: no node can hold the slots");
    }
    let total: usize = holders.iter().map(|h| h.slots).sum();
    let exact: Vec<f64> = holders
        .iter()
        .map(|h| total as f64 * (h.weight / total_weight))
        .collect();
    let mut out: Vec<usize> = exact
        .iter()
        .map(|e| (e.floor() as usize).min(total))
        .collect();
    let mut left = total.saturating_sub(out.iter().sum::<usize>());
    let mut order: Vec<usize> = (0..holders.len())
        .filter(|&i| holders[i].weight > 0.0)
        .collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.partial_cmp(&ra)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    Ok(out)
}

/// The default plan: every holder ends with its target; givers (over target) are
/// paired with receivers (under target) in order. Never moves more than a giver
/// holds; a node is never both a giver and a receiver.
pub fn base_balance_plan(holders: &[Holder]) -> Result<Vec<Move>> {
    let targets = targets(holders)?;
    let mut givers: Vec<(usize, usize)> = Vec::new();
    let mut takers: Vec<(usize, usize)> = Vec::new();
    for (i, (h, &t)) in holders.iter().zip(&targets).enumerate() {
        if h.slots > t {
            givers.push((i, h.slots - t));
        } else if t > h.slots {
            takers.push((i, t - h.slots));
        }
    }
    let mut moves = Vec::new();
    let (mut g, mut r) = (0, 0);
    while g < givers.len() && r < takers.len() {
        let n = givers[g].1.min(takers[r].1);
        moves.push(Move {
            src: holders[givers[g].0].id.clone(),
            dst: holders[takers[r].0].id.clone(),
            count: n,
        });
        givers[g].1 -= n;
        takers[r].1 -= n;
        if givers[g].1 == 0 {
            g += 1;
        }
        if takers[r].1 == 0 {
            r += 1;
        }
    }
    Ok(moves)
}

/// Checks a plan against what each node holds before anything moves: known nodes,
/// distinct source and destination, positive counts, and no source giving more than
/// it held at the start (so no slot can be moved twice).
pub fn validate_plan(holders: &[Holder], moves: &[Move]) -> Result<()> {
    let held: BTreeMap<&str, usize> = holders.iter().map(|h| (h.id.as_str(), h.slots)).collect();
    let mut given: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in moves.iter().enumerate() {
        let at = || {
            format!(
                "move #{} ({} -> {}, {} slots)",
                i + 1,
                short(&m.src),
                short(&m.dst),
                m.count
            )
        };
        for id in [&m.src, &m.dst] {
            if !held.contains_key(id.as_str()) {
                bail!("{}: {} is not a master of this cluster", at(), id);
            }
        }
        if m.src == m.dst {
            bail!("{}: source and destination are the same node", at());
        }
        if m.count == 0 {
            bail!("{}: moves no slot", at());
        }
        let total = given.entry(m.src.as_str()).or_default();
        *total += m.count;
        if *total > held[m.src.as_str()] {
            bail!(
                "{}: {} holds {} slots but the plan takes {} from it",
                at(),
                short(&m.src),
                held[m.src.as_str()],
                total
            );
        }
    }
    Ok(())
}

/// Picks concrete slots for each move: each source gives its lowest-numbered slots
/// first, and a slot once given is never given again.
pub fn pick_slots(
    held: &BTreeMap<String, Vec<u16>>,
    moves: &[Move],
) -> Result<Vec<(Move, Vec<u16>)>> {
    let mut left: BTreeMap<&str, &[u16]> = held
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let mut out = Vec::new();
    for m in moves {
        let pool = left.get_mut(m.src.as_str()).map(|p| &mut *p);
        let Some(pool) = pool else {
            bail!("node {} holds no slots to give", short(&m.src));
        };
        if pool.len() < m.count {
            bail!(
                "node {} has only {} slots left to give, not {}",
                short(&m.src),
                pool.len(),
                m.count
            );
        }
        let (taken, rest) = pool.split_at(m.count);
        out.push((m.clone(), taken.to_vec()));
        *pool = rest;
    }
    Ok(out)
}

fn short(id: &str) -> &str {
    crate::topology::short_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(id: &str, slots: usize, weight: f64) -> Holder {
        Holder {
            id: id.into(),
            slots,
            weight,
        }
    }

    fn mv(src: &str, dst: &str, count: usize) -> Move {
        Move {
            src: src.into(),
            dst: dst.into(),
            count,
        }
    }

    #[test]
    fn two_halves_and_a_newcomer() {
        let plan =
            base_balance_plan(&[h("a", 8192, 1.0), h("b", 8192, 1.0), h("c", 0, 1.0)]).unwrap();
        assert_eq!(plan, vec![mv("a", "c", 2730), mv("b", "c", 2731)]);
    }

    #[test]
    fn targets_sum_to_total_and_follow_weights() {
        let t = targets(&[h("a", 16384, 1.0), h("b", 0, 2.0), h("c", 0, 1.0)]).unwrap();
        assert_eq!(t.iter().sum::<usize>(), 16384);
        assert_eq!(t, vec![4096, 8192, 4096]);
        let t = targets(&[
            h("a", 5462, 1.0),
            h("b", 5461, 1.0),
            h("c", 5461, 1.0),
            h("d", 0, 1.0),
        ])
        .unwrap();
        assert_eq!(t, vec![4096; 4]);
    }

    #[test]
    fn zero_weight_drains() {
        let plan =
            base_balance_plan(&[h("a", 5462, 1.0), h("b", 5461, 0.0), h("c", 5461, 1.0)]).unwrap();
        assert_eq!(plan, vec![mv("b", "a", 2730), mv("b", "c", 2731)]);
        validate_plan(
            &[h("a", 5462, 1.0), h("b", 5461, 0.0), h("c", 5461, 1.0)],
            &plan,
        )
        .unwrap();
    }

    #[test]
    fn balanced_cluster_needs_no_move() {
        assert!(base_balance_plan(&[h("a", 8192, 1.0), h("b", 8192, 1.0)])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn plans_never_take_more_than_held() {
        for n in 1..12 {
            let mut hs: Vec<Holder> = (0..n)
                .map(|i| h(&format!("n{i}"), 0, 1.0 + i as f64))
                .collect();
            hs[0].slots = 16384;
            let plan = base_balance_plan(&hs).unwrap();
            validate_plan(&hs, &plan).unwrap();
            let moved: usize = plan.iter().map(|m| m.count).sum();
            let t = targets(&hs).unwrap();
            assert_eq!(moved, 16384 - t[0]);
        }
    }

    #[test]
    fn rejects_bad_weights() {
        assert!(targets(&[h("a", 1, 0.0)])
            .unwrap_err()
            .to_string()
            .contains("add up to 0"));
        assert!(targets(&[h("a", 1, -1.0)])
            .unwrap_err()
            .to_string()
            .contains(">= 0"));
        assert!(targets(&[]).is_err());
    }

    #[test]
    fn validation_names_the_bad_move() {
        let hs = [h("a", 10, 1.0), h("b", 0, 1.0)];
        let err = |moves: &[Move]| validate_plan(&hs, moves).unwrap_err().to_string();
        assert!(err(&[mv("a", "x", 1)]).contains("move #1 (a -> x, 1 slots): x is not a master"));
        assert!(err(&[mv("a", "a", 1)]).contains("same node"));
        assert!(err(&[mv("a", "b", 0)]).contains("moves no slot"));
        assert!(err(&[mv("a", "b", 6), mv("a", "b", 5)]).contains("move #2"));
        assert!(err(&[mv("b", "a", 1)]).contains("holds 0 slots"));
    }

    #[test]
    fn picks_distinct_slots() {
        let held: BTreeMap<String, Vec<u16>> = [
            ("a".to_string(), vec![1, 2, 3, 4]),
            ("b".to_string(), vec![9]),
        ]
        .into();
        let picked =
            pick_slots(&held, &[mv("a", "b", 2), mv("a", "c", 2), mv("b", "a", 1)]).unwrap();
        assert_eq!(picked[0].1, vec![1, 2]);
        assert_eq!(picked[1].1, vec![3, 4]);
        assert_eq!(picked[2].1, vec![9]);
        assert!(pick_slots(&held, &[mv("a", "b", 5)]).is_err());
    }
}
