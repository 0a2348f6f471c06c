//! `create`: free nodes become a cluster with N replicas per master, as redis-cli
//! does it: masters spread across hosts, each replica on another host than its
//! master where possible, slots split evenly, a distinct config epoch per node,
//! every node meeting every other. Returns once all slots are covered, every node
//! agrees and reports ok (the masters' rejoin delay shortened, see `rejoin`), and
//! every replica reports its link up.

use super::rejoin::{config_u64_many, Lowered, Round, NODE_TIMEOUT, REJOIN_FLOOR_MS, SYNC_DELAY};
use super::{free_nodes, step};
use crate::addr::Addr;
use crate::backend::{Backend, NodeCmd};
use crate::ops::wait;
use crate::slots::{format_ranges, split_evenly};
use crate::topology::{convergence_problem, Seen};
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};

/// Who is a master and who replicates whom, by index into the node list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePlan {
    /// Indices of the masters, in slot order.
    pub masters: Vec<usize>,
    /// (replica index, master index).
    pub replicas: Vec<(usize, usize)>,
}

/// Chooses masters and replicas for nodes on `hosts` (one entry per node): masters
/// taken round-robin across hosts, replicas placed on another host than their
/// master where possible; extra nodes become extra replicas. Needs 3 masters.
pub fn plan_create(hosts: &[String], replicas: usize) -> Result<CreatePlan> {
    plan_create_in_zones(hosts, &vec![None; hosts.len()], replicas)
}

/// [`plan_create`] with each node's zone (`zones[i]`, None when unknown): masters
/// taken round-robin across zones first, then across the hosts of each zone; each
/// replica placed in another zone than its master where the layout allows it (then
/// on another host). Nodes of unknown zone count as one zone of their own.
pub fn plan_create_in_zones(
    hosts: &[String],
    zones: &[Option<String>],
    replicas: usize,
) -> Result<CreatePlan> {
    let n = hosts.len();
    if zones.len() != n {
        bail!(
            "{} zones given for {n} nodes (one per node, None when unknown)",
            zones.len()
        );
    }
    let masters_count = check_layout(n, replicas)?;
    // Within each zone, round-robin across its hosts; then round-robin across zones,
    // keeping the order nodes were given.
    let mut zone_order: Vec<Option<&str>> = Vec::new();
    for z in zones {
        if !zone_order.contains(&z.as_deref()) {
            zone_order.push(z.as_deref());
        }
    }
    let per_zone: Vec<Vec<usize>> = zone_order
        .iter()
        .map(|z| {
            let members: Vec<usize> = (0..n).filter(|&i| zones[i].as_deref() == *z).collect();
            round_robin(&members, |i| hosts[i].as_str())
        })
        .collect();
    let mut interleaved = Vec::with_capacity(n);
    for round in 0.. {
        let before = interleaved.len();
        for members in &per_zone {
            if let Some(&i) = members.get(round) {
                interleaved.push(i);
            }
        }
        if interleaved.len() == before {
            break;
        }
    }
    let masters: Vec<usize> = interleaved[..masters_count].to_vec();
    let mut pool: Vec<usize> = interleaved[masters_count..].to_vec();
    // How bad a replica `r` of master `m` is: sharing a known zone weighs more than
    // sharing a host.
    let cost = |r: usize, m: usize| -> u32 {
        let same_zone = zones[r].is_some() && zones[r] == zones[m];
        u32::from(same_zone) * 2 + u32::from(hosts[r] == hosts[m])
    };
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut m = 0;
    while !pool.is_empty() {
        let master = masters[m % masters.len()];
        let pick = (0..pool.len())
            .min_by_key(|&k| (cost(pool[k], master), k))
            .unwrap_or(0);
        pairs.push((pool.remove(pick), master));
        m += 1;
    }
    // Greedy picks can leave a master with the last replica of its own zone: swap
    // replicas between masters while that lowers the total cost (each swap does, so
    // this ends).
    let mut improved = true;
    while improved {
        improved = false;
        for i in 0..pairs.len() {
            for j in 0..pairs.len() {
                let ((ri, mi), (rj, mj)) = (pairs[i], pairs[j]);
                if i != j && cost(rj, mi) + cost(ri, mj) < cost(ri, mi) + cost(rj, mj) {
                    pairs[i].0 = rj;
                    pairs[j].0 = ri;
                    improved = true;
                }
            }
        }
    }
    Ok(CreatePlan {
        masters,
        replicas: pairs,
    })
}

/// How many masters `n` nodes with `replicas` replicas each make; an error when
/// fewer than 3.
fn check_layout(n: usize, replicas: usize) -> Result<usize> {
    let masters_count = n / replicas.saturating_add(1);
    if masters_count < 3 {
        bail!(
            "{n} nodes with --replicas {replicas} make {masters_count} masters; a cluster needs at least 3 masters, so give at least {} nodes",
            3u128 * (replicas as u128 + 1)
        );
    }
    Ok(masters_count)
}

/// `members` round-robin across the groups `key` puts them in, groups in order of
/// first appearance, members in the order given within a group.
fn round_robin<'a>(members: &[usize], key: impl Fn(usize) -> &'a str) -> Vec<usize> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for &i in members {
        let k = key(i);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(i),
            None => groups.push((k, vec![i])),
        }
    }
    let mut out = Vec::with_capacity(members.len());
    for round in 0.. {
        let before = out.len();
        for (_, v) in &groups {
            if let Some(&i) = v.get(round) {
                out.push(i);
            }
        }
        if out.len() == before {
            break;
        }
    }
    out
}

/// Creates a cluster of the free nodes `addrs` with `replicas` replicas per master.
pub fn create(
    b: &mut dyn Backend,
    addrs: &[Addr],
    replicas: usize,
    max_slots: usize,
) -> Result<()> {
    if max_slots == 0 {
        bail!("--max-slots must be at least 1");
    }
    // A layout that cannot work is refused before any node is contacted.
    check_layout(addrs.len(), replicas)?;
    if let Some((first, rest)) = addrs.split_first() {
        super::take_lease(b, "create", first, rest)?;
    }
    // Every node read at once; a node given twice (under two names) counts once.
    let mut nodes: Vec<(Addr, String, u64)> = Vec::new();
    let mut ids: HashSet<String> = HashSet::new();
    for (a, v) in addrs.iter().zip(free_nodes(b, addrs)?) {
        let me = v.myself();
        if ids.insert(me.node_id.clone()) {
            nodes.push((a.clone(), me.node_id.clone(), me.config_epoch));
        }
    }
    let hosts: Vec<String> = nodes
        .iter()
        .map(|(a, _, _)| {
            a.resolve_ip()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|_| a.host.clone())
        })
        .collect();
    let all: Vec<Addr> = nodes.iter().map(|(a, _, _)| a.clone()).collect();
    let zones = super::zones::zones_of(b, &all);
    if zones.iter().any(Option::is_some) {
        let mut named: Vec<String> = zones.iter().flatten().cloned().collect();
        named.sort();
        named.dedup();
        let unknown = zones.iter().filter(|z| z.is_none()).count();
        step(
            b,
            format!(
                "zones: {}{}; spreading masters and replicas across them",
                named.join(", "),
                if unknown > 0 {
                    format!(" ({unknown} node(s) of unknown zone)")
                } else {
                    String::new()
                }
            ),
        );
    }
    let plan = plan_create_in_zones(&hosts, &zones, replicas)?;
    // The settings lowered later, read now while the nodes are idle.
    let own = OwnSettings {
        timeout: config_u64_many(b, &all, NODE_TIMEOUT.0),
        sync_delay: if plan.replicas.is_empty() {
            vec![None; all.len()]
        } else {
            config_u64_many(b, &all, SYNC_DELAY)
        },
    };
    // Epochs and slots on every node at once (a node's own epoch first: it is
    // refused once the node knows another), then every meet at once.
    let mut setup: Vec<(Addr, NodeCmd)> = Vec::new();
    for (i, (a, _, epoch)) in nodes.iter().enumerate() {
        if *epoch == 0 {
            setup.push((a.clone(), NodeCmd::SetConfigEpoch(i as u64 + 1)));
        }
    }
    for (&m, slots) in plan.masters.iter().zip(split_evenly(plan.masters.len())) {
        step(
            b,
            format!("{}: adding slots {}", all[m], format_ranges(&slots)),
        );
        setup.push((all[m].clone(), NodeCmd::AddSlots(slots, max_slots)));
    }
    first_error(b.apply_many(&setup))?;
    // Every pair's meet, a bounded batch at a time: one round up to ~450 nodes,
    // and a simulated create of thousands of nodes never holds millions at once.
    let mut pairs = meet_pairs(all.len()).peekable();
    while pairs.peek().is_some() {
        let meets: Vec<(Addr, NodeCmd)> = pairs
            .by_ref()
            .take(MEETS_PER_ROUND)
            .map(|(i, j)| (all[i].clone(), NodeCmd::Meet(all[j].clone())))
            .collect();
        first_error(b.apply_many(&meets))?;
    }
    step(
        b,
        format!("waiting for {} nodes to know each other", all.len()),
    );
    wait::acquainted(b, &all)?;
    let mut lowered = Lowered::default();
    let result = settle(b, &mut lowered, &nodes, &plan, &own);
    lowered.finish(b, result)
}

/// Each node's own `cluster-node-timeout` and `repl-diskless-sync-delay` (by index
/// into the node list; `None` where it could not be read).
struct OwnSettings {
    timeout: Vec<Option<u64>>,
    sync_delay: Vec<Option<u64>>,
}

/// Once every node knows every other: waits for the masters to report ok, attaches
/// the replicas and waits for them, lowering on the way what `rejoin` explains (and
/// recording it in `lowered`, which the caller puts back whatever happens).
///
/// Rounds, each sent to every node at once:
/// 1. masters: `cluster-node-timeout` to the rejoin floor (they report ok without
///    sitting out Redis's rejoin delay) and, when replicas follow,
///    `repl-diskless-sync-delay` 0 (they hold no data);
/// 2. masters: their timeout back; replicas: their timeout short (every node hears
///    of their role sooner). Replicas are attached only after this round, so no
///    failover can start while a master's timeout is short;
/// 3. replicas: `CLUSTER REPLICATE`.
fn settle(
    b: &mut dyn Backend,
    lowered: &mut Lowered,
    nodes: &[(Addr, String, u64)],
    plan: &CreatePlan,
    own: &OwnSettings,
) -> Result<()> {
    let all: Vec<Addr> = nodes.iter().map(|(a, _, _)| a.clone()).collect();
    // (node, its own value of a setting) for each node of `who`.
    let pick = |of: &[Option<u64>], who: &[usize]| -> Vec<(Addr, Option<u64>)> {
        who.iter().map(|&i| (all[i].clone(), of[i])).collect()
    };
    let masters: Vec<Addr> = plan.masters.iter().map(|&m| all[m].clone()).collect();
    let mut round = Round::default();
    lowered.lower(
        b,
        &mut round,
        pick(&own.timeout, &plan.masters),
        (NODE_TIMEOUT, REJOIN_FLOOR_MS),
        "they report ok",
    );
    if !plan.replicas.is_empty() {
        lowered.lower(
            b,
            &mut round,
            pick(&own.sync_delay, &plan.masters),
            ((SYNC_DELAY, "s"), 0),
            "their replicas are linked",
        );
    }
    lowered.run(b, round);
    step(
        b,
        format!("waiting for {} masters to report ok", masters.len()),
    );
    wait::converged(b, &masters)?;
    if plan.replicas.is_empty() {
        // Every node is one of those masters: the cluster is converged.
        return Ok(());
    }
    let replica_index: Vec<usize> = plan.replicas.iter().map(|&(r, _)| r).collect();
    let mut round = Round::default();
    lowered.put_back(&mut round, NODE_TIMEOUT);
    lowered.lower(
        b,
        &mut round,
        pick(&own.timeout, &replica_index),
        (NODE_TIMEOUT, REJOIN_FLOOR_MS),
        "every node sees them as replicas",
    );
    lowered.run(b, round);
    if lowered.is_stuck() {
        bail!("replicas not attached: a master's cluster-node-timeout could not be put back");
    }
    let mut round = Round::default();
    for &(r, m) in &plan.replicas {
        step(b, format!("{}: replicating {}", all[r], all[m]));
        round.push(all[r].clone(), NodeCmd::Replicate(nodes[m].1.clone()));
    }
    first_error(lowered.run(b, round))?;
    step(
        b,
        "waiting for every replica to be known and linked to its master",
    );
    replicas_settled(b, &all, nodes, plan)
}

/// The first error of a batch run by [`Backend::apply_many`], if any.
fn first_error(results: Vec<Result<()>>) -> Result<()> {
    results.into_iter().collect()
}

/// Who meets whom among `n` nodes so that every pair meets once: node `i` meets the
/// next `n / 2` nodes after it (wrapping around), so each node sends about half of
/// the meets of a node rather than all or none of them.
fn meet_pairs(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).flat_map(move |i| {
        (1..=n / 2)
            // With n even, the pair at distance n / 2 would be met from both ends.
            .filter(move |&d| !(n.is_multiple_of(2) && d == n / 2 && i >= n / 2))
            .map(move |d| (i, (i + d) % n))
    })
}

/// The most `CLUSTER MEET`s sent in one round.
const MEETS_PER_ROUND: usize = 100_000;

/// Waits until every node sees each planned replica under its master, every
/// replica's link is up, and the cluster is converged.
fn replicas_settled(
    b: &mut dyn Backend,
    all: &[Addr],
    nodes: &[(Addr, String, u64)],
    plan: &CreatePlan,
) -> Result<()> {
    // Each planned replica's id -> its master's id.
    let planned: HashMap<&str, &str> = plan
        .replicas
        .iter()
        .map(|&(r, m)| (nodes[r].1.as_str(), nodes[m].1.as_str()))
        .collect();
    let replicas: Vec<Addr> = plan.replicas.iter().map(|&(r, _)| all[r].clone()).collect();
    wait::until(b, "every replica to be known and linked", |b| {
        // Shared tables where the backend keeps them (a simulation of 1,000 nodes
        // would otherwise copy a million lines per poll).
        let seen = match wait::shared_views(b, all) {
            Some(shared) => unplaced(&shared?, &planned, all, nodes, plan),
            None => unplaced(&wait::views(b, all)?, &planned, all, nodes, plan),
        };
        if seen.is_some() {
            return Ok(seen);
        }
        for ((r, up), &(_, m)) in replicas
            .iter()
            .zip(b.replica_links_up(&replicas))
            .zip(&plan.replicas)
        {
            if !up? {
                return Ok(Some(format!(
                    "{r}: the link to its master {} is not up yet",
                    all[m]
                )));
            }
        }
        Ok(None)
    })
}

/// Why `views` are not settled yet: a view that does not see a planned replica
/// under its master, or the cluster not converged.
fn unplaced<V: Seen>(
    views: &[V],
    planned: &HashMap<&str, &str>,
    all: &[Addr],
    nodes: &[(Addr, String, u64)],
    plan: &CreatePlan,
) -> Option<String> {
    // Each view's lines once (a lookup per planned replica and view would cost
    // replicas x nodes x nodes string comparisons per poll).
    for v in views {
        let mut seen = 0;
        for n in v.lines() {
            if let Some(&mid) = planned.get(n.node_id.as_str()) {
                if n.master_id.as_deref() == Some(mid) {
                    seen += 1;
                }
            }
        }
        if seen < planned.len() {
            // Name one replica it does not see under its master yet.
            for &(r, m) in &plan.replicas {
                let ok = v
                    .find(&nodes[r].1)
                    .is_some_and(|n| n.master_id.as_deref() == Some(nodes[m].1.as_str()));
                if !ok {
                    return Some(format!(
                        "{} does not see {} as a replica of {} yet",
                        v.addr(),
                        all[r],
                        all[m]
                    ));
                }
            }
        }
    }
    convergence_problem(views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(spec: &[&str]) -> Vec<String> {
        spec.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_pair_meets_once_and_no_node_sends_more_than_half() {
        for n in 1..=13 {
            let pairs: Vec<(usize, usize)> = meet_pairs(n).collect();
            let mut seen: Vec<(usize, usize)> =
                pairs.iter().map(|&(i, j)| (i.min(j), i.max(j))).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), pairs.len(), "n={n}: a pair met twice");
            assert_eq!(pairs.len(), n * n.saturating_sub(1) / 2, "n={n}");
            assert!(pairs.iter().all(|&(i, j)| i != j && i < n && j < n));
            for i in 0..n {
                let sent = pairs.iter().filter(|p| p.0 == i).count();
                assert!(sent <= n / 2, "n={n}: node {i} sends {sent}");
            }
        }
    }

    #[test]
    fn three_masters_no_replicas() {
        let p = plan_create(&hosts(&["a", "a", "a"]), 0).unwrap();
        assert_eq!(p.masters, vec![0, 1, 2]);
        assert!(p.replicas.is_empty());
    }

    #[test]
    fn spreads_masters_and_keeps_replicas_off_their_masters_host() {
        // Two hosts, three nodes each: masters alternate hosts, replicas on the other.
        let h = hosts(&["a", "a", "a", "b", "b", "b"]);
        let p = plan_create(&h, 1).unwrap();
        assert_eq!(p.masters, vec![0, 3, 1]);
        assert_eq!(p.replicas.len(), 3);
        for (r, m) in &p.replicas {
            assert_ne!(h[*r], h[*m], "replica {r} shares a host with master {m}");
        }
        let mut used: Vec<usize> = p.masters.clone();
        used.extend(p.replicas.iter().map(|(r, _)| *r));
        used.sort();
        assert_eq!(used, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn one_host_still_works_and_extra_nodes_become_replicas() {
        let p = plan_create(&hosts(&["a"; 7]), 1).unwrap();
        assert_eq!(p.masters.len(), 3);
        assert_eq!(p.replicas.len(), 4);
        let per_master = |m: usize| p.replicas.iter().filter(|(_, x)| *x == m).count();
        assert_eq!(per_master(p.masters[0]), 2);
    }

    #[test]
    fn needs_three_masters() {
        let err = plan_create(&hosts(&["a"; 5]), 1).unwrap_err().to_string();
        assert!(
            err.contains("at least 3 masters, so give at least 6 nodes"),
            "{err}"
        );
    }
    fn zones(spec: &[&str]) -> Vec<Option<String>> {
        spec.iter()
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect()
    }

    /// Every node used once, and no replica in its master's zone.
    fn assert_spread(p: &CreatePlan, z: &[Option<String>]) {
        let mut used: Vec<usize> = p.masters.clone();
        used.extend(p.replicas.iter().map(|(r, _)| *r));
        used.sort();
        assert_eq!(used, (0..z.len()).collect::<Vec<_>>());
        for (r, m) in &p.replicas {
            assert_ne!(
                z[*r], z[*m],
                "replica {r} shares zone {:?} with master {m}",
                z[*m]
            );
        }
    }

    #[test]
    fn masters_spread_across_zones_and_replicas_leave_their_masters_zone() {
        // One host; zones given in blocks: a a b b c c.
        let z = zones(&["a", "a", "b", "b", "c", "c"]);
        let p = plan_create_in_zones(&hosts(&["h"; 6]), &z, 1).unwrap();
        assert_eq!(p.masters, vec![0, 2, 4], "one master per zone");
        assert_spread(&p, &z);
        // The greedy pick alone would leave the last master with a replica of its
        // own zone: a1->b, b1->a, c1->c; the swap fixes it.
        let z = zones(&["a", "b", "c", "a", "b", "c"]);
        let p = plan_create_in_zones(&hosts(&["h"; 6]), &z, 1).unwrap();
        assert_eq!(p.masters, vec![0, 1, 2]);
        assert_spread(&p, &z);
    }

    #[test]
    fn zones_first_then_hosts() {
        // Two zones, two hosts per zone: masters alternate zones, and within a zone
        // alternate hosts; replicas go to the other zone.
        let h = hosts(&[
            "h1", "h1", "h1", "h2", "h2", "h2", "h3", "h3", "h3", "h4", "h4", "h4",
        ]);
        let z = zones(&["a", "a", "a", "a", "a", "a", "b", "b", "b", "b", "b", "b"]);
        let p = plan_create_in_zones(&h, &z, 1).unwrap();
        assert_eq!(p.masters, vec![0, 6, 3, 9, 1, 7]);
        assert_spread(&p, &z);
        for (r, m) in &p.replicas {
            assert_ne!(h[*r], h[*m]);
        }
    }

    #[test]
    fn two_replicas_over_three_zones_and_unknown_zones() {
        let z = zones(&["a", "a", "a", "b", "b", "b", "c", "c", "c"]);
        let p = plan_create_in_zones(&hosts(&["h"; 9]), &z, 2).unwrap();
        assert_eq!(p.masters, vec![0, 3, 6]);
        assert_spread(&p, &z);
        // Nodes of unknown zone are placed, never counted as sharing a zone.
        let z = zones(&["a", "", "a", "", "a", ""]);
        let p = plan_create_in_zones(&hosts(&["h"; 6]), &z, 1).unwrap();
        assert_spread(&p, &z);
        // Everything in one zone: still a plan (the host rule alone).
        let z = zones(&["a"; 6]);
        let p = plan_create_in_zones(&hosts(&["x", "x", "x", "y", "y", "y"]), &z, 1).unwrap();
        assert_eq!(p.masters, vec![0, 3, 1]);
        let err = plan_create_in_zones(&hosts(&["h"; 6]), &zones(&["a"]), 1).unwrap_err();
        assert!(
            err.to_string().contains("1 zones given for 6 nodes"),
            "{err}"
        );
    }
}
