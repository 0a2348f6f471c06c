//! Integration tests against real redis-server processes (see `support`).

mod admin;
mod atomic;
mod data;
mod engine;
mod errors;
mod keyspace;
mod lab;
mod lease;
mod ops;
mod recovery;
mod repl;
mod sandbox;
mod scale;
mod script;
mod scripts;
mod servers;
mod settings;
mod support;
mod tls;
mod versions;
mod workflows;
mod zones;
