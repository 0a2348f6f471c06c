//! `shutdown`: dissolve a cluster down to its last, empty node.

use super::{member, step};
use crate::addr::Addr;
use crate::backend::Backend;
use anyhow::{bail, Result};

/// Resets the last node of a cluster, provided it holds no keys.
pub fn shutdown(b: &mut dyn Backend, addr: &Addr) -> Result<()> {
    super::take_lease(b, "shutdown", addr, &[])?;
    let v = member(b, addr)?;
    if !v.is_alone() {
        bail!(
            "{addr} is not the last node of its cluster (it knows {} other nodes); `quit` them first",
            v.nodes.len() - 1
        );
    }
    if v.keys > 0 {
        bail!(
            "{addr} still holds {} keys; delete them first (shutdown never drops data)",
            v.keys
        );
    }
    step(b, format!("{addr}: reset"));
    b.reset(addr)
}
