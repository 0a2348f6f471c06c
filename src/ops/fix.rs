//! `fix`: finish or repair every open (migrating / importing) slot in the cluster, and
//! put back a `cluster-node-timeout` left short on some node.
//!
//! A marker that describes a migration from the slot's owner (the owner migrating to
//! X, or X importing from the owner) is finished: the remaining keys move to X and X
//! becomes the owner. A marker that fits no migration (importing from a node that
//! does not own the slot, say) is cleared after the keys that node holds in the slot
//! are moved back to the owner. A marker toward a replica (Redis 7 turns an emptied
//! master into one, and still accepts `SETSLOT ... MIGRATING` toward it) cannot have
//! moved any key: it is cleared once the replica is seen to hold none of the slot's
//! keys. Nothing is dropped either way.
//!
//! A `MIGRATE` cut short (its reply lost after the destination stored the keys) leaves
//! keys on both sides, and the next `MIGRATE` answers `BUSYKEY`. Such a key is
//! compared on both nodes (`DUMP` payloads, as redis-cli does): the same value means
//! the source's copy is only a leftover, dropped (atomically, only while it is still
//! that value) before the move goes on; different values need `--replace` (the
//! source's value wins), and the error names the key and both nodes.
//!
//! Ctrl-C stops `fix` between two repairs: the error says what was repaired and what
//! is left, and no slot is left open on fix's account.
//!
//! Last, nodes whose `cluster-node-timeout` differs from the value most nodes share
//! (what a `create`, `join` or `start` killed while it was shortened leaves) get the
//! common value back (`CONFIG SET`).

use super::check::setting_outliers;
use super::{live_addrs, step, topology};
use crate::addr::Addr;
use crate::backend::{Backend, Event, SlotState};
use crate::error::{error, kind_of, Kind};
use crate::interrupt;
use crate::ops::wait;
use crate::slots::format_ranges;
use crate::topology::{Node, OpenSlot, Topology};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What to do about one open slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Finish moving `slot` from its owner `from` to `to`.
    Finish {
        /// The slot.
        slot: u16,
        /// Current owner.
        from: String,
        /// Intended owner.
        to: String,
    },
    /// Move `node`'s keys of `slot` to the owner, then clear its marker.
    Clear {
        /// The slot.
        slot: u16,
        /// The node with a stray marker.
        node: String,
        /// The slot's owner.
        owner: String,
    },
    /// Clear `node`'s marker toward `peer`, which is not a master (no key can have
    /// moved to it), after checking that `peer` holds none of the slot's keys.
    Dangling {
        /// The slot.
        slot: u16,
        /// The node carrying the marker (the slot's owner).
        node: String,
        /// The replica the marker points at.
        peer: String,
    },
    /// Tell `primary` `SETSLOT slot STABLE` again: its replica `replica` still carries
    /// a copy of a marker the primary no longer has (Valkey 8+ replicas take their
    /// primary's markers through replication; a `STABLE` the primary took before the
    /// replica was linked never reached it), and the primary replicates the command.
    Mirror {
        /// The slot.
        slot: u16,
        /// The replica carrying the stale copy.
        replica: String,
        /// Its primary.
        primary: String,
    },
    /// Give `slot`, which no master claimed while other nodes named `owner`, back to
    /// `owner` (see the `disowned` module).
    Reclaim {
        /// The slot.
        slot: u16,
        /// Its owner now.
        owner: String,
        /// The keys the owner holds in it.
        keys: u64,
    },
    /// Put the cluster's common value of a setting operations lower for a while
    /// (`cluster-node-timeout`, `repl-diskless-sync-delay`) back on a node.
    Setting {
        /// The node (`host:port`).
        node: String,
        /// The setting.
        name: String,
        /// Its value before.
        from: u64,
        /// The value most nodes share.
        to: u64,
    },
}

impl Repair {
    /// Whether this repair closed an open slot (rather than a node timeout).
    pub fn is_slot(&self) -> bool {
        self.slot().is_some()
    }

    /// The slot repaired, if it is a slot repair.
    pub fn slot(&self) -> Option<u16> {
        match self {
            Repair::Finish { slot, .. }
            | Repair::Clear { slot, .. }
            | Repair::Dangling { slot, .. }
            | Repair::Mirror { slot, .. }
            | Repair::Reclaim { slot, .. } => Some(*slot),
            Repair::Setting { .. } => None,
        }
    }

    /// One line for people.
    pub fn describe(&self, topo: &Topology) -> String {
        match self {
            Repair::Finish { slot, to, .. } => {
                format!("slot {slot} (its move to {})", topo.describe(to))
            }
            Repair::Clear { slot, node, .. } => {
                format!("slot {slot} (the stray marker on {})", topo.describe(node))
            }
            Repair::Dangling { slot, node, peer } => format!(
                "slot {slot} (the marker on {} toward the replica {})",
                topo.describe(node),
                topo.describe(peer)
            ),
            Repair::Mirror { slot, replica, .. } => format!(
                "slot {slot} (the stale copy of its primary's marker on the replica {})",
                topo.describe(replica)
            ),
            Repair::Reclaim { slot, owner, keys } => format!(
                "slot {slot} (claimed by no master; given back to {}, which holds {keys} keys of it)",
                topo.describe(owner)
            ),
            Repair::Setting {
                node,
                name,
                from,
                to,
            } => format!("{name} of {node} ({from} -> {to})"),
        }
    }
}

/// Decides the repairs for a topology's open slots (pure).
pub fn plan_repairs(topo: &Topology) -> Result<Vec<Repair>> {
    let owners = topo.slot_owners();
    let mut by_slot: BTreeMap<u16, Vec<OpenSlot>> = BTreeMap::new();
    for o in topo.open_slots() {
        by_slot.entry(o.slot).or_default().push(o);
    }
    let mut repairs = Vec::new();
    for (slot, markers) in by_slot {
        let Some(owner) = owners[slot as usize].map(|n| n.node_id.clone()) else {
            bail!(
                "slot {slot} is open on {} but no node serves it; run `redis-trib rescue` first",
                topo.describe(&markers[0].node_id)
            );
        };
        // (from, to) of each marker, read as a migration.
        let pairs: Vec<(&str, &str)> = markers
            .iter()
            .map(|o| match o.direction.as_str() {
                "migrating" => (o.node_id.as_str(), o.peer_id.as_str()),
                _ => (o.peer_id.as_str(), o.node_id.as_str()),
            })
            .collect();
        // A marker from the owner toward a replica describes no migration that can
        // have moved keys (see the module doc).
        let is_replica = |id: &str| topo.node(id).is_some_and(|n| !n.is_master());
        let targets: BTreeSet<&str> = pairs
            .iter()
            .filter(|(from, to)| *from == owner && *to != owner && !is_replica(to))
            .map(|(_, to)| *to)
            .collect();
        if targets.len() > 1 {
            bail!(
                "slot {slot} is being moved from its owner {} to several nodes at once; resolve it by hand",
                topo.describe(&owner)
            );
        }
        let target = targets.into_iter().next();
        if let Some(to) = target {
            match topo.node(to) {
                Some(t) if t.is_master() && !t.is_failed() && !topo.unreachable.contains_key(to) => {}
                _ => bail!(
                    "slot {slot} is migrating from {} to {}, which is not a reachable master; cannot finish it",
                    topo.describe(&owner),
                    topo.describe(to)
                ),
            }
            repairs.push(Repair::Finish {
                slot,
                from: owner.clone(),
                to: to.to_string(),
            });
        }
        // Markers that are not part of that migration are cleared.
        for (o, (from, to)) in markers.iter().zip(&pairs) {
            let part_of_finish = target.is_some_and(|t| *from == owner && *to == t);
            if *from == owner && is_replica(to) {
                repairs.push(Repair::Dangling {
                    slot,
                    node: o.node_id.clone(),
                    peer: to.to_string(),
                });
            } else if !part_of_finish {
                repairs.push(Repair::Clear {
                    slot,
                    node: o.node_id.clone(),
                    owner: owner.clone(),
                });
            }
        }
    }
    Ok(repairs)
}

/// Repairs every open slot of the cluster `addr` belongs to, then node timeouts that
/// differ from the cluster's; returns the repairs done.
pub fn fix(b: &mut dyn Backend, addr: &Addr) -> Result<Vec<Repair>> {
    super::take_lease(b, "fix", addr, &[])?;
    let mut topo = topology(b, addr)?;
    // Slots no master claims while nodes name an owner go back to it first: the
    // open-slot repairs below need every slot owned.
    let reclaimed = reclaim_disowned(b, &topo)?;
    if !reclaimed.is_empty() {
        topo = topology(b, addr)?;
    }
    let planned = plan_repairs(&topo)?;
    // Masters that learn new owners: not the dead ones.
    let masters: Vec<Node> = topo.answering_masters().cloned().collect();
    let mut done: Vec<Repair> = reclaimed;
    for (i, r) in planned.iter().enumerate() {
        if interrupt::requested() {
            return Err(interrupted(&done, &planned[i..]));
        }
        match repair(b, &topo, &masters, r) {
            Ok(()) => done.push(r.clone()),
            // The engine stops before touching the slot when asked to: it is as open
            // as it was, and left for the next run.
            Err(_) if interrupt::requested() => return Err(interrupted(&done, &planned[i..])),
            Err(e) => return Err(e),
        }
    }
    // Atomic slot migrations (Valkey 9+) left unfinished, failed or cancelled.
    let jobs = super::slot_jobs::fix_jobs(b, &masters)?;
    let live = live_addrs(&topo);
    if !jobs.is_empty() || done.iter().any(Repair::is_slot) {
        if let Err(e) = wait::converged(b, &live) {
            return Err(if interrupt::requested() {
                interrupted(&done, &[])
            } else {
                e
            });
        }
    }
    if interrupt::requested() {
        return Err(interrupted(&done, &[]));
    }
    // After repairs the cluster is read again; else what was read first still holds.
    let now = if done.is_empty() && jobs.is_empty() {
        topo
    } else {
        topology(b, addr)?
    };
    done.extend(clear_mirrored_markers(b, &now)?);
    for o in setting_outliers(b, &live) {
        let (name, unit, common) = (o.name, o.unit, o.common);
        for (node, v) in o.nodes {
            step(
                b,
                format!("{node}: {name} {v} -> {common} {unit} (the value the other nodes have)"),
            );
            b.set_config(&node, name, &common.to_string())?;
            done.push(Repair::Setting {
                node: node.to_string(),
                name: name.to_string(),
                from: v,
                to: common,
            });
        }
    }
    Ok(done)
}

/// Gives back the slots of `topo` no master claims while live nodes name an owner
/// (read only when some slot is unclaimed).
fn reclaim_disowned(b: &mut dyn Backend, topo: &Topology) -> Result<Vec<Repair>> {
    if topo.uncovered_slots().is_empty() {
        return Ok(Vec::new());
    }
    let views = wait::views(b, &live_addrs(topo))?;
    let done = super::disowned::reclaim(b, topo, &views)?;
    Ok(done
        .into_iter()
        .map(|r| Repair::Reclaim {
            slot: r.slot,
            owner: r.owner,
            keys: r.keys,
        })
        .collect())
}

/// The error of a `fix` stopped by Ctrl-C: what was repaired, what is left.
fn interrupted(done: &[Repair], left: &[Repair]) -> anyhow::Error {
    let slots = |rs: &[Repair]| {
        let mut slots: Vec<u16> = rs.iter().filter_map(Repair::slot).collect();
        slots.sort_unstable();
        slots.dedup();
        match slots.len() {
            0 => "no open slot".to_string(),
            n => format!("{n} open slot(s) ({})", format_ranges(&slots)),
        }
    };
    let tail = if left.is_empty() {
        "no slot is left open; node timeouts were not checked yet"
    } else {
        "those are as open as they were"
    };
    error(Kind::Interrupted(format!(
        "fix interrupted: repaired {}; left {}: {tail}; run `redis-trib fix` again to finish",
        slots(done),
        slots(left)
    )))
}

/// A node of the topology, or an error naming the id.
fn node<'a>(topo: &'a Topology, id: &str) -> Result<&'a Node> {
    topo.node(id).ok_or_else(|| {
        anyhow!("node {id} is not in the cluster any more; run `redis-trib fix` again")
    })
}

/// Carries out one slot repair.
fn repair(b: &mut dyn Backend, topo: &Topology, masters: &[Node], r: &Repair) -> Result<()> {
    match r {
        Repair::Finish { slot, from, to } => {
            step(
                b,
                format!(
                    "slot {slot}: finishing its move from {} to {}",
                    topo.describe(from),
                    topo.describe(to)
                ),
            );
            let (f, t) = (node(topo, from)?, node(topo, to)?);
            with_duplicates_settled(b, f, t, *slot, |b| {
                b.move_slots(f, t, &[*slot], masters).map(|_| ())
            })
        }
        Repair::Clear {
            slot,
            node: n,
            owner,
        } => {
            step(
                b,
                format!(
                    "slot {slot}: clearing the stray marker on {}",
                    topo.describe(n)
                ),
            );
            let (n, o) = (node(topo, n)?, node(topo, owner)?);
            if n.node_id != o.node_id {
                with_duplicates_settled(b, n, o, *slot, |b| b.move_keys(n, o, *slot).map(|_| ()))?;
            }
            b.set_slots(&n.addr(), &[*slot], &SlotState::Stable)
        }
        Repair::Dangling {
            slot,
            node: n,
            peer,
        } => {
            let (n, p) = (node(topo, n)?, node(topo, peer)?);
            // The replica mirrors its master: keys of this slot there would be keys
            // its master holds outside its slots, not keys this marker moved.
            let reachable = !p.is_failed() && !topo.unreachable.contains_key(&p.node_id);
            if reachable && p.master_id.as_deref() != Some(n.node_id.as_str()) {
                let held = count_keys(b, &p.addr(), *slot)?;
                if held > 0 {
                    bail!(
                        "slot {slot}: {} is marked migrating to the replica {}, which holds {held} keys of that slot (copies of its master's); move them to {} by hand, then run `redis-trib fix` again",
                        topo.describe(&n.node_id),
                        topo.describe(&p.node_id),
                        topo.describe(&n.node_id)
                    );
                }
            }
            step(
                b,
                format!(
                    "slot {slot}: clearing the mark on {} toward {}, a replica (it cannot have received keys; the slot's keys are on {})",
                    topo.describe(&n.node_id),
                    topo.describe(&p.node_id),
                    n.addr()
                ),
            );
            b.set_slots(&n.addr(), &[*slot], &SlotState::Stable)
        }
        Repair::Setting { .. } | Repair::Mirror { .. } | Repair::Reclaim { .. } => Ok(()),
    }
}

/// The markers replicas of `topo` carry in their own line that their primary's own
/// line does not (pure): (slot, replica id, primary id), one per slot and replica.
pub fn mirrored_markers(topo: &Topology) -> Vec<(u16, String, String)> {
    let index = topo.index();
    let mut out = Vec::new();
    for r in topo
        .nodes
        .iter()
        .filter(|n| !n.is_master() && !n.is_failed())
    {
        let Some(p) = r.master_id.as_deref().and_then(|id| index.node(id)) else {
            continue;
        };
        if topo.unreachable.contains_key(&r.node_id) || topo.unreachable.contains_key(&p.node_id) {
            continue;
        }
        let open_on = |n: &Node| -> BTreeSet<u16> {
            n.slots_migrating
                .iter()
                .chain(&n.slots_importing)
                .map(|(s, _)| *s)
                .collect()
        };
        let on_primary = open_on(p);
        for slot in open_on(r).difference(&on_primary) {
            out.push((*slot, r.node_id.clone(), p.node_id.clone()));
        }
    }
    out
}

/// How long a replica may keep a marker after its primary was told STABLE before
/// the primary is told again.
const MIRROR_RETELL: std::time::Duration = std::time::Duration::from_millis(250);

/// Clears what [`mirrored_markers`] finds in `topo`: each primary whose server
/// replicates `SETSLOT` (Valkey 8+) is told `SETSLOT STABLE` again for those slots
/// (a no-op on it, replicated to its replicas), then each replica is waited for
/// (bounded by the backend's timeout), the primary told again every
/// [`MIRROR_RETELL`] meanwhile. Where the server does not replicate it, or
/// the replica keeps its copy, a warning says so (harmless while it is a replica;
/// should it be promoted, `fix` finishes the slot).
fn clear_mirrored_markers(b: &mut dyn Backend, topo: &Topology) -> Result<Vec<Repair>> {
    let mut found = mirrored_markers(topo);
    found.retain(|(slot, replica, primary)| {
        let Ok(p) = node(topo, primary) else {
            return false;
        };
        let replicates = super::metrics::server_and_memory(b, &p.addr())
            .map_or(true, |(server, _)| server.replicates_setslot());
        if !replicates {
            b.emit(Event::Warning(format!(
                "slot {slot}: {} lists a marker its primary {} no longer has, and {}'s server does not pass SETSLOT to replicas: harmless while it is a replica; run `redis-trib fix` again should it be promoted",
                topo.describe(replica),
                topo.describe(primary),
                p.addr()
            )));
        }
        replicates
    });
    let mut done = Vec::new();
    for (slot, replica, primary) in &found {
        step(
            b,
            format!(
                "slot {slot}: {} still carries its primary's old marker; telling {} SETSLOT STABLE again (it replicates it)",
                topo.describe(replica),
                topo.describe(primary)
            ),
        );
        let p = node(topo, primary)?;
        b.set_slots(&p.addr(), &[*slot], &SlotState::Stable)?;
        done.push(Repair::Mirror {
            slot: *slot,
            replica: replica.clone(),
            primary: primary.clone(),
        });
    }
    // Each replica's slots and primary. A replica still loading its full sync takes
    // the markers from the RDB (Valkey's `cluster-slot-states`), and its primary
    // passes a SETSLOT on only to replicas already online: so STABLE is told again
    // while the replica still lists them, until its link is up and it drops them.
    let mut by_replica: BTreeMap<&String, (Vec<u16>, &String)> = BTreeMap::new();
    for (slot, replica, primary) in &found {
        by_replica
            .entry(replica)
            .or_insert((Vec::new(), primary))
            .0
            .push(*slot);
    }
    for (r, (slots, primary)) in by_replica {
        let at = node(topo, r)?.addr();
        let primary_at = node(topo, primary)?.addr();
        let mut told = std::time::Instant::now();
        let cleared = wait::until(b, &format!("{at} to drop its stale slot markers"), |b| {
            let v = b.view(&at)?;
            let me = v.myself();
            if me.slots_migrating.is_empty() && me.slots_importing.is_empty() {
                return Ok(None);
            }
            if told.elapsed() >= MIRROR_RETELL {
                b.set_slots(&primary_at, &slots, &SlotState::Stable)?;
                told = std::time::Instant::now();
            }
            Ok(Some(format!("{at} still lists its markers")))
        });
        if let Err(e) = cleared {
            if interrupt::requested() {
                return Err(e);
            }
            b.emit(Event::Warning(format!(
                "{at} kept its copy of the markers ({e:#}): harmless while it is a replica; run `redis-trib fix` again should it be promoted"
            )));
        }
    }
    Ok(done)
}

/// Runs `move_keys` (a move of `slot`'s keys from `src` to `dst`). When it stops on
/// `BUSYKEY` (the destination's error code, which the source's `MIGRATE` relays; the
/// engine reports it as [`Kind::BusyKey`]), every key of the slot found on both
/// nodes with the same value loses its source copy and the move is tried again (a
/// few times: each round settles every duplicate in the slot). Any other error, or a
/// `BUSYKEY` with no duplicate left to settle, stands.
fn with_duplicates_settled(
    b: &mut dyn Backend,
    src: &Node,
    dst: &Node,
    slot: u16,
    mut move_keys: impl FnMut(&mut dyn Backend) -> Result<()>,
) -> Result<()> {
    for _ in 0..3 {
        match move_keys(b) {
            Err(e) if matches!(kind_of(&e), Some(Kind::BusyKey { .. })) => {
                if interrupt::requested() || settle_duplicates(b, src, dst, slot)? == 0 {
                    return Err(e);
                }
            }
            other => return other,
        }
    }
    move_keys(b)
}

/// Drops `src`'s copy of every key of `slot` that `dst` holds with the same value;
/// returns how many. A key whose values differ is an error naming it and both nodes.
fn settle_duplicates(b: &mut dyn Backend, src: &Node, dst: &Node, slot: u16) -> Result<usize> {
    let (sa, da) = (src.addr(), dst.addr());
    let theirs: HashSet<Vec<u8>> = keys_in_slot(b, &da, slot)?.into_iter().collect();
    let mut dropped = 0;
    let mut differ: Vec<Vec<u8>> = Vec::new();
    for key in keys_in_slot(b, &sa, slot)? {
        if !theirs.contains(&key) {
            continue;
        }
        let (Some(mine), Some(other)) = (dump(b, &sa, &key)?, dump(b, &da, &key)?) else {
            continue;
        };
        if mine != other {
            differ.push(key);
        } else if drop_if_unchanged(b, &sa, &key, &mine)? {
            dropped += 1;
        }
    }
    if let Some(first) = differ.first() {
        let key = String::from_utf8_lossy(first).into_owned();
        let more = match differ.len() {
            1 => String::new(),
            n => format!(" ({} more keys differ too)", n - 1),
        };
        return Err(error(Kind::BusyKey {
            message: format!(
                "slot {slot}: key '{key}' exists on both {sa} and {da} with different values{more}; `redis-trib fix --replace` keeps {sa}'s (the source's), or delete the copy you do not want and run `redis-trib fix` again"
            ),
            slot,
            key,
            node: da.to_string(),
        }));
    }
    if dropped > 0 {
        step(
            b,
            format!(
                "slot {slot}: {dropped} key(s) were on both {sa} and {da} with the same value (a MIGRATE cut short); {sa}'s copies dropped"
            ),
        );
    }
    Ok(dropped)
}

fn args(words: &[&[u8]]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.to_vec()).collect()
}

/// `CLUSTER COUNTKEYSINSLOT` on one node.
/// How many keys `node` holds in `slot`.
pub(super) fn count_keys(b: &mut dyn Backend, node: &Addr, slot: u16) -> Result<u64> {
    let s = slot.to_string();
    let v = b.execute(node, &args(&[b"CLUSTER", b"COUNTKEYSINSLOT", s.as_bytes()]))?;
    redis::from_redis_value(v).map_err(|e| anyhow!("{node}: unexpected COUNTKEYSINSLOT reply: {e}"))
}

/// Every key `node` holds in `slot`.
fn keys_in_slot(b: &mut dyn Backend, node: &Addr, slot: u16) -> Result<Vec<Vec<u8>>> {
    let count = count_keys(b, node, slot)?.to_string();
    let s = slot.to_string();
    let v = b.execute(
        node,
        &args(&[b"CLUSTER", b"GETKEYSINSLOT", s.as_bytes(), count.as_bytes()]),
    )?;
    redis::from_redis_value(v).map_err(|e| anyhow!("{node}: unexpected GETKEYSINSLOT reply: {e}"))
}

/// The `DUMP` payload of `key` on `node` (`ASKING` first: the node may be importing
/// the slot), `None` when the key is gone.
fn dump(b: &mut dyn Backend, node: &Addr, key: &[u8]) -> Result<Option<Vec<u8>>> {
    b.execute(node, &args(&[b"ASKING"]))?;
    let v = b.execute(node, &args(&[b"DUMP", key]))?;
    redis::from_redis_value(v).map_err(|e| anyhow!("{node}: unexpected DUMP reply: {e}"))
}

/// Deletes `key` on `node` only while its value is still `payload` (one script, so no
/// write in between is lost); whether it was deleted.
fn drop_if_unchanged(b: &mut dyn Backend, node: &Addr, key: &[u8], payload: &[u8]) -> Result<bool> {
    const SCRIPT: &[u8] =
        b"if redis.call('DUMP', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
    b.execute(node, &args(&[b"ASKING"]))?;
    let v = b.execute(node, &args(&[b"EVAL", SCRIPT, b"1", key, payload]))?;
    let n: i64 =
        redis::from_redis_value(v).map_err(|e| anyhow!("{node}: unexpected EVAL reply: {e}"))?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(lines: &[String]) -> Topology {
        Topology::from_node_lines(lines).unwrap()
    }
    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }
    fn line(c: char, port: u16, slots: &str) -> String {
        format!(
            "{} 127.0.0.1:{port}@1{port} master - 0 0 1 connected {slots}",
            id(c)
        )
    }

    #[test]
    fn a_replica_marker_its_primary_no_longer_has_is_found() {
        let replica = |c: char, port: u16, of: char, slots: &str| {
            format!(
                "{} 127.0.0.1:{port}@1{port} slave {} 0 0 1 connected {slots}",
                id(c),
                id(of)
            )
        };
        // c copies a's old marker on slot 100; d copies b's live one on 9000.
        let t = topo(&[
            line('a', 7000, "0-8191"),
            line('b', 7001, &format!("8192-16383 [9000->-{}]", id('a'))),
            replica('c', 7002, 'a', &format!("[100->-{}]", id('c'))),
            replica('d', 7003, 'b', &format!("[9000->-{}]", id('a'))),
        ]);
        assert_eq!(mirrored_markers(&t), vec![(100, id('c'), id('a'))]);
        assert_eq!(
            mirrored_markers(&topo(&[line('a', 7000, "0-16383")])),
            Vec::new()
        );
    }

    #[test]
    fn finishes_a_migration_marked_on_both_sides() {
        let t = topo(&[
            line('a', 7000, &format!("0-8191 [5->-{}]", id('b'))),
            line('b', 7001, &format!("8192-16383 [5-<-{}]", id('a'))),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Finish {
                slot: 5,
                from: id('a'),
                to: id('b')
            }]
        );
    }

    #[test]
    fn finishes_a_lone_importing_or_migrating_marker() {
        let t = topo(&[
            line('a', 7000, "0-8191"),
            line('b', 7001, &format!("8192-16383 [5-<-{}]", id('a'))),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Finish {
                slot: 5,
                from: id('a'),
                to: id('b')
            }]
        );
        let t = topo(&[
            line('a', 7000, &format!("0-8191 [5->-{}]", id('b'))),
            line('b', 7001, "8192-16383"),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Finish {
                slot: 5,
                from: id('a'),
                to: id('b')
            }]
        );
    }

    #[test]
    fn clears_a_marker_that_fits_no_migration() {
        // b imports slot 5 from c, but a owns slot 5.
        let t = topo(&[
            line('a', 7000, "0-8191"),
            line('b', 7001, &format!("8192-16383 [5-<-{}]", id('c'))),
            line('c', 7002, ""),
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Clear {
                slot: 5,
                node: id('b'),
                owner: id('a')
            }]
        );
    }

    #[test]
    fn clears_a_marker_toward_a_replica_instead_of_refusing() {
        // a migrates slot 5 to b, which has become a replica of a since.
        let replica = format!(
            "{} 127.0.0.1:7001@17001 slave {} 0 0 1 connected",
            id('b'),
            id('a')
        );
        let t = topo(&[
            line('a', 7000, &format!("0-16383 [5->-{}]", id('b'))),
            replica,
        ]);
        assert_eq!(
            plan_repairs(&t).unwrap(),
            vec![Repair::Dangling {
                slot: 5,
                node: id('a'),
                peer: id('b')
            }]
        );
    }

    #[test]
    fn refuses_open_slot_without_owner() {
        let t = topo(&[
            line('a', 7000, &format!("0-4 6-16383 [5-<-{}]", id('b'))),
            line('b', 7001, ""),
        ]);
        assert!(plan_repairs(&t)
            .unwrap_err()
            .to_string()
            .contains("no node serves it"));
    }
}
