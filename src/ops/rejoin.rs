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
//! New masters' replicas link without waiting out `repl-diskless-sync-delay` (see
//! [`SYNC_DELAY`]). Nodes already serving the cluster are never touched. `CONFIG
//! SET` is not written to redis.conf, so a restart restores every value; and a run
//! killed while a value is lowered leaves a node that differs from the others,
//! which `check` reports and `fix` puts back (see [`LOWERED`]).

use super::step;
use crate::addr::Addr;
use crate::backend::{Backend, Event, NodeCmd};
use anyhow::{anyhow, Result};

/// Redis's smallest rejoin delay (`CLUSTER_MIN_REJOIN_DELAY`), in milliseconds.
pub const REJOIN_FLOOR_MS: u64 = 500;

const NAME: &str = "cluster-node-timeout";

/// `repl-diskless-sync-delay`: seconds a master waits for more replicas before it
/// starts a diskless sync (5 by default), which every new replica of a new master
/// waits out. A brand-new master holds no data: `create` and `replicate` (onto an
/// empty master) set it to 0 while its replicas link, and put it back after.
pub const SYNC_DELAY: &str = "repl-diskless-sync-delay";

/// The settings operations lower for a while and put back (so `check` reports, and
/// `fix` restores, a node left with a value that differs from the cluster's by a run
/// killed meanwhile), with their unit.
pub const LOWERED: &[(&str, &str)] = &[(NAME, "ms"), (SYNC_DELAY, "s")];

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
    with_lowered(b, nodes, (NAME, "ms"), REJOIN_FLOOR_MS, why, wait)
}

/// Runs `wait` with the setting `name` (in `unit`) of `nodes` lowered to `low`, then
/// restores each node's own value, also when `wait` fails. Nodes whose value cannot
/// be read, or is already at most `low`, are left alone. A value that cannot be put
/// back is an error naming the node and the `config set` to run.
pub fn with_lowered<T>(
    b: &mut dyn Backend,
    nodes: &[Addr],
    (name, unit): (&str, &str),
    low: u64,
    why: &str,
    wait: impl FnOnce(&mut dyn Backend) -> Result<T>,
) -> Result<T> {
    // Read, lowered and put back on every node at once.
    let to_lower: Vec<(Addr, u64)> = nodes
        .iter()
        .cloned()
        .zip(config_u64_many(b, nodes, name))
        .filter_map(|(a, v)| v.map(|v| (a, v)))
        .filter(|(_, v)| *v > low)
        .collect();
    if !to_lower.is_empty() {
        step(
            b,
            format!(
                "{name} {low} {unit} on {} new node(s) until {why} (each gets its own value back after)",
                to_lower.len()
            ),
        );
    }
    let set = |to: &[(Addr, u64)], value: Option<u64>| -> Vec<(Addr, NodeCmd)> {
        to.iter()
            .map(|(a, v)| {
                let v = value.unwrap_or(*v).to_string();
                (a.clone(), NodeCmd::SetConfig(name.to_string(), v))
            })
            .collect()
    };
    let mut lowered = Vec::new();
    let results = b.apply_many(&set(&to_lower, Some(low)));
    for ((a, v), r) in to_lower.into_iter().zip(results) {
        match r {
            Ok(()) => lowered.push((a, v)),
            // A refusal only means this node takes Redis's usual time.
            Err(e) => b.emit(Event::Warning(format!(
                "{a}: {name} not lowered ({e:#}); it takes its usual time"
            ))),
        }
    }
    let result = wait(b);
    let mut stuck = Vec::new();
    let results = b.apply_many(&set(&lowered, None));
    for ((a, v), r) in lowered.iter().zip(results) {
        if let Err(e) = r {
            stuck.push(format!(
                "{a} could not get its {name} of {v} {unit} back ({e:#}); set it: redis-cli -h {} -p {} config set {name} {v}",
                a.host, a.port
            ));
        }
    }
    if !lowered.is_empty() && stuck.is_empty() {
        let back: Vec<String> = lowered
            .iter()
            .map(|(a, v)| format!("{a} {v} {unit}"))
            .collect();
        step(b, format!("{name} put back: {}", back.join(", ")));
    }
    if stuck.is_empty() {
        return result;
    }
    match result {
        Ok(_) => Err(anyhow!("{}", stuck.join("; "))),
        Err(e) => Err(anyhow!("{e:#}; also, {}", stuck.join("; "))),
    }
}

/// A numeric setting of each of `nodes` (`CONFIG GET name`, sent to all at once),
/// `None` where it cannot be read.
pub(super) fn config_u64_many(b: &mut dyn Backend, nodes: &[Addr], name: &str) -> Vec<Option<u64>> {
    let args: Vec<Vec<u8>> = ["CONFIG", "GET", name]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    b.execute_many(nodes, &args)
        .into_iter()
        .map(|reply| {
            let pair: Vec<String> = redis::from_redis_value(reply.ok()?).ok()?;
            pair.get(1)?.parse().ok()
        })
        .collect()
}
