//! Integration tests against real redis-server processes (see `support`).

mod admin;
mod engine;
mod errors;
mod lab;
mod ops;
mod scripts;
mod script;
mod support;
