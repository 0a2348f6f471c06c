//! redis-trib: Redis Cluster management as a library, a command line and a Rhai
//! scripting shell.
//!
//! Layers, bottom up (each names only its own layer or those below; the `layers`
//! test checks it): pure ([`addr`], [`slots`], [`topology`], [`error`],
//! [`commands`], [`interrupt`], [`balance`] plans), connections ([`conn`] and its
//! pool), engines ([`engine`]: slot migration key by key or atomic, import,
//! backup; [`lease`]; [`keyspace`], the cluster as one keyspace), [`backend`] (the
//! cluster primitives, live or simulated), [`ops`] (the operations: preconditions
//! first, then changes), and the interface ([`script`], [`render`], [`lab`]).

pub mod addr;
pub mod backend;
pub mod balance;
pub mod commands;
pub mod conn;
pub mod engine;
pub mod error;
pub mod interrupt;
pub mod keyspace;
pub mod lab;
pub mod labcerts;
pub mod lease;
pub mod ops;
pub mod render;
pub mod script;
pub mod slots;
pub mod topology;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod layers;
