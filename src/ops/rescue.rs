//! `rescue`: give every failed or uncovered slot to a free node so the cluster serves
//! again. The free node must be known to every live master before it claims slots
//! (the seed's rescue raced the handshake and failed with "Unknown node").

use super::rejoin::with_short_node_timeout;
use super::{free_node, live_addrs, meet_every_member, member, step, topology_from};
use crate::addr::Addr;
use crate::backend::{Backend, SlotState};
use crate::ops::wait;
use crate::slots::format_ranges;
use anyhow::{bail, Result};

/// Assigns the failed and uncovered slots of `cluster`'s cluster to `free`.
pub fn rescue(b: &mut dyn Backend, cluster: &Addr, free: &Addr) -> Result<()> {
    super::take_lease(b, "rescue", cluster, std::slice::from_ref(free))?;
    let entry = member(b, cluster)?;
    let topo = topology_from(b, &entry)?;
    let failed = topo.failed_slots();
    let uncovered = topo.uncovered_slots();
    if failed.is_empty() && uncovered.is_empty() {
        if let Some(n) = topo
            .masters()
            .find(|n| n.is_suspected() && !n.assigned_slots.is_empty())
        {
            bail!(
                "{} is only suspected to fail (fail?); wait until the cluster agrees it failed (cluster-node-timeout), then retry",
                n.addr()
            );
        }
        bail!("the cluster of {cluster} has no failed or uncovered slots; nothing to rescue");
    }
    if !uncovered.is_empty() {
        // Slots nodes still give to a live master are not lost but disowned: `fix`
        // gives them back, with their keys, where a free node would start them empty.
        let views = wait::views(b, &live_addrs(&topo))?;
        let disowned = super::disowned::disowned_slots(&topo, &views);
        if !disowned.is_empty() {
            let slots: Vec<u16> = disowned.iter().map(|d| d.slot).collect();
            bail!(
                "slots {} are claimed by no master while nodes name their owner: run `redis-trib fix {cluster}`, which gives them back to it",
                format_ranges(&slots)
            );
        }
    }
    let fv = free_node(b, free)?;
    let new = fv.myself().clone();
    let mut members = live_addrs(&topo);
    let live_masters: Vec<Addr> = topo
        .live_masters()
        .filter(|m| !topo.unreachable.contains_key(&m.node_id))
        .map(|m| m.addr())
        .collect();
    meet_every_member(b, free, &members)?;
    wait::known_by_all(b, &members, &new.node_id, free)?;
    // The free node must have caught up with the cluster's epoch, so that its bump
    // below gives it the highest config epoch of all.
    // (Each node's own line is enough: the current epoch comes with CLUSTER INFO.)
    let mut epoch = 0;
    for v in b.own_views(&members) {
        epoch = epoch.max(v?.current_epoch);
    }
    wait::until(
        b,
        &format!("{free} to learn the cluster's epoch {epoch}"),
        |b| {
            let e = b.view(free)?.current_epoch;
            Ok((e < epoch).then(|| format!("{free} is at epoch {e}")))
        },
    )?;
    members.push(free.clone());
    if !failed.is_empty() {
        step(
            b,
            format!(
                "{free}: taking over failed slots {}",
                format_ranges(&failed)
            ),
        );
        // Bump first: with the highest config epoch the claim beats the failed owner's.
        // Claiming first would race the other masters' UPDATE messages, which would
        // give the slots back to the dead node and make the free node its replica.
        b.bump_epoch(free)?;
        let owner = SlotState::Node(new.node_id.clone());
        b.set_slots(free, &failed, &owner)?;
        for m in &live_masters {
            b.set_slots(m, &failed, &owner)?;
        }
    }
    if !uncovered.is_empty() {
        step(
            b,
            format!(
                "{free}: adding uncovered slots {}",
                format_ranges(&uncovered)
            ),
        );
        b.add_slots(free, &uncovered, 16384)?;
    }
    // A node that was never in this cluster has no older configuration to wait for:
    // its rejoin delay is shortened (see `rejoin`).
    with_short_node_timeout(b, std::slice::from_ref(free), "it reports ok", |b| {
        wait::converged(b, &members)
    })?;
    // The failed masters stay in every node's table (flagged fail) until forgotten.
    for n in topo.masters().filter(|n| n.is_failed()) {
        step(
            b,
            format!(
                "{} stays known, flagged fail: `redis-trib forget {cluster} {}` removes it",
                super::name_of(&topo, n),
                n.short_id()
            ),
        );
    }
    Ok(())
}
