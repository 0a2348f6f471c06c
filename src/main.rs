//! The `redis-trib` binary: parse arguments, run, print the error, exit.

mod cli;
mod output;
mod repl;
mod replies;
mod scripting;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let no_color = cli.global.no_color;
    // First Ctrl-C: stop at the next safe point (between slot batches); second: now.
    let _ = ctrlc::set_handler(|| {
        if redis_trib::interrupt::requested() {
            std::process::exit(130);
        }
        redis_trib::interrupt::request();
    });
    if let Err(e) = cli::run(cli) {
        output::Output::error(no_color, &format!("{e:#}"));
        std::process::exit(1);
    }
}
