//! One shell session: the variables, functions and imports that persist between
//! inputs, running an input statement by statement, the shell commands (`.dry`,
//! `.plan`, `.load`...), raw Redis commands (`> CMD`), and how values are shown.

use super::complete::Names;
use super::help::full_help;
use super::input::{imports_in, pad, split, Piece, Split};
use super::raw;
use crate::cli::settings::Settings;
use crate::output::Output;
use crate::replies::print_reply;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::keyspace::{refuse_writes, ClusterClient};
use redis_trib::script::cluster_handle::ClusterHandle;
use redis_trib::script::{report, ScriptEngine};
use redis_trib::topology::Node;
use rhai::{Dynamic, Engine, EvalAltResult, Module, Position, Scope, Shared, AST};
use std::collections::BTreeMap;

/// What to do after an input.
#[derive(Debug, PartialEq)]
pub(super) enum Flow {
    Go,
    Quit,
}

/// The state that persists between inputs.
pub(super) struct Session {
    pub(super) engine: ScriptEngine,
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
    /// A session on `engine`: `cluster` holds `node` when given, `PARAMS` the `--set`
    /// pairs.
    pub(super) fn new(
        engine: ScriptEngine,
        node: Option<&Addr>,
        params: &BTreeMap<String, String>,
    ) -> Self {
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
    pub(super) fn run_text(
        &mut self,
        name: &str,
        text: &str,
        s: &Settings,
        out: &Output,
    ) -> Result<Flow> {
        let pieces = match split(self.engine.engine(), text) {
            Split::Done(pieces) => pieces,
            Split::Incomplete(e) | Split::Invalid(e) => {
                return Err(anyhow::Error::msg(report::report(&e, name, text)))
            }
        };
        for piece in pieces {
            match piece {
                Piece::Command { text: cmd, .. } => {
                    if self.command(&cmd, s, out).map_err(anyhow::Error::msg)? == Flow::Quit {
                        return Ok(Flow::Quit);
                    }
                }
                Piece::Raw { line, text: raw } => self
                    .raw_command(&raw, s, out)
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
    fn raw_command(&mut self, line: &str, s: &Settings, out: &Output) -> Result<()> {
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
            self.raw = Some(ClusterClient::open(&addr, &s.conn)?);
        }
        let reply = self.raw.as_mut().expect("opened above").execute(&args)?;
        // A node's failure is on its own line; the others' replies still count.
        print_reply(out, s, reply).map(|_| ())
    }

    /// A shell command (`.help`, `.dry on|off`, `.plan`, `.quit`).
    fn command(&mut self, cmd: &str, s: &Settings, out: &Output) -> Result<Flow, String> {
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
                // Built by the settings' factory: every connection, migration and
                // lease option of the command line holds in the dry run too.
                self.engine.set_target(s.target(true, false, out));
                out.note(
                    "dry run: operations change an in-memory copy of the cluster; .plan shows them",
                );
            }
            [".dry", "off"] if !self.engine.is_dry_run() => out.note("already live"),
            [".dry", "off"] => {
                self.engine.set_target(s.target(false, false, out));
                out.note("live: operations change the cluster again (the plan was dropped)");
            }
            [".plan"] if self.engine.is_dry_run() => {
                crate::scripting::print_plan(&self.engine, s, out)
            }
            [".plan", "all"] if self.engine.is_dry_run() => match self.engine.plan() {
                Some(plan) if !plan.is_empty() && !s.json => {
                    out.data(redis_trib::render::plan_text_all(&plan, true).trim_end())
                }
                _ => crate::scripting::print_plan(&self.engine, s, out),
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
                    .run_text(file, &text, s, out)
                    .map_err(|e| format!("{e:#}"));
            }
            _ => return Err(format!("unknown shell command `{cmd}` (.help lists them)")),
        }
        Ok(Flow::Go)
    }

    /// What completion and hints know now.
    pub(super) fn names(&self) -> Names {
        Names::new(&self.engine, &self.scope, &self.functions, &self.modules)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repl::TYPED;
    use crate::scripting::offline_engine;
    use redis_trib::backend::sim::Sim;
    use redis_trib::script::Target;
    use std::sync::Arc;

    #[test]
    fn a_session_over_its_memory_budget_drops_its_variables_and_goes_on() {
        use clap::Parser;
        let s = Settings::resolve(crate::cli::Cli::parse_from(["redis-trib", "--quiet"]).global)
            .unwrap();
        let out = Output::new(&s);
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
        let e = session.run_text(TYPED, grow, &s, &out).unwrap_err();
        assert!(format!("{e:#}").contains("--max-memory 48 MiB"), "{e:#}");
        assert_eq!(session.scope.len(), base, "the variables were dropped");
        assert_eq!(
            session.run_text(TYPED, "let y = 1", &s, &out).unwrap(),
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
