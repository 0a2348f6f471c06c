//! The engines: what carries out one kind of bulk work on the nodes themselves,
//! below the backend. [`keys`] moves slots key by key (`SETSLOT` + `MIGRATE`),
//! [`atomic`] with Valkey 9's `CLUSTER MIGRATESLOTS` (and chooses the engine per
//! move), [`key_copy`] copies a standalone server's keys into a cluster (import),
//! [`rdb`] fetches each master's RDB file (backup). Engines talk to connections
//! ([`crate::conn`]) only; they report through the [`Event`]s defined here, which
//! the backend passes up to whoever watches.

pub mod atomic;
pub mod epochs;
pub mod key_copy;
pub mod keys;
pub mod rdb;

use crate::topology::Node;

/// One source → destination move.
#[derive(Clone, Debug)]
pub struct Job {
    /// The giving master.
    pub src: Node,
    /// The receiving master.
    pub dst: Node,
    /// The slots to move.
    pub slots: Vec<u16>,
}

/// Something an operation wants the operator to know while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A step that changes the cluster is about to happen.
    Step(String),
    /// Slot-migration progress of one source → destination move.
    Progress(MoveProgress),
    /// Something odd that did not stop the operation.
    Warning(String),
    /// Progress of a job counted in keys (an import).
    Keys(KeyProgress),
}

/// Progress of a job counted in keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProgress {
    /// What is being done (`import from 127.0.0.1:6379`).
    pub label: String,
    /// Keys done so far.
    pub done: u64,
    /// Keys expected in all (an estimate: keys may come and go meanwhile).
    pub total: u64,
    /// Whether the job is over.
    pub finished: bool,
}

/// Progress of moving slots from one node to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveProgress {
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Slots finished so far.
    pub slots_done: usize,
    /// Slots in this move.
    pub slots_total: usize,
    /// Keys moved so far.
    pub keys_moved: u64,
}

/// What a finished slot move did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MoveStats {
    /// Slots now owned by the destination.
    pub slots: usize,
    /// Keys moved.
    pub keys: u64,
}
