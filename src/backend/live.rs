//! The backend that acts on real nodes over the network.

use super::{Backend, Event, FailoverMode, KeyProgress, MoveStats, NodeCmd, SlotState};
use crate::addr::Addr;
use crate::conn::pool::Pool;
use crate::conn::reply::{refusal, Refusal};
use crate::conn::ConnOpts;
use crate::engine::key_copy::ImportOpts;
use crate::engine::keys::{self as migrate, MigrateOpts};
use crate::engine::rdb::Written;
use crate::engine::Job;
use crate::lease::Lease;
use crate::topology::{Node, View, ZoneBook, ZoneFile};
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// How many nodes are read at once when reading many views (the topology, each
/// poll of a wait).
pub const VIEW_THREADS: usize = 24;

/// Receives the events of an operation (the binary prints them; scripts may log them).
pub type EventSink = Box<dyn FnMut(Event) + Send>;

/// Real nodes, reached through a connection pool.
pub struct Live {
    pool: Pool,
    migrate: MigrateOpts,
    sink: Sinks,
    leases: Vec<Lease>,
    lease_wait: Duration,
    zones: ZoneBook,
}

/// Where events go: the sink given at construction, and a tap while one is set.
struct Sinks {
    out: EventSink,
    tap: Option<Sender<Event>>,
}

impl Sinks {
    fn send(&mut self, event: Event) {
        if let Some(tap) = &self.tap {
            let _ = tap.send(event.clone());
        }
        (self.out)(event)
    }
}

impl Live {
    /// A backend with these connection and migration options, reporting to `sink`.
    pub fn new(opts: ConnOpts, migrate: MigrateOpts, sink: EventSink) -> Live {
        Live {
            pool: Pool::new(opts),
            migrate,
            sink: Sinks {
                out: sink,
                tap: None,
            },
            leases: Vec::new(),
            lease_wait: Duration::ZERO,
            zones: ZoneBook::default(),
        }
    }

    /// How long to wait for another operation's lease before giving up
    /// (`--wait-lease`; zero: refuse at once).
    pub fn with_lease_wait(mut self, wait: Duration) -> Live {
        self.lease_wait = wait;
        self
    }

    /// Zones known before any server is asked: the `--zones` file.
    pub fn with_zones(mut self, file: Option<Arc<ZoneFile>>) -> Live {
        self.zones = ZoneBook::with_file(file);
        self
    }

    /// Flags that turn true when a held lease is lost (the engine stops between
    /// batches then).
    fn lease_flags(&self) -> Vec<Arc<AtomicBool>> {
        self.leases.iter().map(Lease::lost_flag).collect()
    }

    /// Also sends every event to `tap` (until set to `None`): how a script hears an
    /// operation's progress while it runs.
    pub fn set_tap(&mut self, tap: Option<Sender<Event>>) {
        self.sink.tap = tap;
    }

    /// A backend that reports nothing, with default migration options.
    pub fn quiet(opts: ConnOpts) -> Live {
        Live::new(opts, MigrateOpts::default(), Box::new(|_| {}))
    }

    /// How this backend connects to nodes.
    pub fn conn_opts(&self) -> &ConnOpts {
        self.pool.opts()
    }

    /// The connection pool (for raw commands).
    pub fn pool(&mut self) -> &mut Pool {
        &mut self.pool
    }

    /// The engine a move from `src` to `dst` would use (`atomic` or `keys`), asking
    /// both nodes whether they support atomic migration (dry runs show it per move).
    /// Fails as the move would with `--engine atomic` on a node without it.
    pub fn engine_for(&mut self, src: &Node, dst: &Node) -> Result<&'static str> {
        let job = Job {
            src: src.clone(),
            dst: dst.clone(),
            slots: Vec::new(),
        };
        Ok(
            match crate::engine::atomic::choose(&mut self.pool, &job, self.migrate.engine)? {
                crate::engine::atomic::Chosen::Atomic => "atomic",
                crate::engine::atomic::Chosen::Keys => "keys",
            },
        )
    }

    fn simple(&mut self, node: &Addr, cmd: redis::Cmd) -> Result<()> {
        self.pool.with(node, |c| c.run(&cmd).map(|_| ()))
    }
}

impl Backend for Live {
    fn view(&mut self, addr: &Addr) -> Result<View> {
        self.pool.with(addr, |c| c.view())
    }

    fn zone_book(&mut self) -> &mut ZoneBook {
        &mut self.zones
    }

    fn views(&mut self, addrs: &[Addr]) -> Vec<Result<View>> {
        self.pool.each(addrs, VIEW_THREADS, |c| c.view())
    }

    fn own_views(&mut self, addrs: &[Addr]) -> Vec<Result<View>> {
        self.pool.each(addrs, VIEW_THREADS, |c| c.own_view())
    }

    fn timeout(&self) -> Duration {
        self.pool.opts().timeout
    }

    fn poll_interval(&self) -> Duration {
        Duration::from_millis(50)
    }

    fn emit(&mut self, event: Event) {
        self.sink.send(event)
    }

    fn takes_leases(&self) -> bool {
        true
    }

    fn lease(&mut self, op: &str, nodes: &[Addr]) -> Result<()> {
        self.leases.retain(|l| !l.is_lost());
        if self.leases.iter().any(|l| l.covers(nodes)) {
            return Ok(());
        }
        let lease = Lease::acquire(self.pool.opts(), op, nodes, self.lease_wait)?;
        self.leases.push(lease);
        Ok(())
    }

    fn release_leases(&mut self) {
        self.leases.clear();
    }

    fn add_slots(&mut self, node: &Addr, slots: &[u16], chunk: usize) -> Result<()> {
        for part in slots.chunks(chunk.max(1)) {
            let mut cmd = redis::cmd("CLUSTER");
            cmd.arg("ADDSLOTS").arg(part);
            self.simple(node, cmd)?;
        }
        Ok(())
    }

    fn set_config_epoch(&mut self, node: &Addr, epoch: u64) -> Result<()> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SET-CONFIG-EPOCH").arg(epoch);
        self.simple(node, cmd)
    }

    fn meet(&mut self, node: &Addr, other: &Addr) -> Result<()> {
        let ip = other.resolve_ip()?;
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("MEET").arg(ip.to_string()).arg(other.port);
        self.simple(node, cmd)
    }

    fn apply_many(&mut self, cmds: &[(Addr, NodeCmd)]) -> Vec<Result<()>> {
        // Each node's commands (with the index of the entry each serves), in order.
        let mut results: Vec<Option<Result<()>>> = cmds.iter().map(|_| None).collect();
        let mut nodes: Vec<Addr> = Vec::new();
        let mut per_node: HashMap<Addr, Vec<(usize, &'static str, redis::Cmd)>> = HashMap::new();
        for (i, (node, cmd)) in cmds.iter().enumerate() {
            match node_cmds(cmd) {
                Ok(list) => {
                    if !per_node.contains_key(node) {
                        nodes.push(node.clone());
                    }
                    let mine = per_node.entry(node.clone()).or_default();
                    mine.extend(list.into_iter().map(|(name, c)| (i, name, c)));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let replies = self.pool.each(&nodes, VIEW_THREADS, |c| {
            let Some(mine) = per_node.get(c.addr()) else {
                return Ok(Vec::new());
            };
            let mut pipe = redis::pipe();
            for (_, _, cmd) in mine {
                pipe.add_command(cmd.clone());
            }
            c.pipeline(&pipe)
        });
        for (node, reply) in nodes.iter().zip(replies) {
            let Some(mine) = per_node.get(node) else {
                continue;
            };
            match reply {
                Ok(values) => {
                    for ((i, name, _), v) in mine.iter().zip(values) {
                        if let (Some(e), None) = (crate::conn::server_error(&v), &results[*i]) {
                            let reply = format!("{name} failed: {e}");
                            results[*i] =
                                Some(Err(crate::error::error(crate::error::Kind::Server {
                                    node: node.to_string(),
                                    message: format!("{node}: {reply}"),
                                    reply,
                                })));
                        }
                    }
                }
                Err(e) => {
                    // The first of the node's entries carries the error itself.
                    let mut first = Some(e);
                    for (i, _, _) in mine {
                        if results[*i].is_none() {
                            results[*i] = Some(Err(match first.take() {
                                Some(e) => e,
                                None => anyhow::anyhow!(
                                    "{node}: not sent (an earlier command to it failed)"
                                ),
                            }));
                        }
                    }
                }
            }
        }
        results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
    }

    fn move_slots(
        &mut self,
        src: &Node,
        dst: &Node,
        slots: &[u16],
        masters: &[Node],
    ) -> Result<MoveStats> {
        let Live {
            pool,
            migrate,
            sink,
            leases,
            ..
        } = self;
        let job = Job {
            src: src.clone(),
            dst: dst.clone(),
            slots: slots.to_vec(),
        };
        let stop = AtomicBool::new(false);
        let leases = leases.iter().map(Lease::lost_flag).collect::<Vec<_>>();
        let claims = crate::engine::epochs::ClaimOrder::default();
        let guard = migrate::Guard {
            stop: &stop,
            leases: &leases,
            claims: &claims,
        };
        migrate::move_slots(pool, &job, masters, migrate, &mut |e| sink.send(e), &guard)
    }

    fn move_many(&mut self, jobs: &[Job], masters: &[Node]) -> Result<MoveStats> {
        let opts = self.pool.opts().clone();
        let leases = self.lease_flags();
        let sink = &mut self.sink;
        migrate::move_many(&opts, jobs, masters, &self.migrate, &leases, &mut |e| {
            sink.send(e)
        })
    }

    fn move_keys(&mut self, src: &Node, dst: &Node, slot: u16) -> Result<u64> {
        migrate::move_keys(&mut self.pool, src, dst, slot, &self.migrate)
    }

    fn set_slots(&mut self, node: &Addr, slots: &[u16], state: &SlotState) -> Result<()> {
        self.pool.with(node, |c| match state {
            SlotState::Node(id) => migrate::set_slots(c, slots, "NODE", Some(id)),
            SlotState::Stable => migrate::set_slots(c, slots, "STABLE", None),
        })
    }

    fn bump_epoch(&mut self, node: &Addr) -> Result<()> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("BUMPEPOCH");
        self.simple(node, cmd)
    }

    fn replicate(&mut self, replica: &Addr, master_id: &str) -> Result<()> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("REPLICATE").arg(master_id);
        self.simple(replica, cmd)
    }

    fn forget(&mut self, node: &Addr, id: &str) -> Result<()> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("FORGET").arg(id);
        self.simple(node, cmd)
    }

    fn set_config(&mut self, node: &Addr, name: &str, value: &str) -> Result<()> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg(name).arg(value);
        self.simple(node, cmd)
    }

    fn replica_link_up(&mut self, replica: &Addr) -> Result<bool> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("replication");
        let text: String = self.pool.with(replica, |c| c.query(&cmd))?;
        Ok(crate::conn::parse_info(&text)
            .get("master_link_status")
            .map(String::as_str)
            == Some("up"))
    }

    fn replica_links_up(&mut self, replicas: &[Addr]) -> Vec<Result<bool>> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("replication");
        self.pool.each(replicas, VIEW_THREADS, |c| {
            let text: String = c.query(&cmd)?;
            Ok(crate::conn::parse_info(&text)
                .get("master_link_status")
                .map(String::as_str)
                == Some("up"))
        })
    }

    fn import_keys(
        &mut self,
        source: &Addr,
        owners: &[Addr],
        opts: &ImportOpts,
        expected: u64,
    ) -> Result<u64> {
        let label = format!(
            "{} {source}",
            if opts.copy {
                "copy from"
            } else {
                "import from"
            }
        );
        let target = self.pool.opts().clone();
        let sink = &mut self.sink;
        let mut report = |done: u64, finished: bool| {
            sink.send(Event::Keys(KeyProgress {
                label: label.clone(),
                done,
                total: expected.max(done),
                finished,
            }))
        };
        let result =
            crate::engine::key_copy::run(source, owners, opts, &target, &mut |d| report(d, false));
        if let Ok(done) = result {
            report(done, true);
        }
        result
    }

    fn save_rdb(&mut self, node: &Addr, path: &Path) -> Result<Written> {
        crate::engine::rdb::fetch_rdb(node, self.pool.opts(), path)
    }

    fn write_file(&mut self, path: &Path, content: &[u8]) -> Result<Written> {
        crate::engine::rdb::write_file(path, content)
    }

    fn execute(&mut self, node: &Addr, args: &[Vec<u8>]) -> Result<redis::Value> {
        let Some((name, rest)) = args.split_first() else {
            bail!("execute needs a command name");
        };
        let mut cmd = redis::cmd(&String::from_utf8_lossy(name));
        for a in rest {
            cmd.arg(a.as_slice());
        }
        self.pool.with(node, |c| c.run(&cmd))
    }

    fn execute_many(&mut self, nodes: &[Addr], args: &[Vec<u8>]) -> Vec<Result<redis::Value>> {
        let Some((name, rest)) = args.split_first() else {
            return nodes
                .iter()
                .map(|_| Err(anyhow::anyhow!("execute needs a command name")))
                .collect();
        };
        let mut cmd = redis::cmd(&String::from_utf8_lossy(name));
        for a in rest {
            cmd.arg(a.as_slice());
        }
        self.pool.each(nodes, VIEW_THREADS, |c| c.run(&cmd))
    }

    fn reset(&mut self, node: &Addr) -> Result<()> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("RESET").arg("HARD");
        let result = self.simple(node, cmd);
        self.pool.forget(node);
        if let Err(e) = result {
            if refusal(&format!("{e:#}")) == Refusal::HoldsKeys {
                bail!("{node}: refuses to reset while it holds keys");
            }
            return Err(e);
        }
        Ok(())
    }

    fn failover(&mut self, replica: &Addr, mode: FailoverMode) -> Result<()> {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("FAILOVER");
        if let Some(word) = mode.word() {
            cmd.arg(word);
        }
        self.simple(replica, cmd)
    }

    fn slot_key_counts(&mut self, node: &Addr, slots: &[u16]) -> Result<Vec<u64>> {
        let (Some(&lo), Some(&hi)) = (slots.iter().min(), slots.iter().max()) else {
            return Ok(Vec::new());
        };
        let mut stats = redis::cmd("CLUSTER");
        stats.arg("SLOT-STATS").arg("SLOTSRANGE").arg(lo).arg(hi);
        let reply = self.pool.with(node, |c| c.run(&stats));
        if let Ok(redis::Value::Array(items)) = reply {
            let mut counts = std::collections::HashMap::new();
            for item in items {
                if let Some((slot, keys)) = slot_stats_entry(item) {
                    counts.insert(slot, keys);
                }
            }
            return Ok(slots
                .iter()
                .map(|s| counts.get(s).copied().unwrap_or(0))
                .collect());
        }
        // No SLOT-STATS (Redis before 8.2, Valkey 7): one COUNTKEYSINSLOT per slot,
        // pipelined by the thousand.
        let mut counts = Vec::with_capacity(slots.len());
        for chunk in slots.chunks(1024) {
            let mut pipe = redis::pipe();
            for s in chunk {
                pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(*s);
            }
            let replies = self.pool.with(node, |c| c.pipeline(&pipe))?;
            for (s, r) in chunk.iter().zip(replies) {
                match r {
                    redis::Value::Int(n) => counts.push(u64::try_from(n).unwrap_or(0)),
                    other => bail!("{node}: CLUSTER COUNTKEYSINSLOT {s} answered {other:?}"),
                }
            }
        }
        Ok(counts)
    }
}

/// The commands that carry out one [`NodeCmd`], each with its name for errors.
fn node_cmds(cmd: &NodeCmd) -> Result<Vec<(&'static str, redis::Cmd)>> {
    let cluster = |sub: &str| {
        let mut c = redis::cmd("CLUSTER");
        c.arg(sub);
        c
    };
    Ok(match cmd {
        NodeCmd::AddSlots(slots, chunk) => slots
            .chunks((*chunk).max(1))
            .map(|part| {
                let mut c = cluster("ADDSLOTS");
                c.arg(part);
                ("CLUSTER ADDSLOTS", c)
            })
            .collect(),
        NodeCmd::SetConfigEpoch(epoch) => {
            let mut c = cluster("SET-CONFIG-EPOCH");
            c.arg(*epoch);
            vec![("CLUSTER SET-CONFIG-EPOCH", c)]
        }
        NodeCmd::Meet(other) => {
            let mut c = cluster("MEET");
            c.arg(other.resolve_ip()?.to_string()).arg(other.port);
            vec![("CLUSTER MEET", c)]
        }
        NodeCmd::Replicate(master_id) => {
            let mut c = cluster("REPLICATE");
            c.arg(master_id);
            vec![("CLUSTER REPLICATE", c)]
        }
        NodeCmd::SetConfig(name, value) => {
            let mut c = redis::cmd("CONFIG");
            c.arg("SET").arg(name).arg(value);
            vec![("CONFIG SET", c)]
        }
    })
}

/// One `CLUSTER SLOT-STATS` entry: `[slot, [key-count, n, ...]]` (a map in RESP3).
fn slot_stats_entry(item: redis::Value) -> Option<(u16, u64)> {
    use redis::Value as V;
    let V::Array(pair) = item else { return None };
    let mut pair = pair.into_iter();
    let slot = match pair.next()? {
        V::Int(s) => u16::try_from(s).ok()?,
        _ => return None,
    };
    let fields: Vec<(V, V)> = match pair.next()? {
        V::Map(m) => m,
        V::Array(flat) => {
            let mut it = flat.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        _ => return None,
    };
    fields.into_iter().find_map(|(k, v)| {
        let name = match k {
            V::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            V::SimpleString(s) => s,
            _ => return None,
        };
        match (name.as_str(), v) {
            ("key-count", V::Int(n)) => Some((slot, u64::try_from(n).ok()?)),
            _ => None,
        }
    })
}
