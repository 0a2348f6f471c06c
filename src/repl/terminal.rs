//! The shell on a terminal: the line editor (rustyline) with its helper (completion,
//! hints, continuation lines, validation), the history file, the prompt loop.

use super::complete::{complete, hint, Names, ReplHint};
use super::input::{check, Check};
use super::session::{Flow, Session};
use super::{history, CONTINUATION, PAD, TYPED};
use crate::cli::settings::Settings;
use crate::output::Output;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::error::{kind_of, Kind};
use rhai::Engine;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, KeyCode, KeyEvent, Modifiers, RepeatCount,
};
use std::borrow::Cow;
use std::sync::Arc;

/// Runs the shell on the terminal until `.quit`, Ctrl-D or `exit(n)`.
pub(super) fn interactive(
    mut session: Session,
    node: Option<&Addr>,
    s: &Settings,
    out: &Output,
) -> Result<()> {
    let config = Config::builder()
        .max_history_size(1000)?
        .history_ignore_dups(true)?
        .history_ignore_space(true)
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .build();
    let mut rl: Editor<ReplHelper, FileHistory> = Editor::with_config(config)?;
    let parser = Arc::new(parser());
    rl.set_helper(Some(ReplHelper {
        names: session.names(),
        parser: parser.clone(),
        color: !s.no_color,
    }));
    rl.bind_sequence(
        KeyEvent(KeyCode::Enter, Modifiers::NONE),
        EventHandler::Conditional(Box::new(ContinueOpen { parser })),
    );
    let history = history::history_path();
    if let Some(path) = &history {
        if path.exists() {
            if let Err(e) = rl.load_history(path) {
                out.note(&format!("cannot read the history {}: {e}", path.display()));
            }
        }
    }
    out.note("redis-trib shell: Rhai with every cluster function. help() lists them, .help the shell commands; Tab completes, Ctrl-D leaves.");
    if let Some(n) = node {
        out.note(&format!("cluster = \"{n}\""));
    }
    let mut history_failed = false;
    loop {
        redis_trib::interrupt::clear();
        let prompt = if session.engine.is_dry_run() {
            "redis-trib[dry]> "
        } else {
            "redis-trib> "
        };
        let input = match rl.readline(prompt) {
            Ok(input) => input,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if input.trim().is_empty() {
            continue;
        }
        // Inputs that carry a secret never reach the history file.
        let keep = !history::carries_secret(&input);
        if keep {
            let _ = rl.add_history_entry(input.as_str());
        }
        if let Some(path) = history.as_ref().filter(|_| keep) {
            if let Err(e) = rl.append_history(path) {
                if !history_failed {
                    out.note(&format!("cannot write the history {}: {e}", path.display()));
                    history_failed = true;
                }
            }
        }
        redis_trib::interrupt::clear();
        let flow = session.run_text(TYPED, &input, s, out);
        // A typed line is one workflow: its lease is not kept while the shell waits.
        session.engine.release_leases();
        if let Some(h) = rl.helper_mut() {
            h.names = session.names();
        }
        match flow {
            Ok(Flow::Quit) => break,
            Ok(Flow::Go) => {}
            // exit(n) leaves the shell with that code.
            Err(e) if matches!(kind_of(&e), Some(Kind::ScriptExit(_))) => return Err(e),
            Err(e) => Output::error(s.no_color, &format!("{e:#}")),
        }
    }
    Ok(())
}

/// The line editor's helper: completion, hints, continuation lines, validation.
struct ReplHelper {
    names: Names,
    parser: Arc<Engine>,
    color: bool,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(complete(&self.names, line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = ReplHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<ReplHint> {
        hint(&self.names, line, pos)
    }
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        let pad = format!("\n{PAD}");
        if !line.contains(&pad) {
            return Cow::Borrowed(line);
        }
        let shown = if self.color {
            format!("\n\x1b[2m{}\x1b[0m ", CONTINUATION.trim_end())
        } else {
            format!("\n{CONTINUATION}")
        };
        Cow::Owned(line.replace(&pad, &shown))
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, line: &str, _pos: usize, _kind: CmdKind) -> bool {
        line.contains('\n')
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(match check(&self.parser, ctx.input()) {
            Check::Incomplete => ValidationResult::Incomplete,
            Check::Complete | Check::Invalid => ValidationResult::Valid(None),
        })
    }
}

impl Helper for ReplHelper {}

/// Enter on an open statement starts a continuation line (shown as `...> `).
struct ContinueOpen {
    parser: Arc<Engine>,
}

impl ConditionalEventHandler for ContinueOpen {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        (check(&self.parser, ctx.line()) == Check::Incomplete)
            .then(|| Cmd::Insert(1, format!("\n{PAD}")))
    }
}

/// An engine that only parses (for the editor, which may not hold the session's).
fn parser() -> Engine {
    let mut e = Engine::new_raw();
    e.set_max_expr_depths(128, 64);
    e
}
