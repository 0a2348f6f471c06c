//! Integration tests against real redis-server processes (see `support`).

mod admin;
mod errors;
mod lab;
mod ops;
mod script;
mod support;
