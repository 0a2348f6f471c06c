//! `migrate_slots`: move exactly these slots, with their keys, from one master to
//! another of the same cluster.

use super::{ensure_no_open_slots, execute, member, topology_from};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::slots::format_ranges;
use anyhow::{bail, Result};

/// Moves `slots` from `src` to `dst`; returns the number of keys moved.
pub fn migrate_slots(b: &mut dyn Backend, src: &Addr, dst: &Addr, slots: &[u16]) -> Result<u64> {
    if slots.is_empty() {
        bail!("no slots to migrate");
    }
    // Sorted and once each, as the engines (and the simulation) read slot lists.
    let mut slots = slots.to_vec();
    crate::slots::sort_slots(&mut slots);
    let slots = &slots[..];
    super::take_lease(b, "migrate_slots", src, std::slice::from_ref(dst))?;
    let sv = member(b, src)?;
    let dv = member(b, dst)?;
    let (sid, did) = (sv.myself().node_id.clone(), dv.myself().node_id.clone());
    if sid == did {
        bail!(
            "source {src} and destination {dst} are the same node ({})",
            crate::topology::short_id(&sid)
        );
    }
    if sv.node(&did).is_none() {
        bail!(
            "{src} and {dst} are not in the same cluster ({src} does not know node {})",
            crate::topology::short_id(&did)
        );
    }
    let topo = topology_from(b, &sv)?;
    let (s, d) = (
        topo.node(&sid).expect("entry"),
        topo.node(&did).expect("known"),
    );
    if !s.is_master() {
        bail!("source {src} is a replica; slots are served by its master");
    }
    if !d.is_master() {
        bail!("destination {dst} is a replica; slots can only move to a master");
    }
    if d.is_failed() || topo.unreachable.contains_key(&did) {
        bail!("destination {dst} is failing or unreachable");
    }
    let not_held: Vec<u16> = slots
        .iter()
        .copied()
        .filter(|x| s.assigned_slots.binary_search(x).is_err())
        .collect();
    if !not_held.is_empty() {
        bail!("{src} does not hold slots {}", format_ranges(&not_held));
    }
    ensure_no_open_slots(&topo, "migrate slots")?;
    let keys = execute(b, &topo, &[(sid, did, slots.to_vec())])?;
    Ok(keys)
}
