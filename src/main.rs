//! The `redis-trib` binary: parse arguments, run, print the error, exit.

mod cli;
mod output;
mod repl;
mod replies;
mod scripting;

use clap::Parser;

/// Counts the heap, so the script sandbox can bound a script's memory
/// (`--max-memory`). The library leaves the choice of allocator to the program.
#[global_allocator]
static HEAP: redis_trib::script::memory::Counting = redis_trib::script::memory::Counting;

/// First Ctrl-C (or SIGTERM): stop at the next safe point (between slot batches,
/// statements, polls); second: exit now with 130.
///
/// The signals are blocked in every thread (threads inherit the mask of the main
/// thread, which blocks them before any other starts) and taken by one thread with
/// `sigwait`. So no other thread's system call is ever interrupted: a read waiting on
/// a node never fails with "Interrupted system call (os error 4)" half-way through a
/// reply, which a handler running on an arbitrary thread would cause.
fn watch_interrupts() {
    // SAFETY: plain libc calls on a local, zero-initialised signal set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` lives in this closure; sigwait only writes `sig`.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                return;
            }
            if redis_trib::interrupt::requested() {
                std::process::exit(redis_trib::error::exit::INTERRUPTED);
            }
            redis_trib::interrupt::request();
        });
    if spawned.is_err() {
        // No watcher: let the signals act as they would (end the process).
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

fn main() {
    let cli = cli::Cli::parse();
    let no_color = cli.global.no_color;
    watch_interrupts();
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
