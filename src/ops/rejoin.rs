//! Shortening Redis's rejoin delay for brand-new masters.
//!
//! A master keeps reporting `cluster_state:fail` (and refusing keys with CLUSTERDOWN)
//! until its rejoin delay has passed since it last saw itself in a minority:
//! `cluster-node-timeout`, clamped to 500 ms .. 5 s. The delay protects a master
//! coming back from a partition from serving writes before it has heard the
//! cluster's newer configuration. A brand-new node counts as "in a minority" until
//! it gets slots or learns the cluster's masters, so every new cluster and every
//! joining node sits out the full delay, though it has no older configuration to
//! hear about. `start`, `create`, `join` and `rescue` therefore lower the new masters'
//! `cluster-node-timeout` to the delay's floor once every node knows them, wait for
//! `cluster_state:ok`, and put each node's own value back, also when the wait fails.
//! `create` and `replicate` do the same for new replicas while they wait for every node to
//! see them: a node pings any peer it has not pinged for half its timeout, so a
//! replica with a short timeout announces its role within ~250 ms instead of up to
//! 1.5 s. (A replica's own timeout cannot start a failover: only masters' failure
//! reports can mark a master failed, and replicas are attached only after the
//! masters' timeouts are back.)
//! Nodes already serving the cluster are never touched. `CONFIG SET` is not written
//! to redis.conf, so even a killed run leaves nothing behind a restart.

use super::step;
use crate::addr::Addr;
use crate::backend::{Backend, Event};
use anyhow::{anyhow, Result};

/// Redis's smallest rejoin delay (`CLUSTER_MIN_REJOIN_DELAY`), in milliseconds.
pub const REJOIN_FLOOR_MS: u64 = 500;

const NAME: &str = "cluster-node-timeout";

/// Runs `wait` with the `cluster-node-timeout` of the brand-new nodes `nodes` lowered
/// to [`REJOIN_FLOOR_MS`], then restores each node's own value; `why` says what for
/// (it ends the step line). Nodes whose timeout cannot be read (CONFIG disabled, a
/// simulation without nodes) or is already at the floor are left alone: they just
/// take Redis's usual time.
pub fn with_short_node_timeout<T>(
    b: &mut dyn Backend,
    nodes: &[Addr],
    why: &str,
    wait: impl FnOnce(&mut dyn Backend) -> Result<T>,
) -> Result<T> {
    let to_lower: Vec<(Addr, u64)> = nodes
        .iter()
        .filter_map(|a| node_timeout(b, a).map(|ms| (a.clone(), ms)))
        .filter(|(_, ms)| *ms > REJOIN_FLOOR_MS)
        .collect();
    if !to_lower.is_empty() {
        step(
            b,
            format!(
                "{NAME} {REJOIN_FLOOR_MS} ms on {} new node(s) until {why} (each gets its own value back after)",
                to_lower.len()
            ),
        );
    }
    let mut lowered = Vec::new();
    for (a, ms) in to_lower {
        match b.set_config(&a, NAME, &REJOIN_FLOOR_MS.to_string()) {
            Ok(()) => lowered.push((a, ms)),
            // A refusal only means this node takes Redis's usual time.
            Err(e) => b.emit(Event::Warning(format!(
                "{a}: {NAME} not shortened ({e:#}); it waits out its usual delay"
            ))),
        }
    }
    let result = wait(b);
    let mut stuck = Vec::new();
    for (a, ms) in &lowered {
        if let Err(e) = b.set_config(a, NAME, &ms.to_string()) {
            stuck.push(format!(
                "{a} could not get its {NAME} of {ms} ms back ({e:#}); set it: redis-cli -h {} -p {} config set {NAME} {ms}",
                a.host, a.port
            ));
        }
    }
    if !lowered.is_empty() && stuck.is_empty() {
        let back: Vec<String> = lowered
            .iter()
            .map(|(a, ms)| format!("{a} {ms} ms"))
            .collect();
        step(b, format!("{NAME} put back: {}", back.join(", ")));
    }
    if stuck.is_empty() {
        return result;
    }
    match result {
        Ok(_) => Err(anyhow!("{}", stuck.join("; "))),
        Err(e) => Err(anyhow!("{e:#}; also, {}", stuck.join("; "))),
    }
}

/// The node's `cluster-node-timeout`, or `None` when it cannot be read.
pub(super) fn node_timeout(b: &mut dyn Backend, node: &Addr) -> Option<u64> {
    let args: Vec<Vec<u8>> = ["CONFIG", "GET", NAME]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let reply = b.execute(node, &args).ok()?;
    let pair: Vec<String> = redis::from_redis_value(reply).ok()?;
    pair.get(1)?.parse().ok()
}
