//! The primitives every cluster operation is written against. [`live::Live`] carries
//! them out on real nodes; a simulated backend (dry runs, offline topologies) applies
//! them to an in-memory copy instead. Operations (see `ops`) check preconditions on
//! views read through a backend, then call its mutating primitives in order.

pub mod live;
pub mod read;
pub mod sim;

use crate::addr::Addr;
use crate::engine::key_copy::ImportOpts;
use crate::engine::rdb::Written;
use crate::engine::Job;
pub use crate::engine::{Event, KeyProgress, MoveProgress, MoveStats};
use crate::topology::{Node, View, ZoneBook};
use anyhow::Result;
use std::path::Path;
use std::time::Duration;

/// A slot state change sent with `CLUSTER SETSLOT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// `SETSLOT s NODE id`.
    Node(String),
    /// `SETSLOT s STABLE`.
    Stable,
}

/// One per-node primitive, run in bulk by [`Backend::apply_many`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeCmd {
    /// [`Backend::add_slots`]: these slots, this many per command.
    AddSlots(Vec<u16>, usize),
    /// [`Backend::set_config_epoch`].
    SetConfigEpoch(u64),
    /// [`Backend::meet`] with this other node.
    Meet(Addr),
    /// [`Backend::replicate`]: the master's node id.
    Replicate(String),
    /// [`Backend::set_config`]: the setting's name and value.
    SetConfig(String, String),
}

/// The cluster primitives. Reads return what nodes say; mutations act on one node
/// (or, for `move_slots`, on the pair and the other masters) and report via events.
pub trait Backend {
    /// Reads one node's view (`CLUSTER INFO`, `CLUSTER NODES`, `DBSIZE`). Errors name
    /// the node: unreachable, authentication, not cluster-enabled.
    fn view(&mut self, addr: &Addr) -> Result<View>;
    /// Reads the views of many nodes, one result per address in order (a node that
    /// cannot be read is an error of its own). Live nodes are read concurrently on a
    /// bounded number of threads; the default reads them one after the other.
    fn views(&mut self, addrs: &[Addr]) -> Vec<Result<View>> {
        addrs.iter().map(|a| self.view(a)).collect()
    }
    /// [`Backend::views`] where only each node's own line is needed: a view's
    /// `nodes` may then hold that line alone (live nodes: the other lines are not
    /// parsed). The default reads whole views.
    fn own_views(&mut self, addrs: &[Addr]) -> Vec<Result<View>> {
        self.views(addrs)
    }
    /// The bound on every wait.
    fn timeout(&self) -> Duration;
    /// Pause between two polls of a condition (zero where nothing can change by
    /// waiting, as in a simulation).
    fn poll_interval(&self) -> Duration;
    /// Reports progress to whoever is watching.
    fn emit(&mut self, event: Event);
    /// What this backend knows of nodes' zones (the `--zones` file, what servers
    /// said): one book per backend, nothing process-wide.
    fn zone_book(&mut self) -> &mut ZoneBook;
    /// Whether this backend takes operation leases (live nodes do; a simulation
    /// changes nothing, so dry runs take none).
    fn takes_leases(&self) -> bool {
        false
    }
    /// Takes the lease for `op` on the cluster whose live nodes are `nodes` (see
    /// [`crate::lease`]), unless this backend already holds one covering them (a
    /// script's operations are one workflow). Another holder makes it fail naming the
    /// holder, or wait as long as the backend was told to.
    fn lease(&mut self, _op: &str, _nodes: &[Addr]) -> Result<()> {
        Ok(())
    }
    /// Releases every lease this backend holds (the shell does after each statement).
    fn release_leases(&mut self) {}
    /// What `addr` reports with its node table shared, for backends that keep one
    /// table per cluster (a simulation): reading every node of a cluster then costs
    /// one table, not one copy of everyone per node. `None` (live nodes): read
    /// [`Backend::view`]s. Both say the same thing.
    fn shared_view(&mut self, _addr: &Addr) -> Option<Result<crate::topology::SharedView>> {
        None
    }
    /// `CLUSTER ADDSLOTS`, `chunk` slots per command.
    fn add_slots(&mut self, node: &Addr, slots: &[u16], chunk: usize) -> Result<()>;
    /// `CLUSTER SET-CONFIG-EPOCH`.
    fn set_config_epoch(&mut self, node: &Addr, epoch: u64) -> Result<()>;
    /// `CLUSTER MEET` sent to `node` about `other`.
    fn meet(&mut self, node: &Addr, other: &Addr) -> Result<()>;
    /// Runs each `(node, command)` and returns one result per entry, in order. One
    /// node's commands run in the order given; live nodes run theirs concurrently
    /// (each node's as one pipeline, on a bounded number of threads), so everything
    /// is sent even when one fails. The default runs them one after the other
    /// through the single primitives (a simulation records them so).
    fn apply_many(&mut self, cmds: &[(Addr, NodeCmd)]) -> Vec<Result<()>> {
        cmds.iter()
            .map(|(node, cmd)| self.apply_one(node, cmd))
            .collect()
    }
    /// Runs one [`NodeCmd`] on `node` through its single primitive.
    fn apply_one(&mut self, node: &Addr, cmd: &NodeCmd) -> Result<()> {
        match cmd {
            NodeCmd::AddSlots(slots, chunk) => self.add_slots(node, slots, *chunk),
            NodeCmd::SetConfigEpoch(epoch) => self.set_config_epoch(node, *epoch),
            NodeCmd::Meet(other) => self.meet(node, other),
            NodeCmd::Replicate(master_id) => self.replicate(node, master_id),
            NodeCmd::SetConfig(name, value) => self.set_config(node, name, value),
        }
    }
    /// Moves `slots` and their keys from `src` to `dst`; `masters` are every master
    /// that must learn the new owners.
    fn move_slots(
        &mut self,
        src: &Node,
        dst: &Node,
        slots: &[u16],
        masters: &[Node],
    ) -> Result<MoveStats>;
    /// Runs several moves, in parallel where the backend can (never two from one
    /// source); the default runs them one after the other.
    fn move_many(&mut self, jobs: &[Job], masters: &[Node]) -> Result<MoveStats> {
        let mut total = MoveStats::default();
        for j in jobs {
            let s = self.move_slots(&j.src, &j.dst, &j.slots, masters)?;
            total.slots += s.slots;
            total.keys += s.keys;
        }
        Ok(total)
    }
    /// Moves the keys `node` holds in `slot` to `dst` (which must accept them), leaving
    /// slot states alone. Used to repair open slots.
    fn move_keys(&mut self, src: &Node, dst: &Node, slot: u16) -> Result<u64>;
    /// `CLUSTER SETSLOT` for many slots on one node.
    fn set_slots(&mut self, node: &Addr, slots: &[u16], state: &SlotState) -> Result<()>;
    /// `CLUSTER BUMPEPOCH`.
    fn bump_epoch(&mut self, node: &Addr) -> Result<()>;
    /// `CLUSTER REPLICATE master_id` sent to `replica`.
    fn replicate(&mut self, replica: &Addr, master_id: &str) -> Result<()>;
    /// `CLUSTER FORGET id` sent to `node`.
    fn forget(&mut self, node: &Addr, id: &str) -> Result<()>;
    /// `CLUSTER RESET HARD`: the node leaves with a new id and epoch 0.
    fn reset(&mut self, node: &Addr) -> Result<()>;
    /// `CONFIG SET name value` on one node.
    fn set_config(&mut self, node: &Addr, name: &str, value: &str) -> Result<()>;
    /// Whether a replica reports `master_link_status:up` (always true in a simulation).
    fn replica_link_up(&mut self, replica: &Addr) -> Result<bool>;
    /// [`Backend::replica_link_up`] for many replicas, one result per replica in
    /// order (live nodes are asked concurrently; the default asks one after the
    /// other).
    fn replica_links_up(&mut self, replicas: &[Addr]) -> Vec<Result<bool>> {
        replicas.iter().map(|r| self.replica_link_up(r)).collect()
    }
    /// Moves (or copies) every key of database 0 of the standalone Redis `source`
    /// into the masters `owners` names per slot; `expected` is the source's key count
    /// (for progress and plans). Returns how many keys went over.
    fn import_keys(
        &mut self,
        source: &Addr,
        owners: &[Addr],
        opts: &ImportOpts,
        expected: u64,
    ) -> Result<u64>;
    /// Fetches the RDB of `node` into the file `path`.
    fn save_rdb(&mut self, node: &Addr, path: &Path) -> Result<Written>;
    /// Writes a file (a backup's manifest or node configuration).
    fn write_file(&mut self, path: &Path, content: &[u8]) -> Result<Written>;
    /// Runs a raw command on one node. A simulation passes read-only commands to
    /// its source and refuses the rest.
    fn execute(&mut self, node: &Addr, args: &[Vec<u8>]) -> Result<redis::Value>;
    /// Runs one raw command on each of `nodes`, one result per node in order
    /// (concurrently on live nodes, on a bounded number of threads; the default runs
    /// [`Backend::execute`] one node after the other).
    fn execute_many(&mut self, nodes: &[Addr], args: &[Vec<u8>]) -> Vec<Result<redis::Value>> {
        nodes.iter().map(|n| self.execute(n, args)).collect()
    }
    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` sent to `replica`: it starts taking over its
    /// master's slots (the caller waits for the cluster to agree).
    fn failover(&mut self, replica: &Addr, mode: FailoverMode) -> Result<()>;
    /// Keys `node` holds in each of `slots`, in the order of `slots`: `CLUSTER
    /// SLOT-STATS` where the server has it (Valkey 8+, Redis 8.2+), `CLUSTER
    /// COUNTKEYSINSLOT` pipelined otherwise. A simulation answers from its source, or
    /// offline spreads the node's keys evenly over its slots.
    fn slot_key_counts(&mut self, node: &Addr, slots: &[u16]) -> Result<Vec<u64>>;
}

/// How a replica takes over its master (`CLUSTER FAILOVER`'s option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailoverMode {
    /// Coordinated with the live master: no write is lost.
    #[default]
    Default,
    /// Without the master's agreement (it is down), still elected by the masters.
    Force,
    /// Without any election (most masters are down): the replica just takes over.
    Takeover,
}

impl FailoverMode {
    /// The option word sent with `CLUSTER FAILOVER`, if any.
    pub fn word(self) -> Option<&'static str> {
        match self {
            FailoverMode::Default => None,
            FailoverMode::Force => Some("FORCE"),
            FailoverMode::Takeover => Some("TAKEOVER"),
        }
    }
}
