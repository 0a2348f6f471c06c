//! Cluster operations, one file each. Every operation reads what it needs through a
//! [`Backend`], checks all its preconditions, and only then calls the backend's
//! mutating primitives; so a refused operation has changed nothing, and the same
//! code runs against real nodes or a simulated copy.

mod apply_plan;
mod backup;
mod check;
mod create;
mod disowned;
mod failover;
mod fix;
mod forget;
mod import;
mod join;
mod metrics;
mod migrate;
mod move_replica;
mod moves;
mod quit;
mod rebalance;
mod rejoin;
mod replicate;
mod rescue;
mod shutdown;
#[cfg(test)]
mod sim_tests;
mod slot_jobs;
mod start;
mod timeout;
pub mod wait;
pub mod zones;

pub use crate::backend::read::{member, topology, topology_from};
pub use apply_plan::{apply_plan, resolve_plan, Amount, Applied, PlanMove};
pub use backup::backup;
pub use check::{check, info, CheckReport, ClusterInfo};
pub use create::{create, plan_create, plan_create_in_zones, CreatePlan};
pub use failover::{failover, FailoverDone};
pub use fix::{fix, Repair};
pub use forget::{find_node, forget, name_of};
pub use import::import;
pub use join::{join, join_no_load, join_no_load_many, Balancer, DefaultBalancer};
pub use metrics::{
    fill as fill_metrics, memory_of, node_info, parse_info, slot_stats, topology_with_metrics,
    InfoValue,
};
pub use migrate::migrate_slots;
pub use move_replica::{move_replica, ReplicaMoved};
pub use moves::{concrete, execute, holder, holders, run_moves, Concrete};
pub use quit::quit;
pub use rebalance::{
    find_master, load_plan, rebalance, rebalance_by, rebalance_plan, reshard, reshard_plan,
    BalanceBy, RebalanceOpts,
};
pub use replicate::replicate;
pub use rescue::rescue;
pub use shutdown::shutdown;
pub use slot_jobs::{fix_jobs, job_issues, JobIssue};
pub use start::{start, start_multi};
pub use timeout::set_timeout;

use crate::addr::Addr;
use crate::backend::{Backend, Event};
use crate::slots::format_ranges;
use crate::topology::{Node, Topology, View};
use anyhow::{bail, Result};

/// Reads a node that must be free to join: reachable, cluster-enabled, knowing no
/// other node, serving no slot, holding no key.
pub fn free_node(b: &mut dyn Backend, addr: &Addr) -> Result<View> {
    let v = b.view(addr)?;
    check_free(addr, v)
}

/// [`free_node`] for each of `addrs`, read all at once; the first node that is not
/// free (or cannot be read), in the order given, is the error.
pub fn free_nodes(b: &mut dyn Backend, addrs: &[Addr]) -> Result<Vec<View>> {
    addrs
        .iter()
        .zip(b.views(addrs))
        .map(|(a, v)| check_free(a, v?))
        .collect()
}

/// `v` (the view of `addr`) when it is a free node: alone, no slots, no keys.
fn check_free(addr: &Addr, v: View) -> Result<View> {
    if !v.is_alone() {
        bail!(
            "{addr} is already in a cluster (it knows {} other nodes); use a free node, or `quit` it first",
            v.nodes.len() - 1
        );
    }
    let me = v.myself();
    if !me.assigned_slots.is_empty() {
        bail!(
            "{addr} already serves slots {}; use a free node",
            format_ranges(&me.assigned_slots)
        );
    }
    if v.keys > 0 {
        bail!(
            "{addr} holds {} keys; a node must be empty to join a cluster",
            v.keys
        );
    }
    Ok(v)
}

/// Takes `op`'s lease (see [`crate::lease`]) on the cluster `entry` belongs to,
/// covering `extra` nodes too (the free nodes an operation brings in), before the
/// operation reads what it checks: so no other operation can change the cluster
/// between its checks and its changes. A no-op in dry runs, and when this backend
/// already holds the cluster's lease (a script's operations are one workflow).
pub fn take_lease(b: &mut dyn Backend, op: &str, entry: &Addr, extra: &[Addr]) -> Result<()> {
    if !b.takes_leases() {
        return Ok(());
    }
    let v = b.view(entry)?;
    let mut nodes: Vec<Addr> = v
        .nodes
        .iter()
        .filter(|n| !n.is_failed() && !n.no_addr() && !n.in_handshake())
        .map(|n| {
            if n.is_myself() {
                entry.clone()
            } else {
                n.addr()
            }
        })
        .collect();
    for a in extra {
        if !nodes.contains(a) {
            nodes.push(a.clone());
        }
    }
    b.lease(op, &nodes)
}

/// Refuses to work on a cluster that is not healthy: a failing or unreachable master
/// that owns slots, open slots, uncovered slots. A dead replica, or a dead master
/// without slots, does not block: it comes back as a warning (the returned lines; see
/// [`ensure_healthy_warn`]), since the operation can go on without it.
pub fn ensure_healthy(topo: &Topology, doing: &str) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for n in &topo.nodes {
        let why = topo.unreachable.get(&n.node_id);
        if why.is_none() && !n.is_failed() && !n.is_suspected() {
            continue;
        }
        let state = match why {
            Some(why) if !n.is_failed() && !n.is_suspected() => format!("unreachable ({why})"),
            _ => format!("flagged {}", n.flags.join(",")),
        };
        if n.is_master() && !n.assigned_slots.is_empty() {
            bail!(
                "cannot {doing}: master {} owns slots {} and is {state}; wait until a replica takes over (`redis-trib check` shows the failover state), or run `redis-trib rescue` to give its slots to a free node",
                topo.describe(&n.node_id),
                format_ranges(&n.assigned_slots)
            );
        }
        let what = if n.is_master() {
            "master without slots"
        } else {
            "replica"
        };
        warnings.push(format!(
            "{what} {} is {state}; going on without it (`redis-trib forget` removes it from the cluster)",
            topo.describe(&n.node_id)
        ));
    }
    ensure_no_open_slots(topo, doing)?;
    let uncovered = topo.uncovered_slots();
    if !uncovered.is_empty() {
        bail!(
            "cannot {doing}: slots {} are not served by any node; run `redis-trib rescue` first",
            format_ranges(&uncovered)
        );
    }
    Ok(warnings)
}

/// [`ensure_healthy`], announcing what does not block as warnings.
pub fn ensure_healthy_warn(b: &mut dyn Backend, topo: &Topology, doing: &str) -> Result<()> {
    for w in ensure_healthy(topo, doing)? {
        b.emit(Event::Warning(w));
    }
    Ok(())
}

/// Refuses to work while any slot is migrating or importing.
pub fn ensure_no_open_slots(topo: &Topology, doing: &str) -> Result<()> {
    if let Some(o) = topo.open_slots().first() {
        bail!(
            "cannot {doing}: slot {} is open ({} {} {}); run `redis-trib fix` first",
            o.slot,
            topo.describe(&o.node_id),
            o.direction,
            if o.direction == "migrating" {
                "to"
            } else {
                "from"
            }
        );
    }
    Ok(())
}

/// Addresses of every node except failed / address-less ones.
pub fn live_addrs(topo: &Topology) -> Vec<Addr> {
    topo.nodes
        .iter()
        .filter(|n| !n.is_failed() && !n.no_addr() && !topo.unreachable.contains_key(&n.node_id))
        .map(Node::addr)
        .collect()
}

/// Announces a step.
pub fn step(b: &mut dyn Backend, text: impl Into<String>) {
    b.emit(Event::Step(text.into()));
}

/// Introduces the free node `new` to every node of `members` with `CLUSTER MEET`
/// (sent to `new`), instead of meeting one and waiting for gossip to spread the news
/// (a node may go 1.5 s without pinging a given peer).
pub fn meet_every_member(b: &mut dyn Backend, new: &Addr, members: &[Addr]) -> Result<()> {
    step(
        b,
        format!(
            "{new}: meeting the {} live nodes of the cluster",
            members.len()
        ),
    );
    members.iter().try_for_each(|m| b.meet(new, m))
}
