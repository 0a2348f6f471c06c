//! The command line: the clap schema ([`args`]), the global options resolved
//! ([`settings`]), running one command ([`dispatch`]), the JSON documents commands
//! print ([`json`]) and the `lab` subcommand ([`lab`]).

pub mod args;
pub mod dispatch;
pub mod json;
pub mod lab;
pub mod settings;

pub use args::{Cli, Global, ScriptOpts};
pub use dispatch::run;
