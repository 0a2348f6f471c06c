//! The interactive shell: `redis-trib repl [NODE]` (or no command on a terminal).
//!
//! Rhai with every cluster function, where variables, functions and `import`ed modules
//! persist from one input to the next. `cluster` holds NODE when one is given, `ARGS`
//! is empty and `PARAMS` holds the `--set` pairs.
//!
//! On a terminal the line editor (rustyline) keeps a history in
//! `~/.redis_trib_history` (or the file `REDIS_TRIB_HISTORY` names; empty: none),
//! completes function names, keywords, variables, node fields after a `.`, module
//! functions after `alias::` and module names in `import "`; hints show a function's
//! signature once its `(` is typed; an incomplete statement (an open block, call or
//! string) continues on a `...>` line. Ctrl-C cancels the line being typed or stops
//! the statement that runs; Ctrl-D leaves.
//!
//! Input is cut into statements line by line: a line that completes a statement runs
//! (its value is printed unless it is `()`), a line that leaves one open waits for
//! the next. Lines starting with `.` are shell commands: `.help`, `.dry on|off`,
//! `.plan`, `.quit`. A line starting with `>` is a raw Redis command for the cluster
//! `cluster` names (`> SET foo bar`, `> DBSIZE`), routed as `cluster(addr).execute`. `help()` / `help("name")` list the functions from the engine's
//! own record.
//!
//! When stdin is not a terminal the whole text is read and checked first (a syntax
//! error anywhere runs nothing), then run statement by statement the same way, with
//! no prompt and no history; the first error stops it and is the command's error.

use crate::cli::settings::Settings;
use crate::output::Output;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::script::ScriptEngine;
use session::Session;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};

mod complete;
mod help;
mod history;
mod input;
mod raw;
mod session;
mod terminal;

/// Runs the shell: interactive on a terminal, else the piped text as one session.
pub fn run(
    mut engine: ScriptEngine,
    node: Option<Addr>,
    params: BTreeMap<String, String>,
    s: &Settings,
    out: &Output,
) -> Result<()> {
    help::register_help(&mut engine);
    engine.allow_cluster(node.as_slice());
    let mut session = Session::new(engine, node.as_ref(), &params);
    if std::io::stdin().is_terminal() {
        terminal::interactive(session, node.as_ref(), s, out)
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let text = redis_trib::script::strip_shebang(&text);
        redis_trib::interrupt::clear();
        session.run_text(PIPED, &text, s, out)?;
        Ok(())
    }
}

/// The name errors give piped input.
const PIPED: &str = "<stdin>";
/// The name errors give terminal input.
const TYPED: &str = "<repl>";
/// What a continuation line starts with: blanks in the text, shown as `...> `.
const PAD: &str = "     ";
/// How a continuation line is shown (as wide as [`PAD`]).
const CONTINUATION: &str = "...> ";
