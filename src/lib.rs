//! redis-trib: Redis Cluster management as a library, a command line and a Rhai
//! scripting shell.
//!
//! Layers, bottom up: [`addr`] and [`slots`] (parsing and slot math), [`topology`]
//! (what nodes report, pure checks), [`conn`] (one node), [`backend`] (the cluster
//! primitives, live or simulated), [`migrate`] (the slot-migration engine),
//! [`balance`] (plans), [`keyspace`] (the cluster as one keyspace: routed key
//! commands), [`ops`] (the operations: preconditions first, then changes),
//! [`lab`] (local test clusters) and [`render`] (human output).

pub mod addr;
pub mod backend;
pub mod backup;
pub mod balance;
pub mod conn;
pub mod error;
pub mod import;
pub mod interrupt;
pub mod keyspace;
pub mod lab;
pub mod labcerts;
pub mod lease;
pub mod migrate;
pub mod migrate_atomic;
pub mod ops;
pub mod render;
pub mod script;
pub mod slots;
pub mod topology;
pub mod wait;
