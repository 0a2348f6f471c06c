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
//! `.plan`, `.quit`. `help()` / `help("name")` list the functions from the engine's
//! own record.
//!
//! When stdin is not a terminal the whole text is read and checked first (a syntax
//! error anywhere runs nothing), then run statement by statement the same way, with
//! no prompt and no history; the first error stops it and is the command's error.

use crate::cli::Global;
use crate::output::Output;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::backend::live::Live;
use redis_trib::backend::sim::Sim;
use redis_trib::migrate::MigrateOpts;
use redis_trib::script::resolver::{Resolver, STDLIB};
use redis_trib::script::{report, ApiDoc, ScriptEngine, Target, NODE_FIELDS};
use redis_trib::topology::Node;
use rhai::{
    Dynamic, Engine, EvalAltResult, FuncRegistration, LexError, Module, ParseError, ParseErrorType,
    Position, Scope, Shared, AST,
};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hint, Hinter};
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, KeyCode, KeyEvent, Modifiers, RepeatCount,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

/// Runs the shell: interactive on a terminal, else the piped text as one session.
pub fn run(
    mut engine: ScriptEngine,
    node: Option<Addr>,
    params: BTreeMap<String, String>,
    g: &Global,
    out: &Output,
) -> Result<()> {
    register_help(&mut engine);
    let mut session = Session::new(engine, node.as_ref(), &params);
    if std::io::stdin().is_terminal() {
        interactive(session, node.as_ref(), g, out)
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let text = redis_trib::script::strip_shebang(&text);
        redis_trib::interrupt::clear();
        session
            .run_text(PIPED, &text, g, out)
            .map_err(anyhow::Error::msg)?;
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

/// Shell commands: what `.help` shows and `.` completes.
const DOT_COMMANDS: &[(&str, &str)] = &[
    (".help", "functions, node fields and these commands"),
    (
        ".dry on",
        "plan only: operations change an in-memory copy of the cluster",
    ),
    (
        ".dry off",
        "operations change the cluster again (the plan is dropped)",
    ),
    (".dry", "whether operations are planned or applied"),
    (".plan", "the plan recorded since `.dry on`"),
    (".quit", "leave (also .exit, Ctrl-D)"),
];

/// Rhai keywords and built-in functions that completion offers.
const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "switch", "while", "loop", "for", "in", "do", "until",
    "break", "continue", "return", "throw", "try", "catch", "import", "export", "as", "private",
    "true", "false", "this", "global",
];

/// Built-in functions completion offers (with their `(`).
const BUILTINS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "is_def_var",
    "is_def_fn",
    "Fn",
    "call",
    "curry",
];

/// Registers `help()` and `help("name")`, printing from the engine's API record.
fn register_help(engine: &mut ScriptEngine) {
    let docs = engine.docs().to_vec();
    let all = full_help(&docs);
    FuncRegistration::new("help")
        .with_volatility(true)
        .register_into_engine(engine.engine_mut(), move || println!("{}", all.trim_end()));
    FuncRegistration::new("help")
        .with_volatility(true)
        .register_into_engine(engine.engine_mut(), move |name: &str| {
            println!("{}", help_for(&docs, name).trim_end())
        });
}

/// Every API function (signature and one line of doc), node fields, shell commands.
pub(crate) fn full_help(docs: &[ApiDoc]) -> String {
    let mut s = String::from("Cluster functions (help(\"name\") shows one):\n");
    for d in docs {
        s.push_str(&format!("  {}\n      {}\n", d.signature, d.doc));
    }
    s.push_str(&format!("\nNode fields: {}.\n", NODE_FIELDS.join(", ")));
    s.push_str("\nShell commands:\n");
    for (cmd, what) in DOT_COMMANDS {
        s.push_str(&format!("  {cmd:<10} {what}\n"));
    }
    s.push_str(
        "\nVariables, functions and imports persist between inputs; an open block \
         continues on the next line. Tab completes, Ctrl-C cancels, Ctrl-D leaves.\n",
    );
    s
}

/// The functions called `name`, or the names that come close.
pub(crate) fn help_for(docs: &[ApiDoc], name: &str) -> String {
    let hits: Vec<&ApiDoc> = docs.iter().filter(|d| d.name == name).collect();
    if !hits.is_empty() {
        return hits
            .iter()
            .map(|d| format!("{}\n    {}\n", d.signature, d.doc))
            .collect();
    }
    let lower = name.to_lowercase();
    let mut close: Vec<&str> = docs
        .iter()
        .map(|d| d.name.as_str())
        .filter(|n| !lower.is_empty() && n.to_lowercase().contains(&lower))
        .collect();
    close.dedup();
    if close.is_empty() {
        format!("no function named {name:?}: help() lists them all")
    } else {
        format!(
            "no function named {name:?}; did you mean {}?",
            close.join(", ")
        )
    }
}

/// What to do after an input.
#[derive(Debug, PartialEq)]
enum Flow {
    Go,
    Quit,
}

/// The state that persists between inputs.
struct Session {
    engine: ScriptEngine,
    scope: Scope<'static>,
    /// Function definitions so far (statements are dropped after each run).
    functions: AST,
    /// Modules imported so far, by alias.
    modules: Vec<(String, Shared<Module>)>,
}

impl Session {
    fn new(engine: ScriptEngine, node: Option<&Addr>, params: &BTreeMap<String, String>) -> Self {
        let mut scope = ScriptEngine::scope(&[], params);
        if let Some(n) = node {
            scope.push("cluster", n.to_string());
        }
        Session {
            engine,
            scope,
            functions: AST::empty(),
            modules: Vec::new(),
        }
    }

    /// Runs `text` (named `name` in errors) statement by statement; the first error
    /// stops it and comes back as the operator report.
    fn run_text(
        &mut self,
        name: &str,
        text: &str,
        g: &Global,
        out: &Output,
    ) -> Result<Flow, String> {
        let pieces = match split(self.engine.engine(), text) {
            Split::Done(pieces) => pieces,
            Split::Incomplete(e) | Split::Invalid(e) => return Err(report::report(&e, name, text)),
        };
        for piece in pieces {
            match piece {
                Piece::Command { text: cmd, .. } => {
                    if self.command(&cmd, g, out)? == Flow::Quit {
                        return Ok(Flow::Quit);
                    }
                }
                Piece::Code { line, text: code } => {
                    let value = self
                        .eval(&pad(line, &code))
                        .map_err(|e| report::report(&e, name, text))?;
                    if let Some(shown) = show(self.engine.engine(), value) {
                        out.data(&shown);
                    }
                }
            }
        }
        Ok(Flow::Go)
    }

    /// Compiles and runs one statement with the functions defined so far, keeps its
    /// functions and (on success) its imports.
    fn eval(&mut self, code: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let new = self.engine.compile(&self.scope, code)?;
        let mut ast = self.functions.merge(&new);
        let result = self.engine.eval_ast(&mut self.scope, &ast);
        ast.clear_statements();
        self.functions = ast;
        let value = result?;
        for (module, alias) in imports_in(code) {
            self.keep_import(&module, &alias)?;
        }
        Ok(value)
    }

    /// Makes `import "module" as alias;` last: the module becomes a static module of
    /// the engine (the instance the import loaded, from the resolver's cache).
    fn keep_import(&mut self, module: &str, alias: &str) -> Result<(), Box<EvalAltResult>> {
        let engine = self.engine.engine();
        let m = engine
            .module_resolver()
            .resolve(engine, None, module, Position::NONE)
            .or_else(|_| self.engine.module(module))?;
        self.engine
            .engine_mut()
            .register_static_module(alias, m.clone());
        self.modules.retain(|(a, _)| a != alias);
        self.modules.push((alias.to_string(), m));
        Ok(())
    }

    /// A shell command (`.help`, `.dry on|off`, `.plan`, `.quit`).
    fn command(&mut self, cmd: &str, g: &Global, out: &Output) -> Result<Flow, String> {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            [".help"] => out.data(full_help(self.engine.docs()).trim_end()),
            [".quit"] | [".exit"] => return Ok(Flow::Quit),
            [".dry"] => out.data(if self.engine.is_dry_run() {
                "dry run: operations are planned (.plan shows the plan)"
            } else {
                "live: operations change the cluster"
            }),
            [".dry", "on"] if self.engine.is_dry_run() => {
                out.note("already a dry run; .plan shows the plan so far")
            }
            [".dry", "on"] => {
                let live = Live::new(
                    g.conn_opts().map_err(|e| format!("{e:#}"))?,
                    MigrateOpts::default(),
                    out.sink(),
                );
                self.engine.set_target(Target::Sim(Sim::over(live)));
                out.note(
                    "dry run: operations change an in-memory copy of the cluster; .plan shows them",
                );
            }
            [".dry", "off"] if !self.engine.is_dry_run() => out.note("already live"),
            [".dry", "off"] => {
                let live = Live::new(
                    g.conn_opts().map_err(|e| format!("{e:#}"))?,
                    MigrateOpts::default(),
                    out.sink(),
                );
                self.engine.set_target(Target::Live(live));
                out.note("live: operations change the cluster again (the plan was dropped)");
            }
            [".plan"] if self.engine.is_dry_run() => {
                crate::scripting::print_plan(&self.engine, g, out)
            }
            [".plan"] => out.note("no plan: operations are live (.dry on to plan)"),
            _ => return Err(format!("unknown shell command `{cmd}` (.help lists them)")),
        }
        Ok(Flow::Go)
    }

    /// What completion and hints know now.
    fn names(&self) -> Names {
        Names::new(&self.engine, &self.scope, &self.functions, &self.modules)
    }
}

/// `code` moved down to line `line` (0-based), so positions count from the input's start.
fn pad(line: usize, code: &str) -> String {
    "\n".repeat(line) + code
}

/// The `import "name" as alias` statements of `code` (as the regex
/// `import\s+"([^"]+)"\s+as\s+(\w+)` finds them).
pub(crate) fn imports_in(code: &str) -> Vec<(String, String)> {
    fn blanks(s: &str) -> Option<&str> {
        let t = s.trim_start();
        (t.len() < s.len()).then_some(t)
    }
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("import") {
        let after = &rest[i + "import".len()..];
        let starts_word = !rest[..i].chars().next_back().is_some_and(is_ident);
        rest = after;
        let Some(quoted) = blanks(after).filter(|_| starts_word) else {
            continue;
        };
        let Some(quoted) = quoted.strip_prefix('"') else {
            continue;
        };
        let Some(end) = quoted.find('"').filter(|&e| e > 0) else {
            continue;
        };
        let name = &quoted[..end];
        let Some(alias) = blanks(&quoted[end + 1..])
            .and_then(|s| s.strip_prefix("as"))
            .and_then(blanks)
        else {
            continue;
        };
        let alias: String = alias.chars().take_while(|&c| is_ident(c)).collect();
        if !alias.is_empty() {
            found.push((name.to_string(), alias));
        }
    }
    found
}

/// A value as the shell prints it: nothing for `()`, strings as they are, a list of
/// nodes one per line, anything else as Rhai's `to_debug` shows it.
fn show(engine: &Engine, value: Dynamic) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    if value.is_string() {
        return value.into_string().ok();
    }
    if value.is_array() {
        let items = value.clone().into_array().unwrap_or_default();
        if !items.is_empty() && items.iter().all(|v| v.is::<Node>()) {
            let lines: Vec<String> = items.into_iter().map(|v| debug_text(engine, v)).collect();
            return Some(lines.join("\n"));
        }
    }
    Some(debug_text(engine, value))
}

fn debug_text(engine: &Engine, value: Dynamic) -> String {
    let fallback = value.to_string();
    let mut scope = Scope::new();
    scope.push_dynamic("value", value);
    engine
        .eval_with_scope::<String>(&mut scope, "to_debug(value)")
        .unwrap_or(fallback)
}

// ---------------------------------------------------------------------------------
// Cutting input into statements.

/// One statement or shell command of an input.
#[derive(Debug, PartialEq)]
enum Piece {
    /// A shell command line (`.dry on`), on line `line` (0-based).
    Command { line: usize, text: String },
    /// Rhai code starting on line `line` (0-based).
    Code { line: usize, text: String },
}

/// An input cut into pieces, or why it cannot be.
#[derive(Debug)]
enum Split {
    /// Every statement is complete.
    Done(Vec<Piece>),
    /// The last statement needs more lines.
    Incomplete(Box<EvalAltResult>),
    /// A syntax error (positions count from the start of the input).
    Invalid(Box<EvalAltResult>),
}

/// Whether an input is ready to run.
#[derive(Debug, PartialEq)]
pub(crate) enum Check {
    /// Every statement is complete (or it is a shell command).
    Complete,
    /// A statement is still open: the input continues on the next line.
    Incomplete,
    /// A syntax error: run it to see the report.
    Invalid,
}

/// Whether `input` is complete, still open, or wrong.
pub(crate) fn check(engine: &Engine, input: &str) -> Check {
    match split(engine, input) {
        Split::Done(_) => Check::Complete,
        Split::Incomplete(_) => Check::Incomplete,
        Split::Invalid(_) => Check::Invalid,
    }
}

fn is_command(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('.') && t[1..].starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Cuts `text` into statements: lines are added to a statement until it parses; a
/// statement followed by a line starting with `else`, `catch` or an indented `.`
/// (a method chain) continues there. Shell commands stand on their own lines.
fn split(engine: &Engine, text: &str) -> Split {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut pieces = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if open.is_none() {
            if line.trim().is_empty() {
                continue;
            }
            if is_command(line) {
                pieces.push(Piece::Command {
                    line: i,
                    text: line.trim().to_string(),
                });
                continue;
            }
        }
        let (start, code) = open.get_or_insert_with(|| (i, String::new()));
        if i > *start {
            code.push('\n');
        }
        code.push_str(line);
        match parse(engine, *start, code) {
            Parsed::Complete if continues(&lines[i + 1..]) => {}
            Parsed::Complete => {
                let (line, text) = open.take().expect("an open statement");
                pieces.push(Piece::Code { line, text });
            }
            Parsed::Incomplete(_) => {}
            Parsed::Invalid(e) => return Split::Invalid(e),
        }
    }
    match open {
        None => Split::Done(pieces),
        Some((start, code)) => match parse(engine, start, &code) {
            Parsed::Complete => {
                pieces.push(Piece::Code {
                    line: start,
                    text: code,
                });
                Split::Done(pieces)
            }
            Parsed::Incomplete(e) => Split::Incomplete(e),
            Parsed::Invalid(e) => Split::Invalid(e),
        },
    }
}

/// Whether the next line with text continues the statement before it.
fn continues(rest: &[&str]) -> bool {
    let Some(next) = rest.iter().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let t = next.trim_start();
    let word = |w: &str| t.strip_prefix(w).is_some_and(|r| !r.starts_with(is_ident));
    word("else")
        || word("catch")
        || (t.len() < next.len() && (t.starts_with('.') || t.starts_with("?.")))
}

enum Parsed {
    Complete,
    Incomplete(Box<EvalAltResult>),
    Invalid(Box<EvalAltResult>),
}

/// Parses the statement `code` that starts on line `start`.
fn parse(engine: &Engine, start: usize, code: &str) -> Parsed {
    let text = pad(start, code);
    if in_block_comment(code) {
        // Rhai reads an unclosed comment to the end without complaint.
        let line = text.split('\n').count();
        let col = text.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let at = Position::new(clamp(line), clamp(col));
        return Parsed::Incomplete(ParseError(Box::new(ParseErrorType::UnexpectedEOF), at).into());
    }
    match engine.compile(&text) {
        Ok(_) => Parsed::Complete,
        Err(e) if needs_more(&e, &text) => Parsed::Incomplete(e.into()),
        Err(e) => Parsed::Invalid(e.into()),
    }
}

fn clamp(n: usize) -> u16 {
    n.min(u16::MAX as usize) as u16
}

/// Whether a parse error only says the text stops too early: the end of input came
/// while a block, call, list or multi-line string was open, or after doc comments
/// (the function they describe comes next).
fn needs_more(e: &ParseError, text: &str) -> bool {
    if e.position().is_none() {
        return matches!(e.err_type(), ParseErrorType::UnexpectedEOF);
    }
    let offset = offset_of(e.position(), text);
    let end = text.trim_end().chars().count();
    match e.err_type() {
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            // A `back-tick` string, or a "string" continued with a `\` at line end.
            let opener = offset.and_then(|o| text.chars().nth(o));
            opener == Some('`') || text.trim_end().ends_with('\\')
        }
        ParseErrorType::BadInput(_) => false,
        ParseErrorType::WrongDocComment => text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with("//")
        }),
        _ => offset.is_none_or(|o| o >= end),
    }
}

/// Whether `code` ends inside a `/* block comment */` (they nest in Rhai).
fn in_block_comment(code: &str) -> bool {
    let c: Vec<char> = code.chars().collect();
    let (mut i, mut depth) = (0, 0usize);
    let mut quote: Option<char> = None;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if depth > 0 {
            match (c[i], next) {
                ('/', Some('*')) => (depth, i) = (depth + 1, i + 1),
                ('*', Some('/')) => (depth, i) = (depth - 1, i + 1),
                _ => {}
            }
        } else if let Some(q) = quote {
            if c[i] == '\\' && q != '`' {
                i += 1;
            } else if c[i] == q {
                quote = None;
            }
        } else {
            match (c[i], next) {
                ('/', Some('/')) => {
                    while i + 1 < c.len() && c[i + 1] != '\n' {
                        i += 1;
                    }
                }
                ('/', Some('*')) => (depth, i) = (1, i + 1),
                ('"' | '`' | '\'', _) => quote = Some(c[i]),
                _ => {}
            }
        }
        i += 1;
    }
    depth > 0
}

/// The character offset of `pos` in `text`; `None` past its end.
fn offset_of(pos: Position, text: &str) -> Option<usize> {
    let (line, col) = (pos.line()?, pos.position().unwrap_or(1));
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return Some(offset + col.saturating_sub(1));
        }
        offset += l.chars().count() + 1;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

// ---------------------------------------------------------------------------------
// Completion and hints.

/// What completion and hints offer: the engine's functions, the session's variables,
/// functions and modules, and the modules `import` can find.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    /// `(name, signature)` of every function: API, `help`, script-defined, and
    /// `alias::name` for imported modules. Signatures are `name(params) -> type`.
    functions: Vec<(String, String)>,
    /// Variable names in scope.
    vars: Vec<String>,
    /// Aliases of imported modules.
    aliases: Vec<String>,
    /// Module names `import` can load.
    modules: Vec<String>,
}

impl Names {
    /// From an engine, a scope, the functions defined so far and imported modules.
    pub(crate) fn new(
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
        for f in functions.iter_functions() {
            fns.push((
                f.name.to_string(),
                format!("{}({})", f.name, f.params.join(", ")),
            ));
        }
        for (alias, m) in modules {
            for sig in m.gen_fn_signatures_with_mapper(|s| s.into()) {
                if let Some((name, _)) = sig.split_once('(') {
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
fn importable() -> Vec<String> {
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
pub(crate) fn complete(names: &Names, line: &str, pos: usize) -> (usize, Vec<Pair>) {
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
    if let Some(quote) = open_string(this_line) {
        let context = this_line[..quote].trim_end();
        if context.ends_with("help(") {
            found.extend(names.function_names(false).into_iter().map(plain));
        } else if context.ends_with("import") {
            found.extend(names.modules.iter().map(|m| plain(m)));
        }
    } else if is_command(this_line) || this_line.trim_start().starts_with('.') {
        if lead.len() == this_line.len() {
            match this_line.trim() {
                "." => found.extend(["help", "dry", "plan", "quit", "exit"].map(plain)),
                ".dry" => found.extend(["on", "off"].map(plain)),
                _ => {}
            }
        }
    } else if let Some(path) = lead.strip_suffix("::") {
        let alias: String = path
            .chars()
            .rev()
            .take_while(|&c| is_ident(c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
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
        found.extend(names.function_names(false).into_iter().map(call));
        found.extend(BUILTINS.iter().map(|b| call(b)));
        found.extend(KEYWORDS.iter().map(|k| plain(k)));
        found.extend(names.vars.iter().map(|v| plain(v)));
        found.extend(names.aliases.iter().map(|a| Pair {
            display: format!("{a}::"),
            replacement: format!("{a}::"),
        }));
    }
    found.retain(|p| p.display.starts_with(word));
    found.sort_by(|a, b| a.display.cmp(&b.display));
    found.dedup_by(|a, b| a.display == b.display);
    (start, found)
}

/// The byte index of the `"` that opens a string still open at the end of `line`.
fn open_string(line: &str) -> Option<usize> {
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
pub(crate) struct ReplHint {
    display: String,
    insert: Option<String>,
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
pub(crate) fn hint(names: &Names, line: &str, pos: usize) -> Option<ReplHint> {
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
    let word: String = this_line
        .chars()
        .rev()
        .take_while(|&c| is_ident(c))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
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

/// The history file: `REDIS_TRIB_HISTORY` (empty: none), else `~/.redis_trib_history`.
fn history_path() -> Option<PathBuf> {
    match std::env::var_os("REDIS_TRIB_HISTORY") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".redis_trib_history")),
    }
}

fn interactive(mut session: Session, node: Option<&Addr>, g: &Global, out: &Output) -> Result<()> {
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
        color: !g.no_color,
    }));
    rl.bind_sequence(
        KeyEvent(KeyCode::Enter, Modifiers::NONE),
        EventHandler::Conditional(Box::new(ContinueOpen { parser })),
    );
    let history = history_path();
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
        let _ = rl.add_history_entry(input.as_str());
        if let Some(path) = &history {
            if let Err(e) = rl.append_history(path) {
                if !history_failed {
                    out.note(&format!("cannot write the history {}: {e}", path.display()));
                    history_failed = true;
                }
            }
        }
        redis_trib::interrupt::clear();
        let flow = session.run_text(TYPED, &input, g, out);
        if let Some(h) = rl.helper_mut() {
            h.names = session.names();
        }
        match flow {
            Ok(Flow::Quit) => break,
            Ok(Flow::Go) => {}
            Err(report) => Output::error(g.no_color, &report),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::offline_engine;

    fn names() -> Names {
        let engine = offline_engine();
        let mut scope = ScriptEngine::scope(&[], &BTreeMap::new());
        scope.push("cluster", "127.0.0.1:7000".to_string());
        scope.push("my_masters", 3_i64);
        let functions = engine
            .compile(&scope, "fn my_weight(node, factor) { 1 }")
            .unwrap();
        Names::new(&engine, &scope, &functions, &[])
    }

    fn words(found: (usize, Vec<Pair>)) -> Vec<String> {
        found.1.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn parse_errors_at_the_end_continue() {
        let engine = offline_engine();
        let e = engine.engine();
        for open in [
            "fn f(a) {",
            "fn f(a) {\n  let x = a;",
            "if true {",
            "if x { 1 } else {",
            "let x = [1, 2,",
            "join_cluster(cluster,",
            "let m = #{ a: 1,",
            "let x = 1 +",
            "for n in list_masters(cluster) {\n  print(n);\n",
            "let s = `multi\nline",
            "while true { // forever",
            "let x = (1 + 2",
            "/* a comment\n  still the comment",
            "5 /* a /* nested */ comment",
            "/// doubles\n/// a number",
        ] {
            assert_eq!(check(e, open), Check::Incomplete, "{open:?}");
        }
        for done in [
            "1 + 2",
            "let x = 1;",
            "fn f(a) { a + 1 }",
            "fn f(a) {\n  a + 1\n}",
            "list_masters(cluster).len()",
            "if x { 1 }\nelse { 2 }",
            ".dry on",
            "",
            "let s = `multi\nline`;",
            "let a = 1\nlet b = 2",
            "import \"balance\" as b;",
            "// just a comment",
            "/* a\n comment */ 5",
            "let s = \"/*\"; // /*",
            "/// doubles\nfn d(x) {\n  x * 2\n}",
        ] {
            assert_eq!(check(e, done), Check::Complete, "{done:?}");
        }
        for wrong in [
            "let = 5;",
            "1 +* 2",
            "fn f( { 1 }",
            "let x = 1 +* 2;\nfn f() {",
            "\"open",
        ] {
            assert_eq!(check(e, wrong), Check::Invalid, "{wrong:?}");
        }
    }

    #[test]
    fn input_is_cut_into_statements_and_commands() {
        let engine = offline_engine();
        let text =
            ".dry on\nlet x = 1\n\nfn f(a) {\n  a + x\n}\nif x > 0 { 1 }\nelse { 2 }\n.plan\nf(1)";
        let Split::Done(pieces) = split(engine.engine(), text) else {
            panic!("not done");
        };
        let code = |line: usize, text: &str| Piece::Code {
            line,
            text: text.into(),
        };
        assert_eq!(
            pieces,
            vec![
                Piece::Command {
                    line: 0,
                    text: ".dry on".into()
                },
                code(1, "let x = 1"),
                code(3, "fn f(a) {\n  a + x\n}"),
                code(6, "if x > 0 { 1 }\nelse { 2 }"),
                Piece::Command {
                    line: 8,
                    text: ".plan".into()
                },
                code(9, "f(1)"),
            ]
        );
        // A syntax error is reported at its line in the whole input.
        let Split::Invalid(e) = split(engine.engine(), "let a = 1;\n\nlet b = a +* 2;") else {
            panic!("not invalid");
        };
        assert_eq!(e.position().line(), Some(3), "{e}");
        let report = report::report(&e, "<stdin>", "let a = 1;\n\nlet b = a +* 2;");
        assert!(report.starts_with("<stdin>:3:"), "{report}");
    }

    #[test]
    fn import_statements_are_found() {
        assert_eq!(
            imports_in("import \"balance\" as b; let x = 1;\nimport  \"m\"  as   my_mod;"),
            vec![
                ("balance".to_string(), "b".to_string()),
                ("m".to_string(), "my_mod".to_string())
            ]
        );
        assert!(imports_in("reimport \"m\" as x").is_empty());
        assert!(imports_in("import m as x; import \"\" as y; import \"m\" x").is_empty());
    }

    #[test]
    fn completes_functions_keywords_and_variables() {
        let n = names();
        let got = words(complete(&n, "list_", 5));
        assert_eq!(got, vec!["list_masters(", "list_nodes("]);
        assert_eq!(complete(&n, "let x = join_c", 14).0, 8);
        assert_eq!(
            words(complete(&n, "let x = join_c", 14)),
            vec!["join_cluster("]
        );
        assert_eq!(words(complete(&n, "clu", 3)), vec!["cluster"]);
        assert_eq!(
            words(complete(&n, "my_", 3)),
            vec!["my_masters", "my_weight("]
        );
        assert!(words(complete(&n, "whi", 3)).contains(&"while".to_string()));
        assert!(words(complete(&n, "PAR", 3)).contains(&"PARAMS".to_string()));
        assert!(words(complete(&n, "he", 2)).contains(&"help(".to_string()));
        // Every API function is offered.
        let all = words(complete(&n, "", 0));
        for d in offline_engine().docs() {
            assert!(all.contains(&format!("{}(", d.name)), "{} missing", d.name);
        }
    }

    #[test]
    fn completes_node_fields_after_a_dot() {
        let n = names();
        let line = "list_masters(cluster)[0].slot";
        assert_eq!(
            words(complete(&n, line, line.len())),
            vec!["slot_count", "slots_importing", "slots_migrating"]
        );
        let line = "for m in masters { print(m.";
        let got = words(complete(&n, line, line.len()));
        assert_eq!(got.len(), NODE_FIELDS.len());
        assert!(got.contains(&"node_id".to_string()));
        // Not after a number.
        assert!(words(complete(&n, "1.", 2)).is_empty());
    }

    #[test]
    fn completes_commands_strings_and_modules() {
        let n = names();
        assert_eq!(words(complete(&n, ".d", 2)), vec!["dry"]);
        assert_eq!(words(complete(&n, ".dry o", 6)), vec!["off", "on"]);
        assert_eq!(
            words(complete(&n, "help(\"migr", 10)),
            vec!["migrate_slots"]
        );
        assert!(words(complete(&n, "import \"bal", 11)).contains(&"balance".to_string()));
        assert!(words(complete(&n, "print(\"list_", 12)).is_empty());

        let engine = offline_engine();
        let scope = ScriptEngine::scope(&[], &BTreeMap::new());
        let module = engine.module("balance").unwrap();
        let with_module = Names::new(
            &engine,
            &scope,
            &AST::empty(),
            &[("bal".to_string(), module)],
        );
        let fns = words(complete(&with_module, "bal::", 5));
        assert!(
            !fns.is_empty() && fns.iter().all(|f| f.ends_with('(')),
            "{fns:?}"
        );
        assert!(words(complete(&with_module, "ba", 2)).contains(&"bal::".to_string()));
    }

    #[test]
    fn hints_show_signatures() {
        let n = names();
        let h = hint(&n, "join_no_load(", 13).unwrap();
        assert_eq!(h.display, "cluster: String, new: String) -> ()");
        assert_eq!(h.insert, None);
        let h = hint(&n, "join_cluster(", 13).unwrap();
        assert!(h.display.contains("options: Map"), "{}", h.display);
        let h = hint(&n, "x = my_weight(", 14).unwrap();
        assert_eq!(h.display, "node, factor)");
        let h = hint(&n, "rescue_c", 8).unwrap();
        assert_eq!(h.insert.as_deref(), Some("luster("));
        assert_eq!(hint(&n, ".dry", 4).unwrap().display, " on|off");
        assert_eq!(hint(&n, ".pl", 3).unwrap().insert.as_deref(), Some("an"));
        assert!(hint(&n, "list_", 5).is_none(), "two functions start so");
        assert!(hint(&n, "nothing_like_this(", 18).is_none());
        assert!(hint(&n, "join_no_load(", 3).is_none(), "only at the end");
    }

    #[test]
    fn help_lists_every_function_from_the_engine() {
        let engine = offline_engine();
        let text = full_help(engine.docs());
        for d in engine.docs() {
            assert!(text.contains(&d.signature), "{} missing", d.signature);
            assert!(text.contains(&d.doc), "{} doc missing", d.name);
        }
        let one = help_for(engine.docs(), "migrate_slots");
        assert!(one.starts_with("migrate_slots(src: String"), "{one}");
        assert!(!one.contains("join_cluster"));
        assert!(help_for(engine.docs(), "migrate").contains("migrate_slots"));
        assert!(help_for(engine.docs(), "zzz").contains("no function named"));
    }

    #[test]
    fn values_print_as_the_shell_shows_them() {
        let engine = offline_engine();
        let e = engine.engine();
        assert_eq!(show(e, Dynamic::UNIT), None);
        assert_eq!(show(e, Dynamic::from("plain")).as_deref(), Some("plain"));
        assert_eq!(show(e, Dynamic::from(42_i64)).as_deref(), Some("42"));
        let arr: rhai::Array = vec![Dynamic::from("a"), Dynamic::from(1_i64)];
        assert_eq!(show(e, Dynamic::from(arr)).as_deref(), Some("[\"a\", 1]"));
    }
}
