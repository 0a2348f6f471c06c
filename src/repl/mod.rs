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

use crate::cli::Global;
use crate::output::Output;
use crate::replies::print_reply;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::backend::sim::Sim;
use redis_trib::error::{kind_of, Kind};
use redis_trib::keyspace::{refuse_writes, ClusterClient};
use redis_trib::script::cluster_handle::ClusterHandle;
use redis_trib::script::resolver::{is_closure_name, Resolver, STDLIB};
use redis_trib::script::{report, ApiDoc, ScriptEngine, Target, NODE_FIELDS};
use redis_trib::topology::Node;
use rhai::{
    Dynamic, Engine, EvalAltResult, FuncRegistration, Module, Position, Scope, Shared, AST,
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

mod complete;
mod history;
mod input;
mod raw;

use complete::*;
use input::*;

/// Runs the shell: interactive on a terminal, else the piped text as one session.
pub fn run(
    mut engine: ScriptEngine,
    node: Option<Addr>,
    params: BTreeMap<String, String>,
    g: &Global,
    out: &Output,
) -> Result<()> {
    register_help(&mut engine);
    engine.allow_cluster(node.as_slice());
    let mut session = Session::new(engine, node.as_ref(), &params);
    if std::io::stdin().is_terminal() {
        interactive(session, node.as_ref(), g, out)
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let text = redis_trib::script::strip_shebang(&text);
        redis_trib::interrupt::clear();
        session.run_text(PIPED, &text, g, out)?;
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
    (
        ".plan [all]",
        "the plan recorded since `.dry on` (all: every slot range)",
    ),
    (
        ".load FILE",
        "run a script file in this session (its functions and variables stay)",
    ),
    (".quit", "leave (also .exit, Ctrl-D)"),
    (
        "> CMD ARGS",
        "a Redis command for the cluster `cluster` names (routed by slot)",
    ),
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
    let docs = engine.reference();
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
    s.push_str(
        "\nThe stdlib modules' functions and topics (ARGS, PARAMS, Cluster, check map, info map, \
         node_info map, slot_stats array, topology map, state token, Rhai traps) are above: \
         help(\"topology map\") shows one.\n",
    );
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
    /// The connection raw (`>`) commands use, opened on first use.
    raw: Option<ClusterClient>,
    /// How many variables the session starts with (`ARGS`, `PARAMS`, `cluster`).
    base: usize,
}

impl Session {
    fn new(engine: ScriptEngine, node: Option<&Addr>, params: &BTreeMap<String, String>) -> Self {
        let mut scope = ScriptEngine::scope(&[], params);
        if let Some(n) = node {
            scope.push("cluster", n.to_string());
        }
        let base = scope.len();
        Session {
            engine,
            scope,
            functions: AST::empty(),
            base,
            modules: Vec::new(),
            raw: None,
        }
    }

    /// Runs `text` (named `name` in errors) statement by statement; the first error
    /// stops it and comes back as the operator report.
    fn run_text(&mut self, name: &str, text: &str, g: &Global, out: &Output) -> Result<Flow> {
        let pieces = match split(self.engine.engine(), text) {
            Split::Done(pieces) => pieces,
            Split::Incomplete(e) | Split::Invalid(e) => {
                return Err(anyhow::Error::msg(report::report(&e, name, text)))
            }
        };
        for piece in pieces {
            match piece {
                Piece::Command { text: cmd, .. } => {
                    if self.command(&cmd, g, out).map_err(anyhow::Error::msg)? == Flow::Quit {
                        return Ok(Flow::Quit);
                    }
                }
                Piece::Raw { line, text: raw } => self
                    .raw_command(&raw, g, out)
                    .map_err(|e| anyhow::anyhow!("{name}:{}: {e:#}", line + 1))?,
                Piece::Code { line, text: code } => {
                    let value = self.eval(&pad(line, &code)).map_err(|e| {
                        self.after_limit(out);
                        report::to_error(&e, name, text)
                    })?;
                    if let Some(shown) = show(self.engine.engine(), value) {
                        out.data(&shown);
                    }
                }
            }
        }
        Ok(Flow::Go)
    }

    /// After a failed statement: when the session's values still hold more than the
    /// memory budget, its variables are dropped (else every later input would stop).
    fn after_limit(&mut self, out: &Output) {
        if self.engine.sandbox().memory_exceeded() && self.scope.len() > self.base {
            self.scope.rewind(self.base);
            out.note("the session's variables were dropped: they held more than --max-memory");
        }
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

    /// A raw Redis command (`> SET foo bar`) sent through a cluster handle on the
    /// cluster the variable `cluster` names; in a dry run only commands that read.
    fn raw_command(&mut self, line: &str, g: &Global, out: &Output) -> Result<()> {
        let args = raw::split_args(line).map_err(anyhow::Error::msg)?;
        if args.is_empty() {
            anyhow::bail!("a Redis command is expected after `>`");
        }
        if self.engine.is_offline() {
            anyhow::bail!(
                "an offline shell (--topology) has no nodes to send {} to; start the shell on a cluster: redis-trib repl HOST:PORT",
                String::from_utf8_lossy(&args[0])
            );
        }
        if self.engine.is_dry_run() {
            refuse_writes(&args).map_err(|e| anyhow::anyhow!("{e}; .dry off sends it"))?;
        }
        let target = match self.scope.get_value::<Dynamic>("cluster") {
            Some(c) => match c.clone().try_cast::<ClusterHandle>() {
                Some(h) => h.entry(),
                None => c.to_string(),
            },
            None => anyhow::bail!(
                "no cluster to send it to: set cluster = \"HOST:PORT\", or start the shell with `redis-trib repl HOST:PORT`"
            ),
        };
        let addr: Addr = target
            .parse()
            .map_err(|e| anyhow::anyhow!("cluster = {target:?}: {e}"))?;
        self.engine
            .check_reach("> (raw command)", &addr)
            .map_err(anyhow::Error::msg)?;
        if self.raw.as_ref().map(|c| c.entry()) != Some(&addr) {
            self.raw = Some(ClusterClient::open(&addr, &g.conn_opts()?)?);
        }
        let reply = self.raw.as_mut().expect("opened above").execute(&args)?;
        // A node's failure is on its own line; the others' replies still count.
        print_reply(out, g, reply).map(|_| ())
    }

    /// A shell command (`.help`, `.dry on|off`, `.plan`, `.quit`).
    fn command(&mut self, cmd: &str, g: &Global, out: &Output) -> Result<Flow, String> {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            [".help"] => out.data(full_help(&self.engine.reference()).trim_end()),
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
                let live = g.live(false, out).map_err(|e| format!("{e:#}"))?;
                self.engine.set_target(Target::Sim(Sim::over(live)));
                out.note(
                    "dry run: operations change an in-memory copy of the cluster; .plan shows them",
                );
            }
            [".dry", "off"] if !self.engine.is_dry_run() => out.note("already live"),
            [".dry", "off"] => {
                let live = g.live(false, out).map_err(|e| format!("{e:#}"))?;
                self.engine.set_target(Target::Live(live));
                out.note("live: operations change the cluster again (the plan was dropped)");
            }
            [".plan"] if self.engine.is_dry_run() => {
                crate::scripting::print_plan(&self.engine, g, out)
            }
            [".plan", "all"] if self.engine.is_dry_run() => match self.engine.plan() {
                Some(plan) if !plan.is_empty() && !g.json => {
                    out.data(redis_trib::render::plan_text_all(&plan, true).trim_end())
                }
                _ => crate::scripting::print_plan(&self.engine, g, out),
            },
            [".plan"] | [".plan", "all"] => {
                out.note("no plan: operations are live (.dry on to plan)")
            }
            [".load"] => return Err("give a file: .load FILE".into()),
            [".load", ..] => {
                let file = cmd.trim_start()[".load".len()..].trim();
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!(".load {file}: cannot read it ({e})"))?;
                let text = redis_trib::script::strip_shebang(&text);
                return self
                    .run_text(file, &text, g, out)
                    .map_err(|e| format!("{e:#}"));
            }
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
        let flow = session.run_text(TYPED, &input, g, out);
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
            Err(e) => Output::error(g.no_color, &format!("{e:#}")),
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
        // The variable and the function `cluster(addr)` are both offered.
        assert_eq!(words(complete(&n, "clu", 3)), vec!["cluster", "cluster("]);
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
    fn a_session_over_its_memory_budget_drops_its_variables_and_goes_on() {
        use clap::Parser;
        let g = crate::cli::Cli::parse_from(["redis-trib", "--quiet"]).global;
        let out = Output::new(&g);
        let quiet: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|_| {});
        let limits = redis_trib::script::Limits {
            max_memory: 48 << 20,
            ..redis_trib::script::Limits::default()
        };
        let engine = ScriptEngine::new(
            Target::Sim(Sim::offline(&redis_trib::topology::Topology::default())),
            redis_trib::script::ScriptIo {
                print: quiet.clone(),
                log: quiet,
            },
            Vec::new(),
            &limits,
        );
        let mut session = Session::new(engine, None, &BTreeMap::new());
        let base = session.scope.len();
        let grow = "let s = \"x\"; while s.len() < 1000000 { s += s; }\n\
                    let keep = []; for i in 0..200 { let t = s + i; keep.push(|| t.len()); }";
        let e = session.run_text(TYPED, grow, &g, &out).unwrap_err();
        assert!(format!("{e:#}").contains("--max-memory 48 MiB"), "{e:#}");
        assert_eq!(session.scope.len(), base, "the variables were dropped");
        assert_eq!(
            session.run_text(TYPED, "let y = 1", &g, &out).unwrap(),
            Flow::Go
        );
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
