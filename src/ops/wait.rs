//! Bounded, explained waits: poll a condition until it holds, and on timeout say
//! what was still wrong (which node disagrees about what).

use crate::addr::Addr;
use crate::backend::Backend;
use crate::interrupt;
use crate::topology::{
    convergence_problem, epoch_collision, membership_problem, Seen, SharedView, View,
};
use anyhow::{bail, Result};
use std::time::Instant;

/// Polls `check` until it returns `None` (done). `Some(reason)` means not yet; on
/// timeout the error quotes the last reason. Errors from `check` end the wait.
pub fn until(
    b: &mut dyn Backend,
    what: &str,
    mut check: impl FnMut(&mut dyn Backend) -> Result<Option<String>>,
) -> Result<()> {
    let start = Instant::now();
    let timeout = b.timeout();
    loop {
        let reason = match check(b)? {
            None => return Ok(()),
            Some(reason) => reason,
        };
        if interrupt::requested() {
            return Err(crate::error::error(crate::error::Kind::Interrupted(
                format!("interrupted while waiting for {what}: {reason}"),
            )));
        }
        if start.elapsed() >= timeout {
            bail!(
                "timed out after {:.0?} waiting for {what}: {reason} (raise --timeout if the cluster is just slow)",
                timeout
            );
        }
        std::thread::sleep(b.poll_interval());
    }
}

/// Reads the views of `addrs`; a node that cannot be read is an error.
pub fn views(b: &mut dyn Backend, addrs: &[Addr]) -> Result<Vec<View>> {
    b.views(addrs).into_iter().collect()
}

/// The views of `addrs` with their node tables shared, when the backend keeps such
/// tables (a simulation: reading n nodes then costs one table, not n copies of it);
/// `None`: read [`views`].
pub fn shared_views(b: &mut dyn Backend, addrs: &[Addr]) -> Option<Result<Vec<SharedView>>> {
    let read: Option<Vec<Result<SharedView>>> = addrs.iter().map(|a| b.shared_view(a)).collect();
    read.map(|r| r.into_iter().collect())
}

/// `check` over the views of `addrs`: sharing the backend's node tables where it
/// keeps them (a simulation), else views of their own ([`views`]). A wait that polls
/// every member reads them so: n views of their own copy an n-node table n times.
pub fn with_views<T>(
    b: &mut dyn Backend,
    addrs: &[Addr],
    check: impl FnOnce(&[&dyn Seen]) -> T,
) -> Result<T> {
    match shared_views(b, addrs) {
        Some(shared) => {
            let shared = shared?;
            let seen: Vec<&dyn Seen> = shared.iter().map(|v| v as &dyn Seen).collect();
            Ok(check(&seen))
        }
        None => {
            let own = views(b, addrs)?;
            let seen: Vec<&dyn Seen> = own.iter().map(|v| v as &dyn Seen).collect();
            Ok(check(&seen))
        }
    }
}

/// Waits until `addrs` form a converged cluster: everyone knows everyone, no
/// handshake or failure suspicion among them, one slot map, and `cluster_state:ok`
/// everywhere once all slots are covered.
pub fn converged(b: &mut dyn Backend, addrs: &[Addr]) -> Result<()> {
    until(b, "the cluster to converge", |b| {
        match shared_views(b, addrs) {
            Some(shared) => Ok(convergence_problem(&shared?)),
            None => Ok(convergence_problem(&views(b, addrs)?)),
        }
    })
}

/// Waits until no two masters among `addrs` have the same config epoch (each as it
/// reports itself): see [`epoch_collision`].
pub fn epochs_distinct(b: &mut dyn Backend, addrs: &[Addr]) -> Result<()> {
    until(b, "config epochs to settle", |b| {
        let own: Vec<View> = b.own_views(addrs).into_iter().collect::<Result<_>>()?;
        Ok(epoch_collision(own.iter().map(View::myself)))
    })
}

/// Waits until the nodes of `addrs` all know each other (past the handshake), without
/// waiting for slot agreement or `cluster_state:ok`.
pub fn acquainted(b: &mut dyn Backend, addrs: &[Addr]) -> Result<()> {
    until(
        b,
        "every node to know every other",
        |b| match shared_views(b, addrs) {
            Some(shared) => Ok(membership_problem(&shared?)),
            None => Ok(membership_problem(&views(b, addrs)?)),
        },
    )
}

/// Waits until every node in `addrs` knows node `id` past the handshake.
pub fn known_by_all(b: &mut dyn Backend, addrs: &[Addr], id: &str, name: &Addr) -> Result<()> {
    all_known_by_all(b, addrs, &[(name.clone(), id.to_string())])
}

/// Waits until every node in `addrs` knows each of `nodes` (address, id) past the
/// handshake.
pub fn all_known_by_all(
    b: &mut dyn Backend,
    addrs: &[Addr],
    nodes: &[(Addr, String)],
) -> Result<()> {
    let what = match nodes {
        [(name, _)] => format!("every node to know {name}"),
        _ => format!("every node to know the {} new nodes", nodes.len()),
    };
    until(b, &what, |b| match shared_views(b, addrs) {
        Some(shared) => Ok(unknowing(&shared?, nodes)),
        None => Ok(unknowing(&views(b, addrs)?, nodes)),
    })
}

/// Why some of `views` do not know one of `nodes` (address, id) past the handshake yet.
fn unknowing<V: Seen>(views: &[V], nodes: &[(Addr, String)]) -> Option<String> {
    for v in views {
        for (name, id) in nodes {
            match v.find(id) {
                None => return Some(format!("{} does not know {name} yet", v.addr())),
                Some(n) if n.in_handshake() || n.no_addr() => {
                    return Some(format!("{} is still in handshake with {name}", v.addr()))
                }
                _ => {}
            }
        }
    }
    None
}
