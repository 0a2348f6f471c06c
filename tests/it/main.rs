//! Integration tests against real redis-server processes (see `support`).

mod errors;
mod lab;
mod ops;
mod script;
mod support;
