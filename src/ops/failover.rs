//! `failover`: a replica takes over its master's slots (`CLUSTER FAILOVER`), and the
//! operation returns once every reachable node agrees it is their master.
//!
//! A plain failover is coordinated with the live master (it stops its clients until
//! the replica has caught up: no write is lost), so it is refused when the master is
//! down; `--force` skips the master (the other masters still elect the replica) and
//! `--takeover` skips the election too (for when most masters are down). Redis never
//! fails over a master that serves no slots, so that is refused as well.

use super::{live_addrs, member, step, topology_from};
use crate::addr::Addr;
use crate::backend::{Backend, FailoverMode};
use crate::ops::wait;
use crate::slots::format_ranges;
use anyhow::{bail, Result};

/// What a finished failover did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverDone {
    /// The old master (`host:port (id)`).
    pub old_master: String,
    /// The slots the replica took over.
    pub slots: Vec<u16>,
}

/// Makes `replica` the master of its master's slots and waits until every reachable
/// node agrees.
pub fn failover(b: &mut dyn Backend, replica: &Addr, mode: FailoverMode) -> Result<FailoverDone> {
    super::take_lease(b, "failover", replica, &[])?;
    let view = member(b, replica)?;
    let me = view.myself().clone();
    if me.is_master() {
        bail!("{replica} is a master already; give one of the replicas `redis-trib list` shows under its master");
    }
    let Some(master_id) = me.master_id.clone() else {
        bail!("{replica} is a replica of no known master; nothing to fail over");
    };
    let topo = topology_from(b, &view)?;
    let Some(master) = topo.node(&master_id).cloned() else {
        bail!(
            "{replica} replicates node {master_id}, which the cluster does not know; nothing to fail over"
        );
    };
    let old = topo.describe(&master_id);
    if master.assigned_slots.is_empty() {
        bail!("{replica}'s master {old} serves no slots: a failover would take over nothing (Redis refuses it)");
    }
    let down = match topo.unreachable.get(&master_id) {
        Some(why) => Some(format!("unreachable ({why})")),
        None if master.is_failed() || master.is_suspected() => {
            Some(format!("flagged {}", master.flags.join(",")))
        }
        None => None,
    };
    if let (Some(state), FailoverMode::Default) = (&down, mode) {
        bail!(
            "{replica}'s master {old} is {state}: a plain failover needs it; use --force (the other masters elect {replica}) or --takeover (no election, when most masters are down too)"
        );
    }
    let slots = master.assigned_slots.clone();
    let how = mode.word().map(|w| format!(" {w}")).unwrap_or_default();
    step(
        b,
        format!(
            "{replica}: CLUSTER FAILOVER{how}, taking over slots {} from {old}",
            format_ranges(&slots)
        ),
    );
    b.failover(replica, mode)?;
    let id = me.node_id.clone();
    let nodes = live_addrs(&topo);
    // A live old master becomes a replica of the new one: wait for every node to see
    // that too, so the next command finds no empty master in anyone's table.
    let old_alive = down.is_none();
    wait::until(
        b,
        &format!("every node to see {replica} as the master of {old}'s slots"),
        |b| {
            wait::with_views(b, &nodes, |views| {
                for v in views {
                    let agrees = v.find(&id).is_some_and(|n| {
                        n.is_master()
                            && slots
                                .iter()
                                .all(|s| n.assigned_slots.binary_search(s).is_ok())
                    });
                    if !agrees {
                        return Some(format!(
                            "{} does not see {replica} as the master of slots {} yet",
                            v.addr(),
                            format_ranges(&slots)
                        ));
                    }
                    if old_alive && v.find(&master_id).is_some_and(|m| m.is_master()) {
                        return Some(format!("{} still sees {old} as a master", v.addr()));
                    }
                }
                None
            })
        },
    )?;
    Ok(FailoverDone {
        old_master: old,
        slots,
    })
}
