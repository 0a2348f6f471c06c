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
//! The short timeout matters a second way in a big create: a node learns another
//! master's slots only from that master's own messages, and the PONG that ends their
//! handshake does not count; it pings a peer directly only when its last pong from
//! it, which gossip refreshes to the second, is older than half its timeout. With a
//! long timeout some new masters' slots stay unknown to some peers (100 masters +
//! 100 replicas whose 15 s timeout was left alone were not ok after 60 s); at 500 ms
//! every node pings every peer at least each second.
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
pub const LOWERED: &[Setting] = &[NODE_TIMEOUT, (SYNC_DELAY, "s")];

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
    with_lowered(b, nodes, NODE_TIMEOUT, REJOIN_FLOOR_MS, why, wait)
}

/// A setting operations lower for a while: its name and unit (`ms`, `s`).
pub type Setting = (&'static str, &'static str);

/// `cluster-node-timeout`, in milliseconds.
pub const NODE_TIMEOUT: Setting = (NAME, "ms");

/// Runs `wait` with the setting `name` (in `unit`) of `nodes` lowered to `low`, then
/// restores each node's own value, also when `wait` fails. Nodes whose value cannot
/// be read, or is already at most `low`, are left alone. A value that cannot be put
/// back is an error naming the node and the `config set` to run.
pub fn with_lowered<T>(
    b: &mut dyn Backend,
    nodes: &[Addr],
    setting: Setting,
    low: u64,
    why: &str,
    wait: impl FnOnce(&mut dyn Backend) -> Result<T>,
) -> Result<T> {
    // Read, lowered and put back on every node at once.
    let own = config_u64_many(b, nodes, setting.0);
    let mut lowered = Lowered::default();
    let mut round = Round::default();
    let targets = nodes.iter().cloned().zip(own);
    lowered.lower(b, &mut round, targets, (setting, low), why);
    lowered.run(b, round);
    let result = wait(b);
    lowered.finish(b, result)
}

/// One node's lowered setting and the value it gets back.
#[derive(Clone, Debug)]
struct Held {
    node: Addr,
    setting: Setting,
    own: u64,
}

/// What a command of a [`Round`] is for.
enum Purpose {
    Lower(Held),
    PutBack(Held),
    Other,
}

/// Per-node commands sent to every node at once ([`Backend::apply_many`]): settings
/// lowered or put back by a [`Lowered`], and the caller's own commands, so an
/// operation that changes several things between two waits pays one round trip.
#[derive(Default)]
pub struct Round {
    cmds: Vec<(Addr, NodeCmd)>,
    purposes: Vec<Purpose>,
}

impl Round {
    /// Adds one of the caller's commands; [`Lowered::run`] returns its result.
    pub fn push(&mut self, node: Addr, cmd: NodeCmd) {
        self.cmds.push((node, cmd));
        self.purposes.push(Purpose::Other);
    }

    fn setting(&mut self, held: &Held, value: u64, purpose: Purpose) {
        let cmd = NodeCmd::SetConfig(held.setting.0.to_string(), value.to_string());
        self.cmds.push((held.node.clone(), cmd));
        self.purposes.push(purpose);
    }
}

/// The settings an operation lowered on brand-new nodes, each with the node's own
/// value, until they are put back. [`Lowered::finish`] puts back whatever is still
/// lowered, also when the operation failed; a run killed meanwhile leaves nodes
/// that `check` reports and `fix` puts back (see [`LOWERED`]).
#[derive(Default)]
pub struct Lowered {
    held: Vec<Held>,
    /// Put-backs that failed: what to run by hand.
    stuck: Vec<String>,
}

impl Lowered {
    /// Adds to `round` the commands lowering `setting` to `low` on each node of
    /// `targets` whose own value (`None` when it could not be read) is above `low`,
    /// and says so; `why` ends the step line. Nodes left alone take Redis's usual time.
    pub fn lower(
        &self,
        b: &mut dyn Backend,
        round: &mut Round,
        targets: impl IntoIterator<Item = (Addr, Option<u64>)>,
        (setting, low): (Setting, u64),
        why: &str,
    ) {
        let mut count = 0;
        for (node, own) in targets {
            if let Some(own) = own.filter(|v| *v > low) {
                let held = Held { node, setting, own };
                round.setting(&held, low, Purpose::Lower(held.clone()));
                count += 1;
            }
        }
        if count > 0 {
            let (name, unit) = setting;
            step(
                b,
                format!(
                    "{name} {low} {unit} on {count} new node(s) until {why} (each gets its own value back after)"
                ),
            );
        }
    }

    /// Adds to `round` the commands putting `setting` back on every node it is
    /// lowered on.
    pub fn put_back(&mut self, round: &mut Round, setting: Setting) {
        let (back, keep): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.setting == setting);
        self.held = keep;
        for held in back {
            round.setting(&held, held.own, Purpose::PutBack(held.clone()));
        }
    }

    /// Sends `round`: settings that were lowered are remembered, a refusal to lower
    /// is a warning (that node takes its usual time), a refusal to put back is
    /// remembered for [`Lowered::finish`] (see [`Lowered::is_stuck`]). Returns the
    /// results of the caller's own commands, in the order they were pushed.
    pub fn run(&mut self, b: &mut dyn Backend, round: Round) -> Vec<Result<()>> {
        if round.cmds.is_empty() {
            return Vec::new();
        }
        let results = b.apply_many(&round.cmds);
        let mut others = Vec::new();
        let mut back: Vec<Held> = Vec::new();
        for (purpose, result) in round.purposes.into_iter().zip(results) {
            match (purpose, result) {
                (Purpose::Lower(h), Ok(())) => self.held.push(h),
                (Purpose::Lower(h), Err(e)) => b.emit(Event::Warning(format!(
                    "{}: {} not lowered ({e:#}); it takes its usual time",
                    h.node, h.setting.0
                ))),
                (Purpose::PutBack(h), Ok(())) => back.push(h),
                (Purpose::PutBack(h), Err(e)) => {
                    let (name, unit) = h.setting;
                    self.stuck.push(format!(
                        "{} could not get its {name} of {} {unit} back ({e:#}); set it: redis-cli -h {} -p {} config set {name} {}",
                        h.node, h.own, h.node.host, h.node.port, h.own
                    ));
                }
                (Purpose::Other, r) => others.push(r),
            }
        }
        // One line per setting put back.
        let mut settings: Vec<Setting> = back.iter().map(|h| h.setting).collect();
        settings.dedup();
        for setting in settings {
            let (name, unit) = setting;
            let list: Vec<String> = back
                .iter()
                .filter(|h| h.setting == setting)
                .map(|h| format!("{} {} {unit}", h.node, h.own))
                .collect();
            step(b, format!("{name} put back: {}", list.join(", ")));
        }
        others
    }

    /// Whether a setting could not be put back on some node.
    pub fn is_stuck(&self) -> bool {
        !self.stuck.is_empty()
    }

    /// Puts back every setting still lowered, then returns `result`, or an error
    /// naming each node whose setting could not be put back (and the `config set`
    /// that would), after `result`'s own error if any.
    pub fn finish<T>(mut self, b: &mut dyn Backend, result: Result<T>) -> Result<T> {
        let mut round = Round::default();
        let mut settings: Vec<Setting> = self.held.iter().map(|h| h.setting).collect();
        settings.sort_unstable();
        settings.dedup();
        for setting in settings {
            self.put_back(&mut round, setting);
        }
        self.run(b, round);
        if self.stuck.is_empty() {
            return result;
        }
        let stuck = self.stuck.join("; ");
        match result {
            Ok(_) => Err(anyhow!("{stuck}")),
            Err(e) => Err(anyhow!("{e:#}; also, {stuck}")),
        }
    }
}

/// A numeric setting of each of `nodes` (`CONFIG GET name`, sent to all at once),
/// `None` where it cannot be read.
pub fn config_u64_many(b: &mut dyn Backend, nodes: &[Addr], name: &str) -> Vec<Option<u64>> {
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
