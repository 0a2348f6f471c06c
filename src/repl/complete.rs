//! The line editor's helper: completion, hints, highlighting of the prompt, and the
//! validator that asks for more lines while a statement is unfinished.

use super::input::*;
use super::*;

// ---------------------------------------------------------------------------------
// Completion and hints.

/// What completion and hints offer: the engine's functions, the session's variables,
/// functions and modules, and the modules `import` can find.
#[derive(Clone, Debug, Default)]
pub(super) struct Names {
    /// `(name, signature)` of every function: API, `help`, script-defined, and
    /// `alias::name` for imported modules. Signatures are `name(params) -> type`.
    pub(super) functions: Vec<(String, String)>,
    /// Variable names in scope.
    pub(super) vars: Vec<String>,
    /// Aliases of imported modules.
    pub(super) aliases: Vec<String>,
    /// Module names `import` can load.
    pub(super) modules: Vec<String>,
}

impl Names {
    /// From an engine, a scope, the functions defined so far and imported modules.
    pub(super) fn new(
        engine: &ScriptEngine,
        scope: &Scope,
        functions: &AST,
        modules: &[(String, Shared<Module>)],
    ) -> Names {
        let mut fns: Vec<(String, String)> = engine
            .docs()
            .iter()
            .map(|d| (d.name.clone(), d.signature.clone()))
            .collect();
        fns.push(("help".into(), "help() -> ()".into()));
        fns.push(("help".into(), "help(name: String) -> ()".into()));
        // Closures are functions named `anon$…`: nothing to offer.
        for f in functions
            .iter_functions()
            .filter(|f| !is_closure_name(f.name))
        {
            fns.push((
                f.name.to_string(),
                format!("{}({})", f.name, f.params.join(", ")),
            ));
        }
        for (alias, m) in modules {
            for sig in m.gen_fn_signatures_with_mapper(|s| s.into()) {
                if let Some((name, _)) = sig.split_once('(').filter(|(n, _)| !is_closure_name(n)) {
                    fns.push((format!("{alias}::{name}"), format!("{alias}::{sig}")));
                }
            }
        }
        let mut vars: Vec<String> = scope.iter_raw().map(|(n, ..)| n.to_string()).collect();
        vars.sort();
        vars.dedup();
        Names {
            functions: fns,
            vars,
            aliases: modules.iter().map(|(a, _)| a.clone()).collect(),
            modules: importable(),
        }
    }

    fn function_names(&self, qualified: bool) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .functions
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.contains("::") == qualified)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Module names `import` finds from here: `*.rhai` in `.` and `REDIS_TRIB_PATH`, then
/// the stdlib.
pub(super) fn importable() -> Vec<String> {
    let mut dirs = vec![PathBuf::from(".")];
    dirs.extend(Resolver::env_paths());
    let mut names: Vec<String> = STDLIB.iter().map(|(n, _)| n.to_string()).collect();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "rhai") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.push(stem.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Where the word at `pos` starts and what may complete it.
pub(super) fn complete(names: &Names, line: &str, pos: usize) -> (usize, Vec<Pair>) {
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(pos, |(i, _)| i);
    let word = &before[start..];
    let lead = &before[..start];
    let this_line = lead.rsplit('\n').next().unwrap_or("");
    let plain = |s: &str| Pair {
        display: s.to_string(),
        replacement: s.to_string(),
    };
    let call = |s: &str| Pair {
        display: s.to_string(),
        replacement: format!("{s}("),
    };
    let mut found: Vec<Pair> = Vec::new();
    if is_raw(this_line) {
        // A raw Redis command: nothing of Rhai completes it.
    } else if let Some(quote) = open_string(this_line) {
        let context = this_line[..quote].trim_end();
        if context.ends_with("help(") {
            found.extend(names.function_names(false).into_iter().map(plain));
        } else if context.ends_with("import") {
            found.extend(names.modules.iter().map(|m| plain(m)));
        }
    } else if is_command(this_line) || this_line.trim_start().starts_with('.') {
        if lead.len() == this_line.len() {
            match this_line.trim() {
                "." => found.extend(["help", "dry", "plan", "load", "quit", "exit"].map(plain)),
                ".dry" => found.extend(["on", "off"].map(plain)),
                ".plan" => found.push(plain("all")),
                _ => {}
            }
        }
    } else if let Some(path) = lead.strip_suffix("::") {
        let alias = trailing_ident(path);
        let prefix = format!("{alias}::");
        found.extend(
            names
                .function_names(true)
                .into_iter()
                .filter_map(|n| n.strip_prefix(&prefix))
                .map(call),
        );
    } else if let Some(object) = lead.strip_suffix('.') {
        let number = object
            .chars()
            .rev()
            .take_while(|&c| is_ident(c))
            .all(|c| c.is_ascii_digit());
        let after_value = object.ends_with([')', ']']) || object.ends_with(is_ident);
        if after_value && !(number && object.ends_with(|c: char| c.is_ascii_digit())) {
            found.extend(NODE_FIELDS.iter().map(|f| plain(f)));
        }
    } else {
        // Variables first: where a variable and a function share a name (`cluster`),
        // the one the user made wins.
        found.extend(names.vars.iter().map(|v| plain(v)));
        found.extend(names.function_names(false).into_iter().map(call));
        found.extend(BUILTINS.iter().map(|b| call(b)));
        found.extend(KEYWORDS.iter().map(|k| plain(k)));
        found.extend(names.aliases.iter().map(|a| Pair {
            display: format!("{a}::"),
            replacement: format!("{a}::"),
        }));
    }
    found.retain(|p| p.display.starts_with(word));
    found.sort_by(|a, b| a.display.cmp(&b.display));
    found.dedup_by(|a, b| a.replacement == b.replacement);
    (start, found)
}

/// The byte index of the `"` that opens a string still open at the end of `line`.
pub(super) fn open_string(line: &str) -> Option<usize> {
    let mut open = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (open, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(_), '"') => open = None,
            (None, '"') => open = Some(i),
            _ => {}
        }
    }
    open
}

/// A hint: what is shown after the cursor, and what the right arrow inserts (if any).
#[derive(Debug, PartialEq)]
pub(super) struct ReplHint {
    pub(super) display: String,
    pub(super) insert: Option<String>,
}

impl Hint for ReplHint {
    fn display(&self) -> &str {
        &self.display
    }

    fn completion(&self) -> Option<&str> {
        self.insert.as_deref()
    }
}

/// The hint for `line` with the cursor at `pos`: a function's parameters right after
/// `name(`, the rest of the only function a word can start, a command's arguments.
pub(super) fn hint(names: &Names, line: &str, pos: usize) -> Option<ReplHint> {
    if pos != line.len() || line.trim().is_empty() {
        return None;
    }
    let this_line = line.rsplit('\n').next().unwrap_or(line);
    if this_line.trim_start().starts_with('.') {
        let typed = this_line.trim();
        let rest = match typed {
            ".dry" => " on|off",
            ".dry " => "on|off",
            _ => {
                let mut hits = DOT_COMMANDS
                    .iter()
                    .map(|(c, _)| c.split(' ').next().unwrap_or(c))
                    .filter(|c| c.starts_with(typed) && *c != typed);
                let only = hits.next()?;
                if hits.any(|c| c != only) {
                    return None;
                }
                return Some(ReplHint {
                    display: only[typed.len()..].to_string(),
                    insert: Some(only[typed.len()..].to_string()),
                });
            }
        };
        return Some(ReplHint {
            display: rest.into(),
            insert: None,
        });
    }
    if open_string(this_line).is_some() {
        return None;
    }
    if let Some(callee) = this_line.strip_suffix('(') {
        let name: String = callee
            .chars()
            .rev()
            .take_while(|&c| is_ident(c) || c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let params: Vec<&str> = names
            .functions
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, sig)| sig.split_once('(').map(|(_, p)| p))
            .collect();
        if params.is_empty() {
            return None;
        }
        return Some(ReplHint {
            display: params.join("   or   ("),
            insert: None,
        });
    }
    let word = trailing_ident(this_line);
    let lead = &this_line[..this_line.len() - word.len()];
    if word.chars().count() < 2
        || lead.ends_with(['.', ':'])
        || word.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let mut hits = names
        .function_names(false)
        .into_iter()
        .filter(|n| n.starts_with(&word) && *n != word);
    let only = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    let rest = format!("{}(", &only[word.len()..]);
    Some(ReplHint {
        display: rest.clone(),
        insert: Some(rest),
    })
}

// ---------------------------------------------------------------------------------
// The terminal.

/// The line editor's helper: completion, hints, continuation lines, validation.
pub(super) struct ReplHelper {
    pub(super) names: Names,
    pub(super) parser: Arc<Engine>,
    pub(super) color: bool,
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
pub(super) struct ContinueOpen {
    pub(super) parser: Arc<Engine>,
}

impl ConditionalEventHandler for ContinueOpen {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        (check(&self.parser, ctx.line()) == Check::Incomplete)
            .then(|| Cmd::Insert(1, format!("\n{PAD}")))
    }
}

/// An engine that only parses (for the editor, which may not hold the session's).
pub(super) fn parser() -> Engine {
    let mut e = Engine::new_raw();
    e.set_max_expr_depths(128, 64);
    e
}

/// The identifier `text` ends with (empty when it ends with anything else).
fn trailing_ident(text: &str) -> String {
    let start = text
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(text.len(), |(i, _)| i);
    text[start..].to_string()
}
