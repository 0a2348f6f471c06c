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
    let mut message = message(inner);
    if let Some(hint) = did_you_mean(inner, text) {
        message.push_str(&hint);
    }
    let mut pos = err.position();
    if pos.is_none() {
        // Rhai raises some errors (a data race on a call's argument) without a
        // position: find the call in the text.
        if let Some((found, note)) = locate(inner, text) {
            pos = found;
            message.push_str(&note);
        }
    }
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

/// Function names scripts can call besides their own (the API, recorded as the
/// engine registers it, and Rhai's common built-ins), for "did you mean".
static KNOWN_FUNCTIONS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Records the API's function names (the first engine's registration does).
pub fn know_functions(names: impl IntoIterator<Item = String>) {
    let mut all: Vec<String> = names.into_iter().collect();
    all.extend(
        [
            "print",
            "debug",
            "type_of",
            "is_def_var",
            "is_def_fn",
            "len",
            "push",
            "filter",
            "map",
            "reduce",
            "contains",
            "keys",
            "values",
            "sort",
            "reverse",
            "split",
            "trim",
            "to_string",
            "to_int",
            "to_float",
            "parse_int",
            "parse_float",
            "sub_string",
        ]
        .map(String::from),
    );
    all.sort();
    all.dedup();
    let _ = KNOWN_FUNCTIONS.set(all);
}

/// `" (did you mean list_nodes?)"` for an unknown function (among the API, built-ins
/// and the functions `text` defines) or an unknown node field.
fn did_you_mean(err: &EvalAltResult, text: &str) -> Option<String> {
    let (wrong, candidates): (String, Vec<String>) = match err {
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            let name = sig.split([' ', '(']).next().unwrap_or(sig).to_string();
            if super::resolver::is_closure_name(&name) || name.contains("::") {
                return None;
            }
            let mut c: Vec<String> = KNOWN_FUNCTIONS.get().cloned().unwrap_or_default();
            c.extend(defined_functions(text));
            (name, c)
        }
        EvalAltResult::ErrorDotExpr(msg, _) if msg.contains("for type 'Node'") => {
            let name = msg.split('\'').nth(1)?.to_string();
            let c = super::NODE_FIELDS.iter().map(|f| f.to_string()).collect();
            (name, c)
        }
        _ => return None,
    };
    suggestion(&wrong, &candidates)
}

/// `" (did you mean NAME?)"` when `candidates` hold names close to `wrong`.
pub(super) fn suggestion(wrong: &str, candidates: &[String]) -> Option<String> {
    let close = closest(wrong, candidates);
    match close.as_slice() {
        [] => None,
        [one] => Some(format!(" (did you mean {one}?)")),
        many => Some(format!(" (did you mean one of {}?)", many.join(", "))),
    }
}

/// Names `fn NAME(` defines in `text`.
fn defined_functions(text: &str) -> Vec<String> {
    text.split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Up to three candidates within a small edit distance of `wrong` (closest first).
fn closest(wrong: &str, candidates: &[String]) -> Vec<String> {
    let limit = (wrong.chars().count() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter(|c| c.as_str() != wrong)
        .map(|c| (distance(wrong, c), c))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance (case-insensitive).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Where an error Rhai raised without a position happened, found in `text` by the
/// function it names (`Data race detected on argument #1 of function 'filter'`),
/// and a note for the message (a hint, and which call when there are several).
fn locate(err: &EvalAltResult, text: &str) -> Option<(Position, String)> {
    let EvalAltResult::ErrorDataRace(what, _) = err else {
        return None;
    };
    let name = what.split('\'').nth(1).filter(|n| !n.is_empty())?;
    let calls = calls_of(text, name);
    let &(line, col) = calls.first()?;
    let mut note = format!(
        " (a closure given to {name} uses a variable that is also an argument of the call, \
         e.g. the array it is called on: work on a copy, `let copy = a;`)"
    );
    if calls.len() > 1 {
        note.push_str(&format!(
            "; the first of {} calls to {name} is shown",
            calls.len()
        ));
    }
    let pos = Position::new(u16::try_from(line).ok()?, u16::try_from(col).ok()?);
    Some((pos, note))
}

/// (line, column) of each call of `name` in `text`: `name(` or `.name(`, not part
/// of a longer identifier, outside `//` comments.
fn calls_of(text: &str, name: &str) -> Vec<(usize, usize)> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (l, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices(name) {
            let before = code[..i].chars().next_back();
            let after = code[i + name.len()..].trim_start();
            if before.is_some_and(ident) || !after.starts_with('(') {
                continue;
            }
            found.push((l + 1, code[..i].chars().count() + 1));
        }
    }
    found
}

fn at(pos: &rhai::Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        _ => "?".into(),
    }
}
