//! Integration tests against real redis-server processes (see `support`).

mod admin;
mod engine;
mod errors;
mod keyspace;
mod lab;
mod ops;
mod repl;
mod script;
mod scripts;
mod support;
