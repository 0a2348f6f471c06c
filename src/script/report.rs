//! Script errors as operators read them: `file:line:col: message`, the source line
//! with a caret under the position, and the call chain when the error comes from
//! inside a (module) function.

use rhai::EvalAltResult;

/// Formats `err` raised while running `text` (named `name`).
pub fn report(err: &EvalAltResult, name: &str, text: &str) -> String {
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
        EvalAltResult::ErrorTerminated(_, _) => "interrupted (Ctrl-C)".into(),
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
