//! `create`: free nodes become a cluster with N replicas per master, as redis-cli
//! does it: masters spread across hosts, each replica on another host than its
//! master where possible, slots split evenly, a distinct config epoch per node,
//! every node meeting every other. Returns once all slots are covered, every node
//! agrees and reports ok (the masters' rejoin delay shortened, see `rejoin`), and
//! every replica reports its link up.

use super::rejoin::{with_lowered, with_short_node_timeout, SYNC_DELAY};
use super::{free_node, step};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::slots::{format_ranges, split_evenly};
use crate::topology::convergence_problem;
use crate::wait;
use anyhow::{bail, Result};
use std::collections::BTreeMap;

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
    let n = hosts.len();
    let masters_count = n / replicas.saturating_add(1);
    if masters_count < 3 {
        bail!(
            "{n} nodes with --replicas {replicas} make {masters_count} masters; a cluster needs at least 3 masters, so give at least {} nodes",
            3u128 * (replicas as u128 + 1)
        );
    }
    // Round-robin across hosts, keeping the order nodes were given within a host.
    let mut by_host: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut host_order: Vec<&str> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        if !by_host.contains_key(h.as_str()) {
            host_order.push(h);
        }
        by_host.entry(h).or_default().push(i);
    }
    let mut interleaved = Vec::with_capacity(n);
    for round in 0.. {
        let before = interleaved.len();
        for h in &host_order {
            if let Some(&i) = by_host[h].get(round) {
                interleaved.push(i);
            }
        }
        if interleaved.len() == before {
            break;
        }
    }
    let masters: Vec<usize> = interleaved[..masters_count].to_vec();
    let mut pool: Vec<usize> = interleaved[masters_count..].to_vec();
    let mut pairs = Vec::new();
    let mut m = 0;
    while !pool.is_empty() {
        let master = masters[m % masters.len()];
        let pick = pool
            .iter()
            .position(|&r| hosts[r] != hosts[master])
            .unwrap_or(0);
        pairs.push((pool.remove(pick), master));
        m += 1;
    }
    Ok(CreatePlan {
        masters,
        replicas: pairs,
    })
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
    plan_create(&vec![String::new(); addrs.len()], replicas)?;
    if let Some((first, rest)) = addrs.split_first() {
        super::take_lease(b, "create", first, rest)?;
    }
    let mut nodes: Vec<(Addr, String, u64)> = Vec::new();
    for a in addrs {
        let v = free_node(b, a)?;
        let me = v.myself();
        if !nodes.iter().any(|(_, id, _)| id == &me.node_id) {
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
    let plan = plan_create(&hosts, replicas)?;
    let all: Vec<Addr> = nodes.iter().map(|(a, _, _)| a.clone()).collect();
    for (i, (a, _, epoch)) in nodes.iter().enumerate() {
        if *epoch == 0 {
            b.set_config_epoch(a, i as u64 + 1)?;
        }
    }
    for (&m, slots) in plan.masters.iter().zip(split_evenly(plan.masters.len())) {
        step(
            b,
            format!("{}: adding slots {}", all[m], format_ranges(&slots)),
        );
        b.add_slots(&all[m], &slots, max_slots)?;
    }
    for (i, a) in all.iter().enumerate() {
        for other in &all[i + 1..] {
            b.meet(a, other)?;
        }
    }
    step(
        b,
        format!("waiting for {} nodes to know each other", all.len()),
    );
    wait::acquainted(b, &all)?;
    // The masters report ok after Redis's rejoin delay, shortened for these brand-new
    // nodes (see `rejoin`). Replicas are attached after, so no failover can start
    // while the masters' timeouts are short.
    let masters: Vec<Addr> = plan.masters.iter().map(|&m| all[m].clone()).collect();
    with_short_node_timeout(b, &masters, "they report ok", |b| {
        step(
            b,
            format!("waiting for {} masters to report ok", masters.len()),
        );
        wait::converged(b, &masters)
    })?;
    if plan.replicas.is_empty() {
        // Every node is one of those masters: the cluster is converged.
        return Ok(());
    }
    // The new masters hold no data: their replicas need not wait out
    // repl-diskless-sync-delay (see `rejoin`).
    with_lowered(
        b,
        &masters,
        (SYNC_DELAY, "s"),
        0,
        "their replicas are linked",
        |b| {
            for &(r, m) in &plan.replicas {
                step(b, format!("{}: replicating {}", all[r], all[m]));
                b.replicate(&all[r], &nodes[m].1)?;
            }
            let replicas: Vec<Addr> = plan.replicas.iter().map(|&(r, _)| all[r].clone()).collect();
            with_short_node_timeout(b, &replicas, "every node sees them as replicas", |b| {
                step(
                    b,
                    "waiting for every replica to be known and linked to its master",
                );
                replicas_settled(b, &all, &nodes, &plan)
            })
        },
    )
}

/// Waits until every node sees each planned replica under its master, every
/// replica's link is up, and the cluster is converged.
fn replicas_settled(
    b: &mut dyn Backend,
    all: &[Addr],
    nodes: &[(Addr, String, u64)],
    plan: &CreatePlan,
) -> Result<()> {
    wait::until(b, "every replica to be known and linked", |b| {
        let views = wait::views(b, all)?;
        for &(r, m) in &plan.replicas {
            let (rid, mid) = (&nodes[r].1, &nodes[m].1);
            for v in &views {
                match v.node(rid) {
                    Some(n) if n.master_id.as_deref() == Some(mid.as_str()) => {}
                    _ => {
                        return Ok(Some(format!(
                            "{} does not see {} as a replica of {} yet",
                            v.addr, all[r], all[m]
                        )))
                    }
                }
            }
            if !b.replica_link_up(&all[r])? {
                return Ok(Some(format!(
                    "{}: the link to its master {} is not up yet",
                    all[r], all[m]
                )));
            }
        }
        Ok(convergence_problem(&views))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(spec: &[&str]) -> Vec<String> {
        spec.iter().map(|s| s.to_string()).collect()
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
}
