//! `replicate`: a free node becomes a replica of a master (of the master's master
//! when the given node is itself a replica).

use super::rejoin::{with_lowered, with_short_node_timeout, SYNC_DELAY};
use super::{free_node, live_addrs, meet_every_member, step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::ops::wait;
use crate::topology::{convergence_problem, Node, Seen};
use anyhow::{bail, Result};

/// Makes the free node `slave` a replica of `master`.
pub fn replicate(b: &mut dyn Backend, master: &Addr, slave: &Addr) -> Result<()> {
    super::take_lease(b, "replicate", master, std::slice::from_ref(slave))?;
    let topo = topology(b, master)?;
    let given = topo.node(&topo.entry_id).expect("the entry node").clone();
    let target = if given.is_master() {
        given
    } else {
        let Some(id) = given.master_id.clone() else {
            bail!("{master} is a replica of no known master");
        };
        match topo.node(&id) {
            Some(m) => m.clone(),
            None => bail!("{master} replicates {id}, which its cluster does not know"),
        }
    };
    if target.is_failed() {
        bail!(
            "master {} is flagged fail; cannot attach a replica to it",
            target.addr()
        );
    }
    let sv = free_node(b, slave)?;
    let slave_id = sv.myself().node_id.clone();
    if slave_id == target.node_id {
        bail!("{slave} and {master} are the same node");
    }
    let members = {
        let mut m = live_addrs(&topo);
        m.push(slave.clone());
        m
    };
    meet_every_member(b, slave, &members[..members.len() - 1])?;
    wait::known_by_all(
        b,
        std::slice::from_ref(slave),
        &target.node_id,
        &target.addr(),
    )?;
    step(
        b,
        format!(
            "{slave}: replicating {} ({})",
            target.addr(),
            target.short_id()
        ),
    );
    // A master holding no key has nothing to send: its new replica need not wait out
    // its repl-diskless-sync-delay (see `rejoin`), and `replicate` then also waits
    // for the link, which comes up at once.
    let empty = topo.keys.get(&target.node_id) == Some(&0);
    let attach = |b: &mut dyn Backend| {
        b.replicate(slave, &target.node_id)?;
        // A node pings a peer it has not pinged for half its timeout: with the new
        // replica's timeout short, every node hears of its role sooner (see `rejoin`).
        with_short_node_timeout(
            b,
            std::slice::from_ref(slave),
            "every node sees it as a replica",
            |b| {
                seen_as_replica(b, &members, slave, &slave_id, &target)?;
                if empty {
                    wait::until(b, &format!("{slave}'s link to its master"), |b| {
                        Ok((!b.replica_link_up(slave)?)
                            .then(|| format!("{slave}: the link to its master is not up yet")))
                    })?;
                }
                Ok(())
            },
        )
    };
    if empty {
        with_lowered(
            b,
            &[target.addr()],
            (SYNC_DELAY, "s"),
            0,
            "its new replica is linked",
            attach,
        )
    } else {
        attach(b)
    }
}

/// Waits until every node of `members` sees `slave` as a replica of `target`, and
/// the cluster is converged. Over a backend that shares its node tables (a
/// simulation) the views share them too: reading n members as views of their own
/// copied the table per member, n^2 node copies per poll (37 s and 7.5 GB for one
/// replica at 2,000 masters + 2,000 replicas).
fn seen_as_replica(
    b: &mut dyn Backend,
    members: &[Addr],
    slave: &Addr,
    slave_id: &str,
    target: &Node,
) -> Result<()> {
    wait::until(
        b,
        &format!(
            "every node to see {slave} as a replica of {}",
            target.addr()
        ),
        |b| match wait::shared_views(b, members) {
            Some(shared) => Ok(replica_problem(&shared?, slave, slave_id, target)),
            None => Ok(replica_problem(
                &wait::views(b, members)?,
                slave,
                slave_id,
                target,
            )),
        },
    )
}

/// Why `views` do not all see `slave` (id `slave_id`) as a replica of `target`, past
/// the handshake, in a converged cluster yet; `None` once they do.
fn replica_problem<V: Seen>(
    views: &[V],
    slave: &Addr,
    slave_id: &str,
    target: &Node,
) -> Option<String> {
    for v in views {
        match v.find(slave_id) {
            Some(n)
                if !n.is_master()
                    && n.master_id.as_deref() == Some(&target.node_id)
                    && !n.in_handshake() => {}
            Some(_) => {
                return Some(format!(
                    "{} does not see {slave} as a replica yet",
                    v.addr()
                ))
            }
            None => return Some(format!("{} does not know {slave} yet", v.addr())),
        }
    }
    // The replica must also know every node and agree on the slot map.
    convergence_problem(views)
}
