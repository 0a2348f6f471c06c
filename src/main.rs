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
        let code = redis_trib::error::exit_code(&e);
        // A script's own exit(n) prints nothing more.
        if !matches!(
            redis_trib::error::kind_of(&e),
            Some(redis_trib::error::Kind::ScriptExit(_))
        ) {
            output::Output::error(no_color, &format!("{e:#}"));
        }
        std::process::exit(code);
    }
}
