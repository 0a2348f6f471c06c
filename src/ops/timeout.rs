//! `set-timeout`: the same `cluster-node-timeout` on every node of the cluster.

use super::{step, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use anyhow::{bail, Result};

/// Sets `cluster-node-timeout` to `ms` on every reachable node; refuses when a node is
/// unreachable (it would keep the old value) or `ms` is below 100. Returns how many
/// nodes were set.
pub fn set_timeout(b: &mut dyn Backend, addr: &Addr, ms: u64) -> Result<usize> {
    if ms < 100 {
        bail!("a cluster-node-timeout of {ms} ms is too small (at least 100 ms)");
    }
    super::take_lease(b, "set_timeout", addr, &[])?;
    let topo = topology(b, addr)?;
    if let Some((id, why)) = topo.unreachable.iter().next() {
        bail!(
            "node {} is unreachable ({why}); it would keep its old timeout",
            topo.describe(id)
        );
    }
    for n in &topo.nodes {
        step(b, format!("{}: cluster-node-timeout {ms}", n.addr()));
        b.set_config(&n.addr(), "cluster-node-timeout", &ms.to_string())?;
    }
    Ok(topo.nodes.len())
}
