//! `import`: every key of a standalone Redis (database 0) into the cluster, moved
//! (default) or copied, each straight to the master that owns its slot.

use super::{ensure_healthy_warn, step, topology};
use crate::addr::Addr;
use crate::backend::{Backend, Event};
use crate::engine::key_copy::{inspect, ImportOpts};
use anyhow::{bail, Result};

/// Imports `source` into the cluster `cluster` belongs to; returns how many keys
/// went over. Refused (before anything moves) when the cluster is not healthy, when
/// the source is a cluster node or a node of this cluster, or is unreachable.
pub fn import(
    b: &mut dyn Backend,
    cluster: &Addr,
    source: &Addr,
    opts: &ImportOpts,
) -> Result<u64> {
    super::take_lease(b, "import", cluster, &[])?;
    let topo = topology(b, cluster)?;
    ensure_healthy_warn(b, &topo, "import")?;
    if let Some(n) = topo.nodes.iter().find(|n| n.addr() == *source) {
        bail!(
            "{source} is a node of this cluster ({}); import takes a standalone Redis",
            n.short_id()
        );
    }
    let info = inspect(source, &opts.source)?;
    if info.cluster_enabled {
        bail!("{source} is a cluster node (cluster_enabled:1); import takes a standalone Redis (to move slots between nodes use migrate_slots)");
    }
    for (db, keys) in &info.other_dbs {
        b.emit(Event::Warning(format!(
            "{source} holds {keys} keys in database {db}: they are not imported (a cluster has only database 0) and stay on {source}"
        )));
    }
    if info.keys == 0 {
        step(
            b,
            format!("{source} has no keys in database 0: nothing to import"),
        );
        return Ok(0);
    }
    let mut owners = vec![Addr::new("", 0); crate::slots::SLOT_COUNT as usize];
    for m in topo.masters() {
        for &s in &m.assigned_slots {
            owners[s as usize] = m.addr();
        }
    }
    step(
        b,
        format!(
            "{} {} keys from {source} into the cluster of {cluster}{}",
            if opts.copy { "copying" } else { "moving" },
            info.keys,
            if opts.replace {
                ", replacing existing keys"
            } else {
                ""
            }
        ),
    );
    b.import_keys(source, &owners, opts, info.keys)
}
