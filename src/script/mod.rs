//! The embedded Rhai engine: the sandbox (limits, no file or process access beyond
//! the API, Ctrl-C), the registered API, module imports, running files and lines.

pub mod api;
mod balancer;
pub mod cluster_handle;
pub mod convert;
mod data;
pub mod events;
pub mod guide;
pub mod host;
pub mod memory;
pub mod node;
mod options;
pub mod registry;
pub mod report;
pub mod resolver;
pub mod sandbox;
pub mod state;

pub use api::{ApiDoc, Host, ScriptIo, Target, NODE_FIELDS};
pub use sandbox::{HostRule, Sandbox};

use crate::backend::sim::PlanStep;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, OptimizationLevel, Scope, AST};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Sandbox limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Operations before a script is stopped (runaway loops).
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Items in one array.
    pub max_array_size: usize,
    /// Entries in one map.
    pub max_map_size: usize,
    /// Bytes the process may grow by while a script runs (all its values, wherever
    /// they live: variables, closures' captures, curried arguments).
    pub max_memory: usize,
    /// Wall-clock seconds a run (a script, or one shell input) may take.
    pub max_seconds: Option<u64>,
    /// Directories scripts may write under (`--allow-write`); none: no writes.
    pub allow_write: Vec<PathBuf>,
    /// Hosts scripts may reach besides the clusters named on the command line.
    pub allow_hosts: Vec<HostRule>,
    /// The run's `--state FILE` (`save_state` writes it under an `--allow-write`
    /// directory, `load_state` reads it).
    pub state_file: Option<PathBuf>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 20_000_000,
            max_call_levels: 64,
            max_string_size: 4 << 20,
            max_array_size: 100_000,
            max_map_size: 100_000,
            max_memory: 512 << 20,
            max_seconds: None,
            allow_write: Vec::new(),
            allow_hosts: Vec::new(),
            state_file: None,
        }
    }
}

/// A script engine bound to a target (live nodes or a simulated copy).
pub struct ScriptEngine {
    engine: Engine,
    host: Arc<Host>,
    docs: Vec<ApiDoc>,
}

impl ScriptEngine {
    /// An engine acting on `target`, sending script output to `io`, importing
    /// modules from `module_paths` (then `REDIS_TRIB_PATH`, then the stdlib).
    pub fn new(
        target: Target,
        io: ScriptIo,
        module_paths: Vec<PathBuf>,
        limits: &Limits,
    ) -> ScriptEngine {
        let sandbox = Arc::new(Sandbox::new(
            limits.max_memory,
            limits.max_seconds,
            &limits.allow_write,
            limits.allow_hosts.clone(),
        ));
        let host = Arc::new(Host::new(target, io.clone(), sandbox.clone()));
        host.set_state_file(limits.state_file.clone());
        let mut engine = Engine::new();
        // Cluster functions must run when the script runs, never at compile time.
        engine.set_optimization_level(OptimizationLevel::Simple);
        engine.set_max_operations(limits.max_operations);
        engine.set_max_call_levels(limits.max_call_levels);
        engine.set_max_string_size(limits.max_string_size);
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        engine.set_max_expr_depths(128, 64);
        let watched = sandbox.clone();
        engine.on_progress(move |_| {
            if let Some(why) = watched.exceeded() {
                return Some(Dynamic::from(why));
            }
            crate::interrupt::requested().then(|| Dynamic::from("interrupted (Ctrl-C)"))
        });
        let o = io.print.clone();
        engine.on_print(move |s| o(s));
        let o = io.log;
        engine.on_debug(move |s, src, pos| match src {
            Some(src) => o(&format!("[{src} {pos}] {s}")),
            None => o(&format!("[{pos}] {s}")),
        });
        let mut paths = module_paths;
        paths.extend(resolver::Resolver::env_paths());
        engine.set_module_resolver(resolver::Resolver::new(paths));
        let docs = api::register(&mut engine, host.clone());
        report::know_functions(docs.iter().map(|d| d.name.clone()));
        ScriptEngine { engine, host, docs }
    }

    /// Every registered API function.
    pub fn docs(&self) -> &[ApiDoc] {
        &self.docs
    }

    /// The whole reference: the API functions, the stdlib modules' functions
    /// (`balance::targets`), then the topics (ARGS, PARAMS, the cluster handle, the
    /// maps functions return, the snapshot schema, Rhai traps); see [`guide`].
    pub fn reference(&self) -> Vec<ApiDoc> {
        let mut all = self.docs.clone();
        all.extend(guide::stdlib_docs());
        all.extend(guide::topics());
        all
    }

    /// The underlying Rhai engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Mutable access to the engine (the REPL registers imported modules).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Resolves a module by name as `import` would (the REPL keeps imports).
    pub fn module(&self, name: &str) -> Result<rhai::Shared<rhai::Module>, Box<EvalAltResult>> {
        // The engine's own resolver: its cache holds what `import` already loaded.
        self.engine
            .module_resolver()
            .resolve(&self.engine, None, name, rhai::Position::NONE)
    }

    /// Releases the operation leases the target holds (the shell does after each
    /// typed line; a script keeps its lease until it ends).
    pub fn release_leases(&self) {
        if let Ok(mut target) = self.host.target.try_lock() {
            target.backend().release_leases();
        }
    }

    /// Replaces the target (the REPL's `.dry on|off`).
    pub fn set_target(&self, target: Target) {
        self.host.set_target(target);
    }

    /// Whether operations are simulated.
    pub fn is_dry_run(&self) -> bool {
        self.host.dry.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the engine runs offline, on a saved topology (`--topology`): no node
    /// can be reached.
    pub fn is_offline(&self) -> bool {
        !self.host.is_networked()
    }

    /// The plan recorded so far by a simulated target.
    pub fn plan(&self) -> Option<Vec<PlanStep>> {
        match &*self.host.target.lock().expect("target lock") {
            Target::Sim(s) => Some(s.steps().to_vec()),
            Target::Live(_) => None,
        }
    }

    /// A scope with `ARGS` (array of strings) and `PARAMS` (map of `--set` pairs).
    pub fn scope(args: &[String], params: &BTreeMap<String, String>) -> Scope<'static> {
        let mut scope = Scope::new();
        let a: Array = args.iter().cloned().map(Dynamic::from).collect();
        let p: Map = params
            .iter()
            .map(|(k, v)| (k.into(), Dynamic::from(v.clone())))
            .collect();
        scope.push_constant("ARGS", a);
        scope.push_constant("PARAMS", p);
        scope
    }

    /// Compiles and runs a whole script (its time limit and memory budget start now).
    /// The error is the operator-facing report; a script's own `exit(n)` or
    /// `fail(msg)` carries its [`crate::error::Kind`].
    pub fn run(&self, name: &str, text: &str, scope: &mut Scope) -> anyhow::Result<Dynamic> {
        let text = strip_shebang(text);
        let ast = self
            .engine
            .compile_with_scope(scope, &text)
            .map_err(|e| Compile(report::report(&EvalAltResult::from(e), name, &text)))?;
        let _watch = self.host.sandbox.start();
        self.engine
            .eval_ast_with_scope::<Dynamic>(scope, &ast)
            .map_err(|e| report::to_error(&e, name, &text))
    }

    /// Compiles `text` against `scope` (the REPL).
    pub fn compile(&self, scope: &Scope, text: &str) -> Result<AST, Box<EvalAltResult>> {
        self.engine
            .compile_with_scope(scope, text)
            .map_err(Into::into)
    }

    /// Runs a compiled AST (the REPL): the time limit counts from now, memory from
    /// the engine's creation (what the session keeps counts).
    pub fn eval_ast(&self, scope: &mut Scope, ast: &AST) -> Result<Dynamic, Box<EvalAltResult>> {
        let _watch = self.host.sandbox.start_timer();
        self.engine.eval_ast_with_scope::<Dynamic>(scope, ast)
    }

    /// The sandbox (what scripts may reach and write, their limits).
    pub fn sandbox(&self) -> &Sandbox {
        &self.host.sandbox
    }

    /// Lets scripts reach these nodes and every node their clusters know (the
    /// script's arguments that are addresses, the shell's cluster).
    pub fn allow_cluster(&self, addrs: &[crate::addr::Addr]) {
        self.host.sandbox.allow_cluster(addrs);
    }

    /// Whether scripts may reach `addr` (looking up what the named clusters know when
    /// it is not known yet); the error names `--allow-host`.
    pub fn check_reach(&self, what: &str, addr: &crate::addr::Addr) -> Result<(), String> {
        self.host.reach(what, addr).map_err(|e| report::message(&e))
    }
}

/// A script that does not compile: nothing ran (see [`ScriptEngine::run`]).
#[derive(Debug)]
pub struct Compile(pub String);

impl std::fmt::Display for Compile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Compile {}

/// Blanks a `#!` first line (keeping line numbers), so scripts can be executables.
pub fn strip_shebang(text: &str) -> String {
    if text.starts_with("#!") {
        match text.find('\n') {
            Some(i) => text[i..].to_string(),
            None => String::new(),
        }
    } else {
        text.to_string()
    }
}

/// The API reference as Markdown, generated from the registered functions.
pub fn reference_markdown(docs: &[ApiDoc]) -> String {
    let mut out = String::from("| function | what it does |\n|---|---|\n");
    for d in docs {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            d.signature,
            d.doc.replace('|', "\\|")
        ));
    }
    out.push_str(&format!(
        "\nNode fields: {}.\n",
        NODE_FIELDS
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&guide::markdown());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sim::Sim;
    use crate::topology::{Topology, MAX_SNAPSHOT_NODES};

    /// `masters` masters at 10.x.y.z:7000, each with one replica on port 7001, the
    /// slots split among the masters in order; every node with keys, a state and a
    /// server (the most a topology read fills in).
    fn big_topology(masters: usize) -> Topology {
        let id = |i: usize, r: usize| format!("{:038x}{r:02x}", i + 1);
        let mut lines = Vec::new();
        for i in 0..masters {
            let host = format!("10.{}.{}.{}", i / 62500, i / 250 % 250, i % 250 + 1);
            let (first, last) = (i * 16384 / masters, (i + 1) * 16384 / masters);
            let slots = if last > first {
                format!("{first}-{}", last - 1)
            } else {
                String::new()
            };
            lines.push(format!(
                "{} {host}:7000@17000 master - 0 0 {} connected {slots}",
                id(i, 0),
                i + 1
            ));
            lines.push(format!(
                "{} {host}:7001@17001 slave {} 0 0 {} connected",
                id(i, 1),
                id(i, 0),
                i + 1
            ));
        }
        let mut t = Topology::from_node_lines(&lines).unwrap();
        t.entry_id = id(0, 0);
        for n in &t.nodes {
            t.keys.insert(n.node_id.clone(), 10);
            t.states.insert(n.node_id.clone(), "ok".into());
            t.servers.insert(n.node_id.clone(), "valkey 9.0.0".into());
        }
        t
    }

    fn quiet() -> ScriptIo {
        ScriptIo {
            print: Arc::new(|_| {}),
            log: Arc::new(|_| {}),
        }
    }

    #[test]
    fn the_largest_topology_fits_the_data_size_limits() {
        // Nodes as maps counted ~17 map entries each: 6,000 nodes passed 100,000.
        let limits = Limits::default();
        let mut engine = Engine::new_raw();
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        let topo = big_topology(MAX_SNAPSHOT_NODES / 2);
        assert_eq!(topo.nodes.len(), MAX_SNAPSHOT_NODES);
        let value = Dynamic::from_map(convert::topology_map(topo));
        engine.ensure_data_size_within_limits(&value).unwrap();
    }

    #[test]
    fn scripts_read_a_large_topology_as_node_values() {
        let sim = Sim::offline(&big_topology(3000));
        let engine = ScriptEngine::new(Target::Sim(sim), quiet(), Vec::new(), &Limits::default());
        let mut scope = ScriptEngine::scope(&[], &BTreeMap::new());
        let text = r#"
            let t = topology("10.0.0.1:7000");
            let masters = 0;
            for n in t.nodes { if n.role_in_cluster == "master" { masters += 1; } }
            let r = t.nodes[3000];
            [masters, t.nodes.len(), type_of(r), r["port"], r.cport, r.master_id == t.nodes[0].node_id,
             t.keys[r.node_id], t.states[r.node_id], t.entry_id == t.nodes[0].node_id]
        "#;
        let got: Array = engine.run("t.rhai", text, &mut scope).unwrap().cast();
        let got: Vec<String> = got.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            ["3000", "6000", "Node", "7001", "17001", "true", "10", "ok", "true"]
        );
    }

    #[test]
    fn zone_plans_stay_linear_in_the_masters() {
        // 400 masters in three zones, each zone's masters together (as addresses
        // often group them), every replica in its master's zone: every master needs
        // a move. plan_replicas scanned every master per master: more than the 2
        // million operations allowed here (the default 20 million stopped it from
        // about 1,000 masters). The plan is the one that scan made: 532 moves.
        let mut topo = big_topology(400);
        let zone_of: BTreeMap<String, String> = topo
            .masters()
            .enumerate()
            .map(|(i, m)| (m.node_id.clone(), format!("z{}", i * 3 / 400)))
            .collect();
        for n in &mut topo.nodes {
            let owner = n.master_id.as_ref().unwrap_or(&n.node_id);
            n.zone = zone_of.get(owner).cloned();
        }
        let limits = Limits {
            max_operations: 2_000_000,
            ..Limits::default()
        };
        let sim = Sim::offline(&topo);
        let engine = ScriptEngine::new(Target::Sim(sim), quiet(), Vec::new(), &limits);
        let mut scope = ScriptEngine::scope(&[], &BTreeMap::new());
        let text = r#"
            import "zones" as zones;
            let nodes = list_nodes("10.0.0.1:7000");
            [zones::same_zone_masters(nodes).len(), zones::plan_replicas(nodes).len()]
        "#;
        let got: Array = engine.run("z.rhai", text, &mut scope).unwrap().cast();
        let got: Vec<String> = got.iter().map(|d| d.to_string()).collect();
        assert_eq!(got, ["400", "532"]);
    }
}
