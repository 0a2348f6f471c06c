//! The command line: the clap schema ([`args`]), resolved once into settings
//! ([`settings`], the password settled by [`password`]) that also build every
//! backend, running one command ([`dispatch`]), the JSON documents commands print
//! ([`json`]) and the `lab` subcommand ([`lab`]). Only this module sees clap types.

pub mod args;
pub mod dispatch;
pub mod json;
pub mod lab;
pub mod password;
pub mod settings;

pub use args::Cli;
pub use dispatch::run;
