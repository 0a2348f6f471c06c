//! Script errors as operators read them: `file:line:col: message`, the source line
//! with a caret under the position, and the call chain when the error comes from
//! inside a (module) function.

use crate::error::Kind;
use rhai::{Dynamic, EvalAltResult, Position};

/// How a script ends itself: `exit(n)` or `fail(msg)`. Raised as a termination, so
/// neither `try`/`catch` nor a function boundary stops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `exit(n)`: exit code `n`, nothing printed.
    Exit(i32),
    /// `fail(msg)`: one line, exit code 1.
    Fail(String),
}

impl Ending {
    /// The error that ends the script this way.
    pub fn raise(self, pos: Position) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorTerminated(Dynamic::from(self), pos))
    }
}

/// The kind of a script's own ending (`exit(n)`, `fail(msg)`), found through the
/// call chain; `None` for every other error.
pub fn ending(err: &EvalAltResult) -> Option<Kind> {
    let mut inner = err;
    loop {
        match inner {
            EvalAltResult::ErrorInFunctionCall(_, _, next, _)
            | EvalAltResult::ErrorInModule(_, next, _) => inner = next,
            EvalAltResult::ErrorTerminated(v, _) => {
                return v.clone().try_cast::<Ending>().map(|e| match e {
                    Ending::Exit(n) => Kind::ScriptExit(n),
                    Ending::Fail(m) => Kind::ScriptFailed(m),
                })
            }
            _ => return None,
        }
    }
}

/// The error a script run ends with: the script's own ending as its [`Kind`] (the
/// binary exits with its code), else the operator report of [`report`].
pub fn to_error(err: &EvalAltResult, name: &str, text: &str) -> anyhow::Error {
    match ending(err) {
        Some(kind) => crate::error::error(kind),
        None => anyhow::Error::msg(report(err, name, text)),
    }
}

/// Formats `err` raised while running `text` (named `name`); `fail(msg)` is its
/// message alone, on one line.
pub fn report(err: &EvalAltResult, name: &str, text: &str) -> String {
    if let Some(kind) = ending(err) {
        return kind.to_string();
    }
    let mut frames = Vec::new();
    let mut inner = err;
    loop {
        match inner {
            EvalAltResult::ErrorInFunctionCall(f, src, next, pos) => {
                let module = if src.is_empty() {
                    String::new()
                } else {
                    format!(" (module {src})")
                };
                frames.push(format!("in function {f}{module}, called at {}", at(pos)));
                inner = next;
            }
            EvalAltResult::ErrorInModule(m, next, pos) => {
                frames.push(format!("in module {m}, imported at {}", at(pos)));
                inner = next;
            }
            _ => break,
        }
    }
    let message = message(inner);
    let pos = err.position();
    let mut out = match (pos.line(), pos.position()) {
        (Some(line), Some(col)) => format!("{name}:{line}:{col}: {message}"),
        (Some(line), None) => format!("{name}:{line}: {message}"),
        _ => format!("{name}: {message}"),
    };
    // A sandbox limit (memory, time) or Ctrl-C stops wherever the script happened to
    // be: the line says where, an excerpt would suggest that line is at fault.
    if matches!(inner, EvalAltResult::ErrorTerminated(..)) {
        return out;
    }
    if let Some(line) = pos.line() {
        if let Some(src) = text.lines().nth(line - 1) {
            out.push_str(&format!("\n  {line:>4} | {src}"));
            if let Some(col) = pos.position() {
                out.push_str(&format!(
                    "\n       | {}^",
                    " ".repeat(col.saturating_sub(1))
                ));
            }
        }
    }
    for f in frames {
        out.push_str(&format!("\n  {f}"));
    }
    out
}

/// The error's own message, without Rhai's trailing position.
pub fn message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        EvalAltResult::ErrorTooManyOperations(_) => {
            "the script was stopped: too many operations (a runaway loop?); raise --max-operations if it really needs more".into()
        }
        EvalAltResult::ErrorTerminated(v, _) => match ending(err) {
            Some(kind) => kind.to_string(),
            None if v.is_string() => v.to_string(),
            None => "interrupted (Ctrl-C)".into(),
        },
        other => {
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    }
}

fn at(pos: &rhai::Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        _ => "?".into(),
    }
}
