//! `backup`: each master's RDB and every node's `CLUSTER NODES` view into a
//! directory, with a manifest (slots, key counts, sizes, SHA-256 of every file).
//! Each RDB is a point-in-time copy of its master; masters are copied one after
//! another (one fork at a time), so the backup is not one cluster-wide instant.

use super::{step, topology};
use crate::addr::Addr;
use crate::backend::{Backend, Event};
use crate::engine::rdb::{now_rfc3339, Manifest, MasterBackup, NodeBackup, FORMAT, MANIFEST};
use crate::slots::format_ranges;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// Backs up the cluster `cluster` belongs to into `dir` (created if missing; refused
/// if it holds anything). Refused when a master is unreachable or slots are not
/// covered (the backup would miss keys); an open slot is reported and backed up on
/// both sides.
pub fn backup(b: &mut dyn Backend, cluster: &Addr, dir: &Path) -> Result<Manifest> {
    let topo = topology(b, cluster)?;
    if let Some(m) = topo
        .masters()
        .find(|m| m.is_failed() || topo.unreachable.contains_key(&m.node_id))
    {
        bail!(
            "cannot back up: master {} is not reachable, its keys would be missing",
            topo.describe(&m.node_id)
        );
    }
    let uncovered = topo.uncovered_slots();
    if !uncovered.is_empty() {
        bail!(
            "cannot back up: slots {} are not served by any node; run `redis-trib rescue` first",
            format_ranges(&uncovered)
        );
    }
    if let Some(o) = topo.open_slots().first() {
        b.emit(Event::Warning(format!(
            "slot {} is open ({} {}): its keys are backed up wherever they are now",
            o.slot,
            topo.describe(&o.node_id),
            o.direction
        )));
    }
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty; back up into a new or empty directory",
                dir.display()
            );
        }
    }
    let mut manifest = Manifest {
        format: FORMAT.into(),
        created: now_rfc3339(),
        cluster: cluster.to_string(),
        masters: Vec::new(),
        nodes: Vec::new(),
    };
    for n in topo
        .nodes
        .iter()
        .filter(|n| !n.is_failed() && !topo.unreachable.contains_key(&n.node_id))
    {
        let name = format!("{}-{}.nodes.txt", n.short_id(), n.port);
        let text = b.execute(&n.addr(), &[b"CLUSTER".to_vec(), b"NODES".to_vec()])?;
        let text: String = redis::from_redis_value(text)
            .map_err(|e| anyhow!("{}: unexpected CLUSTER NODES reply: {e}", n.addr()))?;
        b.write_file(&dir.join(&name), text.as_bytes())?;
        manifest.nodes.push(NodeBackup {
            id: n.node_id.clone(),
            addr: n.addr().to_string(),
            role: if n.is_master() { "master" } else { "replica" }.into(),
            master_id: n.master_id.clone(),
            config_epoch: n.config_epoch,
            nodes_file: name,
        });
    }
    let masters: Vec<_> = topo
        .masters()
        .filter(|m| !m.assigned_slots.is_empty())
        .cloned()
        .collect();
    for (i, m) in masters.iter().enumerate() {
        let rdb = format!("{}-{}.rdb", m.short_id(), m.port);
        step(
            b,
            format!(
                "[{}/{}] RDB of {} into {rdb}",
                i + 1,
                masters.len(),
                topo.describe(&m.node_id)
            ),
        );
        let keys = topo.keys.get(&m.node_id).copied().unwrap_or(0);
        let server = super::metrics::server_and_memory(b, &m.addr())
            .ok()
            .map(|(s, _)| s.to_string());
        let written = b.save_rdb(&m.addr(), &dir.join(&rdb))?;
        let header = crate::engine::rdb::rdb_file_header(&dir.join(&rdb));
        manifest.masters.push(MasterBackup {
            id: m.node_id.clone(),
            addr: m.addr().to_string(),
            slots: format_ranges(&m.assigned_slots),
            slot_count: m.assigned_slots.len(),
            keys,
            rdb,
            bytes: written.bytes,
            sha256: written.sha256,
            server,
            rdb_version: header.as_ref().map(|h| h.1),
            rdb_magic: header.map(|h| h.0),
        });
    }
    let json = serde_json::to_vec_pretty(&manifest)?;
    b.write_file(&dir.join(MANIFEST), &json)?;
    Ok(manifest)
}
