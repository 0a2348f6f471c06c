//! `move_replica`: a replica of the cluster (or a master that serves no slots and
//! holds no keys) starts replicating another master (`CLUSTER REPLICATE`), and the
//! operation returns once every reachable node sees it under its new master and its
//! replication link is up (bounded by `--timeout`). Unlike `replicate`, the node is
//! already a member: nothing is met, nothing is reset.

use super::rejoin::with_short_node_timeout;
use super::{live_addrs, member, step, topology_from};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::ops::wait;
use crate::topology::{convergence_problem, Node, Topology};
use anyhow::{bail, Result};

/// What a finished (or unneeded) move did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaMoved {
    /// The master the node replicated before (`host:port (id)`), if any.
    pub old_master: Option<String>,
    /// The master it replicates now (`host:port (id)`).
    pub new_master: String,
    /// False when it already replicated `new_master` (nothing was sent).
    pub changed: bool,
}

/// The master `spec` (read as `seen`) names in `topo`: a master, or the master of a
/// replica.
fn target_master(topo: &Topology, spec: &Addr, seen: &Node) -> Result<Node> {
    let Some(given) = topo.node(&seen.node_id) else {
        bail!("{spec} is not a node of this cluster; give a master `redis-trib list` shows");
    };
    if given.is_master() {
        return Ok(given.clone());
    }
    let Some(id) = given.master_id.as_deref() else {
        bail!("{spec} is a replica of no known master; give a master");
    };
    match topo.node(id) {
        Some(m) => Ok(m.clone()),
        None => bail!("{spec} replicates {id}, which its cluster does not know; give a master"),
    }
}

/// Makes the member `replica` a replica of `new_master` (of its master when
/// `new_master` is itself a replica) and waits until every reachable node agrees and
/// the replica's link to its new master is up.
pub fn move_replica(
    b: &mut dyn Backend,
    replica: &Addr,
    new_master: &Addr,
) -> Result<ReplicaMoved> {
    super::take_lease(b, "move_replica", replica, &[])?;
    let view = member(b, replica)?;
    let me = view.myself().clone();
    let topo = topology_from(b, &view)?;
    let seen = b.view(new_master)?.myself().clone();
    let target = target_master(&topo, new_master, &seen)?;
    let new_name = topo.describe(&target.node_id);
    if seen.node_id == me.node_id || target.node_id == me.node_id {
        bail!("{replica} and {new_master} are the same node; give another master");
    }
    if target.is_failed() || topo.unreachable.contains_key(&target.node_id) {
        bail!("the new master {new_name} is failed or unreachable; give a live master");
    }
    if me.is_master() {
        if !me.assigned_slots.is_empty() {
            bail!(
                "{replica} is a master serving {} slots; move them away first (reshard, or rebalance --weight {replica}=0)",
                me.assigned_slots.len()
            );
        }
        if view.keys > 0 {
            bail!(
                "{replica} is a master without slots but holds {} keys; a node must be empty to become a replica",
                view.keys
            );
        }
    }
    let old = me.master_id.as_deref().map(|id| topo.describe(id));
    if me.master_id.as_deref() == Some(target.node_id.as_str()) {
        step(
            b,
            format!("{replica} already replicates {new_name}: nothing to do"),
        );
        return Ok(ReplicaMoved {
            old_master: old,
            new_master: new_name,
            changed: false,
        });
    }
    step(
        b,
        format!(
            "{replica}: CLUSTER REPLICATE {} (from {} to {new_name})",
            target.node_id,
            old.as_deref().unwrap_or("no master")
        ),
    );
    b.replicate(replica, &target.node_id)?;
    let nodes = live_addrs(&topo);
    let id = me.node_id.clone();
    with_short_node_timeout(
        b,
        std::slice::from_ref(replica),
        "every node sees it under its new master",
        |b| {
            wait::until(
                b,
                &format!("every node to see {replica} as a replica of {new_name} with its link up"),
                |b| {
                    let problem = wait::with_views(b, &nodes, |views| {
                        for v in views {
                            let seen = v.find(&id).is_some_and(|n| {
                                !n.is_master() && n.master_id.as_deref() == Some(&target.node_id)
                            });
                            if !seen {
                                return Some(format!(
                                    "{} does not see {replica} under {new_name} yet",
                                    v.addr()
                                ));
                            }
                        }
                        convergence_problem(views)
                    })?;
                    if problem.is_some() {
                        return Ok(problem);
                    }
                    if !b.replica_link_up(replica)? {
                        return Ok(Some(format!(
                            "{replica}: the link to {new_name} is not up yet"
                        )));
                    }
                    Ok(None)
                },
            )
        },
    )?;
    Ok(ReplicaMoved {
        old_master: old,
        new_master: new_name,
        changed: true,
    })
}
