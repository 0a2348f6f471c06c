//! The script API: every cluster operation and helper registered as a Rhai function,
//! each with its signature and one line of doc recorded as it is registered (that
//! record is what `help()` and `redis-trib doc` print: never a hand-kept list).

use super::cluster_handle::ClusterHandle;
use super::convert::{
    addr_of, command_args, err, number, plan_of, plan_to_array, reply, rt, slots_of,
};
use super::report::Ending;
use super::sandbox::Sandbox;
use crate::addr::Addr;
use crate::backend::live::Live;
use crate::backend::sim::Sim;
use crate::backend::{Backend, Event};
use crate::balance::{base_balance_plan, Holder, Move};
use crate::conn::ConnOpts;
use crate::ops::{self, Balancer};
use crate::slots::format_ranges;
use crate::topology::Node;
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, Map, NativeCallContext, INT,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where script operations go: real nodes, or a simulated copy (dry run / offline).
pub enum Target {
    /// Real nodes.
    Live(Live),
    /// A simulated copy; mutations are recorded as a plan.
    Sim(Sim),
}

impl Target {
    /// The backend behind the target.
    pub fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Target::Live(l) => l,
            Target::Sim(s) => s,
        }
    }

    /// Sends every event of the operations that follow to `tap` (`None`: stop).
    pub fn set_tap(&mut self, tap: Option<std::sync::mpsc::Sender<Event>>) {
        match self {
            Target::Live(l) => l.set_tap(tap),
            Target::Sim(s) => s.set_tap(tap),
        }
    }

    /// How the target reaches real nodes (none for an offline simulation).
    pub fn conn_opts(&self) -> Option<ConnOpts> {
        match self {
            Target::Live(l) => Some(l.conn_opts().clone()),
            Target::Sim(s) => s.source().map(|l| l.conn_opts().clone()),
        }
    }
}

/// What registered functions share: the target and where log lines go.
pub struct Host {
    /// The target, locked per call.
    pub target: Mutex<Target>,
    /// Whether `target` is simulated; readable while the target is locked (from a
    /// weight or plan callback). Kept in step by [`Host::set_target`].
    pub dry: AtomicBool,
    /// Where script output goes.
    pub io: ScriptIo,
    /// The script's `on_progress` callback, if it set one.
    pub listener: Mutex<Option<FnPtr>>,
    /// The sandbox's limits and what scripts may reach and write.
    pub sandbox: Arc<Sandbox>,
    /// Whether the target reaches real nodes (false offline: nothing to guard).
    networked: AtomicBool,
    /// The run's `--state FILE` (`save_state`, `load_state`).
    state_file: Mutex<Option<std::path::PathBuf>>,
}

/// Where a script's output goes: `print` is its data (stdout for the binary);
/// `log` and `debug` are remarks (stderr), readable next to progress output.
#[derive(Clone)]
pub struct ScriptIo {
    /// Receives `print` lines.
    pub print: Arc<dyn Fn(&str) + Send + Sync>,
    /// Receives `log` and `debug` lines.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Host {
    /// A host for `target`.
    pub fn new(target: Target, io: ScriptIo, sandbox: Arc<Sandbox>) -> Host {
        Host {
            dry: AtomicBool::new(matches!(target, Target::Sim(_))),
            networked: AtomicBool::new(target.conn_opts().is_some()),
            target: Mutex::new(target),
            io,
            listener: Mutex::new(None),
            sandbox,
            state_file: Mutex::new(None),
        }
    }

    /// Sets the run's `--state FILE`.
    pub fn set_state_file(&self, file: Option<std::path::PathBuf>) {
        if let Ok(mut f) = self.state_file.lock() {
            *f = file;
        }
    }

    /// The run's `--state FILE`, if any.
    pub fn state_file(&self) -> Option<std::path::PathBuf> {
        self.state_file.lock().ok().and_then(|f| f.clone())
    }

    /// Replaces the target.
    pub fn set_target(&self, target: Target) {
        let dry = matches!(target, Target::Sim(_));
        let networked = target.conn_opts().is_some();
        *self.target.lock().expect("target lock") = target;
        self.dry.store(dry, Ordering::SeqCst);
        self.networked.store(networked, Ordering::SeqCst);
    }

    /// Whether the target reaches real nodes (false for an offline run, `--topology`).
    pub fn is_networked(&self) -> bool {
        self.networked.load(Ordering::SeqCst)
    }

    /// The address a script passed (`"host:port"` or a node), once the sandbox lets
    /// scripts reach it.
    pub fn addr(&self, what: &str, d: &Dynamic) -> Result<Addr, Box<EvalAltResult>> {
        let a = addr_of(d)?;
        self.reach(what, &a)?;
        Ok(a)
    }

    /// [`Host::addr`] for each address of an array.
    pub fn addrs(&self, what: &str, a: &Array) -> Result<Vec<Addr>, Box<EvalAltResult>> {
        a.iter().map(|d| self.addr(what, d)).collect()
    }

    /// Whether scripts may reach `addr`: a node named on the command line, a node
    /// their clusters know (asked again when `addr` is not known yet), or an allowed
    /// host. Offline runs reach nothing, so nothing is refused.
    pub fn reach(&self, what: &str, addr: &Addr) -> Result<(), Box<EvalAltResult>> {
        let sandbox = &self.sandbox;
        if !self.networked.load(Ordering::SeqCst) || sandbox.reachable(addr) {
            return Ok(());
        }
        for seed in sandbox.seeds() {
            // A seed that does not answer (or is not a cluster node) teaches nothing.
            if let Ok(guard) = self.target.try_lock().as_mut() {
                if let Ok(view) = guard.backend().view(&seed) {
                    sandbox.learn(view.nodes.iter().map(Node::addr));
                }
            }
            if sandbox.reachable(addr) {
                return Ok(());
            }
        }
        Err(err(sandbox.unreachable_message(what, addr)))
    }

    /// An operation's error, said as the time limit when the run passed it (the
    /// operation stopped at its next safe point because of it).
    fn failed(&self, e: anyhow::Error) -> Box<EvalAltResult> {
        if self.sandbox.timed_out() {
            err(format!("{} ({e:#})", self.sandbox.time_message()))
        } else {
            rt(e)
        }
    }

    /// How the target reaches real nodes; `what` names the caller in errors.
    pub fn conn_opts(&self, what: &str) -> Result<ConnOpts, Box<EvalAltResult>> {
        self.target
            .try_lock()
            .map_err(|_| {
                err(format!(
                    "{what}() cannot be called from inside a callback (weight, plan or on_progress)"
                ))
            })?
            .conn_opts()
            .ok_or_else(|| {
                err(format!(
                    "{what}(): an offline run (--topology) has no nodes to talk to"
                ))
            })
    }

    /// Runs an operation: as [`Host::with`], and when the script set an `on_progress`
    /// callback, the operation runs on a worker thread while this (the script's)
    /// thread hands each of its events to the callback as it happens. A failing
    /// callback does not stop the operation; its error is returned afterwards.
    pub fn run<T: Send>(
        &self,
        ctx: &NativeCallContext,
        f: impl FnOnce(&mut dyn Backend) -> anyhow::Result<T> + Send,
    ) -> Result<T, Box<EvalAltResult>> {
        let listener = self.listener.lock().map(|l| l.clone()).unwrap_or(None);
        let Some(callback) = listener else {
            return self.with(f);
        };
        let mut guard = self.target.try_lock().map_err(|_| {
            err("cluster functions cannot be called from inside a callback: compute what you need before")
        })?;
        let (tx, rx) = std::sync::mpsc::channel::<Event>();
        guard.set_tap(Some(tx));
        let target: &mut Target = &mut guard;
        let mut failed: Option<Box<EvalAltResult>> = None;
        let outcome = std::thread::scope(|scope| {
            let worker = scope.spawn(move || f(target.backend()));
            let mut deliver = |e: Event| {
                if failed.is_none() {
                    if let Err(e) = callback.call_within_context::<Dynamic>(ctx, (event_value(&e),))
                    {
                        failed = Some(e);
                    }
                }
            };
            while !worker.is_finished() {
                if let Ok(e) = rx.recv_timeout(Duration::from_millis(20)) {
                    deliver(e);
                }
            }
            let outcome = worker.join();
            while let Ok(e) = rx.try_recv() {
                deliver(e);
            }
            outcome
        });
        guard.set_tap(None);
        let value = outcome
            .map_err(|_| err("the operation panicked"))?
            .map_err(|e| self.failed(e))?;
        match failed {
            // exit(n) / fail(msg) in the callback end the script as anywhere else.
            Some(e) if super::report::ending(&e).is_some() => Err(e),
            Some(e) => Err(err(format!("the on_progress callback failed: {e}"))),
            None => Ok(value),
        }
    }

    /// Runs `f` on the backend; a call from inside a callback of another cluster
    /// function gets a clear error instead of a deadlock.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Backend) -> anyhow::Result<T>,
    ) -> Result<T, Box<EvalAltResult>> {
        let mut guard = self.target.try_lock().map_err(|_| {
            err("cluster functions cannot be called from inside a callback (weight, plan or on_progress): compute what you need before")
        })?;
        f(guard.backend()).map_err(|e| self.failed(e))
    }
}

/// An operation's event as a script value: `#{ kind: "step" | "warning" | "moving" |
/// "keys", text, ... }` (moves add src, dst, slots_done, slots_total, keys; key jobs
/// add done, total).
pub fn event_value(e: &Event) -> Dynamic {
    let mut m = Map::new();
    let mut put = |k: &str, v: Dynamic| {
        m.insert(k.into(), v);
    };
    let text = match e {
        Event::Step(t) | Event::Warning(t) => t.clone(),
        other => crate::render::event_line(other, crate::render::Painter::new(false, false))
            .trim()
            .to_string(),
    };
    put("text", text.into());
    match e {
        Event::Step(_) => put("kind", "step".into()),
        Event::Warning(_) => put("kind", "warning".into()),
        Event::Progress(p) => {
            put("kind", "moving".into());
            put("src", p.src.clone().into());
            put("dst", p.dst.clone().into());
            put("slots_done", Dynamic::from_int(p.slots_done as INT));
            put("slots_total", Dynamic::from_int(p.slots_total as INT));
            put("keys", Dynamic::from_int(p.keys_moved as INT));
        }
        Event::Keys(k) => {
            put("kind", "keys".into());
            put("done", Dynamic::from_int(k.done as INT));
            put("total", Dynamic::from_int(k.total as INT));
        }
    }
    m.into()
}

/// One registered function, as `help()` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ApiDoc {
    /// Function name.
    pub name: String,
    /// `name(param: Type, ...) -> Type`.
    pub signature: String,
    /// One line of documentation.
    pub doc: String,
}

/// Fields of node values (for completion and docs).
pub const NODE_FIELDS: &[&str] = &[
    "node_id",
    "host",
    "port",
    "addr",
    "role_in_cluster",
    "master_id",
    "assigned_slots",
    "slot_count",
    "slots_migrating",
    "slots_importing",
    "flags",
    "fail",
    "is_master",
    "config_epoch",
    "connected",
    "used_memory",
    "maxmemory",
    "keys",
    "zone",
];

/// The engine functions are registered into, and the docs recorded so far.
pub(super) struct Registry<'a> {
    pub(super) engine: &'a mut Engine,
    pub(super) docs: Vec<ApiDoc>,
}

macro_rules! api {
    ($reg:expr, $name:literal, [$($param:literal),*] -> $ret:literal, $doc:literal, $f:expr) => {{
        rhai::FuncRegistration::new($name)
            .with_params_info([$($param,)* $ret])
            .with_comments([concat!("/// ", $doc)])
            .with_volatility(true)
            .register_into_engine($reg.engine, $f);
        let params: Vec<&str> = vec![$($param),*];
        $reg.docs.push($crate::script::api::ApiDoc {
            name: $name.into(),
            signature: format!("{}({}) -> {}", $name, params.join(", "), $ret),
            doc: $doc.into(),
        });
    }};
}
pub(super) use api;

/// Registers the node type and every API function; returns their docs.
pub fn register(engine: &mut Engine, host: Arc<Host>) -> Vec<ApiDoc> {
    register_node_type(engine);
    let mut reg = Registry {
        engine,
        docs: Vec::new(),
    };
    let h = host.clone();
    api!(reg, "list_nodes", ["addr: String"] -> "Array", "Every node of the cluster `addr` belongs to, masters first (Node values, with keys, used_memory, maxmemory and zone).",
    move |addr: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        let a = h.addr("list_nodes", &addr)?;
        let topo = h.with(|b| {
            let t = ops::topology_with_metrics(b, &a)?;
            ops::zones::learn_topology(b, &t);
            Ok(t)
        })?;
        Ok(topo.nodes.into_iter().map(Dynamic::from).collect())
    });
    let h = host.clone();
    api!(reg, "list_masters", ["addr: String"] -> "Array", "The masters of the cluster `addr` belongs to.",
    move |addr: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        let a = h.addr("list_masters", &addr)?;
        let topo = h.with(|b| {
            let t = ops::topology_with_metrics(b, &a)?;
            ops::zones::learn_topology(b, &t);
            Ok(t)
        })?;
        Ok(topo.masters().cloned().map(Dynamic::from).collect())
    });
    let h = host.clone();
    api!(reg, "node", ["addr: String"] -> "Node", "The node at `addr`, as it describes itself.",
    move |addr: Dynamic| -> Result<Node, Box<EvalAltResult>> {
        let a = h.addr("node", &addr)?;
        h.with(|b| {
            let v = b.view(&a)?;
            let mut me = v.myself().clone();
            me.flags.retain(|f| f != "myself");
            me.keys = Some(v.keys);
            ops::zones::zone_of(b, &a);
            if let Ok((used, max)) = ops::memory_of(b, &a) {
                me.used_memory = Some(used);
                me.maxmemory = Some(max);
            }
            Ok(me)
        })
    });
    let h = host.clone();
    api!(reg, "topology", ["addr: String"] -> "Map", "The whole cluster as a map (the `list --json` document).",
    move |addr: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
        let a = h.addr("topology", &addr)?;
        let topo = h.with(|b| ops::topology_with_metrics(b, &a))?;
        rhai::serde::to_dynamic(&topo)
    });
    let h = host.clone();
    api!(reg, "node_info", ["addr: String"] -> "Map", "One node's INFO as a map: numbers as numbers, db0/slave0 lines as maps (node_info(a).used_memory, node_info(a).db0.keys); offline, what the snapshot knows.",
    move |addr: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
        let a = h.addr("node_info", &addr)?;
        node_info(&h, &a, None)
    });
    let h = host.clone();
    api!(reg, "node_info", ["addr: String", "section: String"] -> "Map", "One INFO section of one node as a map: node_info(a, \"memory\").maxmemory.",
    move |addr: Dynamic, section: &str| -> Result<Dynamic, Box<EvalAltResult>> {
        let a = h.addr("node_info", &addr)?;
        node_info(&h, &a, Some(section))
    });
    let h = host.clone();
    api!(reg, "slot_stats", ["addr: String"] -> "Array", "Keys per slot of the slots a master serves: [#{ slot, keys }, ...] (CLUSTER SLOT-STATS where the server has it, COUNTKEYSINSLOT pipelined otherwise; offline, the snapshot's keys spread evenly).",
    move |addr: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        let a = h.addr("slot_stats", &addr)?;
        let stats = h.with(|b| ops::slot_stats(b, &a))?;
        Ok(stats
            .into_iter()
            .map(|(slot, keys)| {
                let mut m = Map::new();
                m.insert("slot".into(), Dynamic::from_int(slot as INT));
                m.insert("keys".into(), Dynamic::from_int(keys.min(INT::MAX as u64) as INT));
                Dynamic::from_map(m)
            })
            .collect())
    });
    let h = host.clone();
    api!(reg, "start_cluster", ["addr: String"] -> "()", "One free node becomes a cluster owning all 16384 slots.",
    move |ctx: NativeCallContext, addr: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let a = h.addr("start_cluster", &addr)?;
        h.run(&ctx, |b| ops::start(b, &a, 16384))
    });
    let h = host.clone();
    api!(reg, "start_cluster", ["addr: String", "options: Map"] -> "()", "As start_cluster; options: #{ max_slots: N } (slots per ADDSLOTS).",
    move |ctx: NativeCallContext, addr: Dynamic, opts: Map| -> Result<(), Box<EvalAltResult>> {
        let a = h.addr("start_cluster", &addr)?;
        let max = max_slots(&opts, "start_cluster")?;
        h.run(&ctx, |b| ops::start(b, &a, max))
    });
    let h = host.clone();
    api!(reg, "start_cluster_on_multi", ["addrs: Array"] -> "()", "Several free nodes become one cluster, slots split evenly in order.",
    move |ctx: NativeCallContext, addrs: Array| -> Result<(), Box<EvalAltResult>> {
        let a = h.addrs("start_cluster_on_multi", &addrs)?;
        h.run(&ctx, |b| ops::start_multi(b, &a, 16384))
    });
    let h = host.clone();
    api!(reg, "start_cluster_on_multi", ["addrs: Array", "options: Map"] -> "()", "As start_cluster_on_multi; options: #{ max_slots: N }.",
    move |ctx: NativeCallContext, addrs: Array, opts: Map| -> Result<(), Box<EvalAltResult>> {
        let a = h.addrs("start_cluster_on_multi", &addrs)?;
        let max = max_slots(&opts, "start_cluster_on_multi")?;
        h.run(&ctx, |b| ops::start_multi(b, &a, max))
    });
    let h = host.clone();
    api!(reg, "join_cluster", ["cluster: String", "new: String"] -> "()", "Add a free node as a master and move it its fair share of slots.",
    move |ctx: NativeCallContext, cluster: Dynamic, new: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let (c, n) = (h.addr("join_cluster", &cluster)?, h.addr("join_cluster", &new)?);
        h.run(&ctx, |b| ops::join(b, &c, &n, &mut ops::DefaultBalancer))
    });
    let h = host.clone();
    api!(reg, "join_cluster", ["cluster: String", "new: String", "options: Map"] -> "()",
    "As join_cluster with #{ weight: |node| w, plan: |masters, new_node| [[src, dst, count], ...] }.",
    move |ctx: NativeCallContext, cluster: Dynamic, new: Dynamic, opts: Map| -> Result<(), Box<EvalAltResult>> {
        let (c, n) = (h.addr("join_cluster", &cluster)?, h.addr("join_cluster", &new)?);
        check_keys(&opts, &["weight", "plan"], "join_cluster")?;
        let fn_opt = |k: &str| -> Result<Option<FnPtr>, Box<EvalAltResult>> {
            match opts.get(k) {
                None => Ok(None),
                Some(v) => v.clone().try_cast::<FnPtr>().map(Some).ok_or_else(|| {
                    err(format!("join_cluster option '{k}' must be a function (|...| ...), got {}", v.type_name()))
                }),
            }
        };
        let mut balancer = ScriptBalancer { ctx: &ctx, weight: fn_opt("weight")?, plan: fn_opt("plan")?, script_error: None };
        let result = h.with(|b| ops::join(b, &c, &n, &mut balancer));
        match balancer.script_error.take() {
            Some(e) => Err(e),
            None => result,
        }
    });
    let h = host.clone();
    api!(reg, "join_no_load", ["cluster: String", "new: String"] -> "()", "Add a free node as a master with no slots.",
    move |ctx: NativeCallContext, cluster: Dynamic, new: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let (c, n) = (h.addr("join_no_load", &cluster)?, h.addr("join_no_load", &new)?);
        h.run(&ctx, |b| ops::join_no_load(b, &c, &n).map(|_| ()))
    });
    let h = host.clone();
    api!(reg, "replicate", ["master: String", "slave: String"] -> "()", "A free node becomes a replica of master (of its master if it is a replica).",
    move |ctx: NativeCallContext, master: Dynamic, slave: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let (m, s) = (h.addr("replicate", &master)?, h.addr("replicate", &slave)?);
        h.run(&ctx, |b| ops::replicate(b, &m, &s))
    });
    let h = host.clone();
    api!(reg, "quit_cluster", ["addr: String"] -> "()", "Remove a node: its slots and keys go to the other masters, then it is forgotten and reset.",
    move |ctx: NativeCallContext, addr: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let a = h.addr("quit_cluster", &addr)?;
        h.run(&ctx, |b| ops::quit(b, &a))
    });
    let h = host.clone();
    api!(reg, "shutdown_cluster", ["addr: String"] -> "()", "Reset the last node of a cluster (refused while it holds keys).",
    move |ctx: NativeCallContext, addr: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let a = h.addr("shutdown_cluster", &addr)?;
        h.run(&ctx, |b| ops::shutdown(b, &a))
    });
    let h = host.clone();
    api!(reg, "fix_migrating", ["addr: String"] -> "INT", "Finish or repair every open slot of the cluster; returns how many were repaired.",
    move |ctx: NativeCallContext, addr: Dynamic| -> Result<INT, Box<EvalAltResult>> {
        let a = h.addr("fix_migrating", &addr)?;
        h.run(&ctx, |b| ops::fix(b, &a)).map(|r| r.len() as INT)
    });
    let h = host.clone();
    api!(reg, "migrate_slots", ["src: String", "dst: String", "slots: Array"] -> "INT", "Move exactly these slots (array, integer or \"0 2 4-7\") with their keys; returns keys moved.",
    move |ctx: NativeCallContext, src: Dynamic, dst: Dynamic, slots: Dynamic| -> Result<INT, Box<EvalAltResult>> {
        let (s, d, sl) = (h.addr("migrate_slots", &src)?, h.addr("migrate_slots", &dst)?, slots_of(&slots)?);
        h.run(&ctx, |b| ops::migrate_slots(b, &s, &d, &sl)).map(|k| k as INT)
    });
    let h = host.clone();
    api!(reg, "apply_plan", ["cluster: String", "plan: Array"] -> "Map",
    "Run a plan of moves [src, dst, count] or #{ src, dst, slots | count } (ends: nodes, ids, 8+ prefixes or addresses), validated whole first; returns #{ moves, slots, keys }.",
    move |ctx: NativeCallContext, cluster: Dynamic, plan: Array| -> Result<Map, Box<EvalAltResult>> {
        let c = h.addr("apply_plan", &cluster)?;
        let moves = plan_moves_of(plan)?;
        h.run(&ctx, |b| ops::apply_plan(b, &c, &moves, None)).map(|a| applied_map(&a))
    });
    let h = host.clone();
    api!(reg, "apply_plan", ["cluster: String", "plan: Array", "planned_from: Array"] -> "Map",
    "As apply_plan(cluster, plan), refused when a master of planned_from (the Nodes the plan was made from) holds other slots now.",
    move |ctx: NativeCallContext, cluster: Dynamic, plan: Array, from: Array| -> Result<Map, Box<EvalAltResult>> {
        let c = h.addr("apply_plan", &cluster)?;
        let moves = plan_moves_of(plan)?;
        let from = from
            .into_iter()
            .map(|d| d.try_cast::<Node>().ok_or_else(|| err("apply_plan: planned_from must be an array of Node values (list_masters(addr))")))
            .collect::<Result<Vec<Node>, _>>()?;
        h.run(&ctx, |b| ops::apply_plan(b, &c, &moves, Some(&from))).map(|a| applied_map(&a))
    });
    let h = host.clone();
    api!(reg, "rescue_cluster", ["addr: String", "free: String"] -> "()", "Give every failed or uncovered slot to a free node.",
    move |ctx: NativeCallContext, addr: Dynamic, free: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let (a, f) = (h.addr("rescue_cluster", &addr)?, h.addr("rescue_cluster", &free)?);
        h.run(&ctx, |b| ops::rescue(b, &a, &f))
    });
    let h = host.clone();
    api!(reg, "forget_node", ["cluster: String", "node: String"] -> "()", "Remove a dead or unwanted node (id, id prefix, address or node value) from every live node's table (as `forget`).",
    move |ctx: NativeCallContext, cluster: Dynamic, node: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let c = h.addr("forget_node", &cluster)?;
        let spec = match node.clone().try_cast::<Node>() {
            Some(n) => n.node_id,
            None => node
                .into_immutable_string()
                .map_err(|t| err(format!("forget_node: expected a node id, an address or a node, got {t}")))?
                .to_string(),
        };
        h.run(&ctx, |b| ops::forget(b, &c, &spec).map(|_| ()))
    });
    let h = host.clone();
    api!(reg, "failover", ["replica: String"] -> "()", "A replica takes over its master's slots (CLUSTER FAILOVER, coordinated with the live master); returns once every node agrees.",
    move |ctx: NativeCallContext, replica: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let r = h.addr("failover", &replica)?;
        h.run(&ctx, |b| ops::failover(b, &r, crate::backend::FailoverMode::Default).map(|_| ()))
    });
    let h = host.clone();
    api!(reg, "failover", ["replica: String", "options: Map"] -> "()", "As failover with #{ force: bool, takeover: bool } (as `failover --force` / `--takeover`).",
    move |ctx: NativeCallContext, replica: Dynamic, opts: Map| -> Result<(), Box<EvalAltResult>> {
        let r = h.addr("failover", &replica)?;
        check_keys(&opts, &["force", "takeover"], "failover")?;
        let flag = |key: &str| -> Result<bool, Box<EvalAltResult>> {
            match opts.get(key) {
                None => Ok(false),
                Some(v) => v
                    .as_bool()
                    .map_err(|_| err(format!("failover: {key} must be true or false, got {v}"))),
            }
        };
        let mode = match (flag("force")?, flag("takeover")?) {
            (true, true) => return Err(err("failover: give force or takeover, not both")),
            (_, true) => crate::backend::FailoverMode::Takeover,
            (true, false) => crate::backend::FailoverMode::Force,
            (false, false) => crate::backend::FailoverMode::Default,
        };
        h.run(&ctx, |b| ops::failover(b, &r, mode).map(|_| ()))
    });
    let h = host.clone();
    api!(reg, "move_replica", ["replica: String", "new_master: String"] -> "bool",
        "A replica of the cluster (or an empty master) replicates another master (CLUSTER REPLICATE), returning once every node agrees and its link is up; false when it already did.",
    move |ctx: NativeCallContext, replica: Dynamic, new_master: Dynamic| -> Result<bool, Box<EvalAltResult>> {
        let (r, m) = (h.addr("move_replica", &replica)?, h.addr("move_replica", &new_master)?);
        h.run(&ctx, |b| ops::move_replica(b, &r, &m)).map(|d| d.changed)
    });
    let h = host.clone();
    api!(reg, "create_cluster", ["addrs: Array", "options: Map"] -> "()", "Free nodes become a cluster; options: #{ replicas: N, max_slots: N } (as `create`).",
    move |ctx: NativeCallContext, addrs: Array, opts: Map| -> Result<(), Box<EvalAltResult>> {
        let a = h.addrs("create_cluster", &addrs)?;
        check_keys(&opts, &["replicas", "max_slots"], "create_cluster")?;
        let replicas = int_opt(&opts, "replicas", 0, "create_cluster")?;
        let max = int_opt(&opts, "max_slots", 16384, "create_cluster")?.max(1);
        h.run(&ctx, |b| ops::create(b, &a, replicas, max))
    });
    let h = host.clone();
    api!(reg, "set_timeout", ["addr: String", "ms: INT"] -> "INT", "Set cluster-node-timeout on every node (as `set-timeout`); returns how many nodes.",
    move |ctx: NativeCallContext, addr: Dynamic, ms: INT| -> Result<INT, Box<EvalAltResult>> {
        let a = h.addr("set_timeout", &addr)?;
        let ms = u64::try_from(ms).map_err(|_| err(format!("set_timeout: {ms} ms is negative")))?;
        h.run(&ctx, |b| ops::set_timeout(b, &a, ms)).map(|n| n as INT)
    });
    let h = host.clone();
    api!(reg, "check", ["addr: String"] -> "Map", "Health check: #{ healthy, problems: [...], notes: [...] } (as `check`).",
    move |addr: Dynamic| -> Result<Map, Box<EvalAltResult>> {
        let a = h.addr("check", &addr)?;
        let r = h.with(|b| ops::check(b, &a))?;
        let mut m = Map::new();
        m.insert("healthy".into(), r.healthy().into());
        m.insert("problems".into(), r.problems.iter().cloned().map(Dynamic::from).collect::<Array>().into());
        m.insert("notes".into(), r.notes.iter().cloned().map(Dynamic::from).collect::<Array>().into());
        Ok(m)
    });
    let h = host.clone();
    api!(reg, "info", ["addr: String"] -> "Map", "Keys, slots and replicas per master with totals (as `info`).",
    move |addr: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
        let a = h.addr("info", &addr)?;
        let topo = h.with(|b| ops::topology(b, &a))?;
        rhai::serde::to_dynamic(ops::info(&topo))
    });
    let h = host.clone();
    api!(reg, "rebalance", ["addr: String", "options: Map"] -> "Array",
    "Even out slots, keys or memory: #{ weights: #{ \"node\": w }, threshold: pct, use_empty_masters: bool, by: \"slots\"|\"keys\"|\"memory\" }; returns the moves made.",
    move |ctx: NativeCallContext, addr: Dynamic, opts: Map| -> Result<Array, Box<EvalAltResult>> {
        let a = h.addr("rebalance", &addr)?;
        check_keys(&opts, &["weights", "threshold", "use_empty_masters", "by"], "rebalance")?;
        let by: ops::BalanceBy = match opts.get("by") {
            None => ops::BalanceBy::Slots,
            Some(v) => v.to_string().parse().map_err(rt)?,
        };
        let mut o = ops::RebalanceOpts::default();
        if let Some(w) = opts.get("weights") {
            let w = w.clone().try_cast::<Map>().ok_or_else(|| err("rebalance: weights must be a map #{ \"node\": weight }"))?;
            for (k, v) in w {
                o.weights.push((k.to_string(), number(&v, &format!("the weight of {k}"))?));
            }
        }
        if let Some(t) = opts.get("threshold") {
            o.threshold_pct = number(t, "rebalance threshold")?;
        }
        if let Some(u) = opts.get("use_empty_masters") {
            o.use_empty_masters = u.as_bool().map_err(|_| err("rebalance: use_empty_masters must be true or false"))?;
        }
        h.run(&ctx, |b| ops::rebalance_by(b, &a, &o, by)).map(|m| plan_to_array(&m))
    });
    let h = host.clone();
    api!(reg, "reshard", ["addr: String", "options: Map"] -> "Array",
    "Move exactly N slots: #{ to: node, slots: N, from: [nodes] or \"all\" }; returns the moves made.",
    move |ctx: NativeCallContext, addr: Dynamic, opts: Map| -> Result<Array, Box<EvalAltResult>> {
        let a = h.addr("reshard", &addr)?;
        check_keys(&opts, &["to", "slots", "from"], "reshard")?;
        let to = opts.get("to").ok_or_else(|| err("reshard: option 'to' is required"))?;
        let to = match to.clone().try_cast::<Node>() {
            Some(n) => n.node_id,
            None => to.to_string(),
        };
        let count = int_opt(&opts, "slots", 0, "reshard")?;
        let from: Vec<String> = match opts.get("from") {
            None => Vec::new(),
            Some(f) if f.to_string() == "all" => Vec::new(),
            Some(f) => match f.clone().try_cast::<Array>() {
                Some(list) => list
                    .into_iter()
                    .map(|d| d.clone().try_cast::<Node>().map(|n| n.node_id).unwrap_or_else(|| d.to_string()))
                    .collect(),
                None => return Err(err("reshard: from must be an array of nodes or \"all\"")),
            },
        };
        h.run(&ctx, |b| ops::reshard(b, &a, &from, &to, count)).map(|m| plan_to_array(&m))
    });
    api!(reg, "base_balance_plan", ["masters: Array"] -> "Array", "The default plan for these masters, weight 1 each: [[src_id, dst_id, count], ...].",
    |masters: Array| -> Result<Array, Box<EvalAltResult>> {
        let weights = vec![1.0; masters.len()];
        default_plan(&masters, &weights)
    });
    api!(reg, "base_balance_plan", ["masters: Array", "weights: Array"] -> "Array", "The default plan with one weight per master (0 drains it).",
    |masters: Array, weights: Array| -> Result<Array, Box<EvalAltResult>> {
        if weights.len() != masters.len() {
            return Err(err(format!("base_balance_plan: {} masters but {} weights", masters.len(), weights.len())));
        }
        let w = weights.iter().map(|d| number(d, "a weight")).collect::<Result<Vec<f64>, _>>()?;
        default_plan(&masters, &w)
    });
    api!(reg, "slot_of", ["key: String"] -> "INT", "The hash slot of a key (with {hash tags}).",
        |key: &str| -> INT { crate::slots::slot_of(key.as_bytes()) as INT });
    api!(reg, "parse_slots", ["text: String"] -> "Array", "Slots of a list such as \"0 2 4-7\".",
    |text: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        Ok(slots_of(&text)?.into_iter().map(|s| Dynamic::from_int(s as INT)).collect())
    });
    api!(reg, "format_slots", ["slots: Array"] -> "String", "Slots as compact ranges: \"0-5460,5462\".",
        |slots: Dynamic| -> Result<String, Box<EvalAltResult>> { Ok(format_ranges(&slots_of(&slots)?)) });
    let h = host.clone();
    api!(reg, "is_dry_run", [] -> "bool", "Whether this run only plans (dry run or offline topology).",
        move || -> bool { h.dry.load(Ordering::SeqCst) });
    let h = host.clone();
    api!(reg, "on_progress", ["callback: Fn"] -> "()",
        "Hear every step, warning and progress event of the operations that follow, as they happen: on_progress(|e| log(e.text)); e.kind is step, warning, moving or keys.",
    move |f: FnPtr| { *h.listener.lock().expect("listener") = Some(f); });
    let h = host.clone();
    api!(reg, "on_progress", ["none: ()"] -> "()", "Stop hearing events (on_progress(())).",
    move |_: ()| { *h.listener.lock().expect("listener") = None; });
    let out = host.io.log.clone();
    api!(reg, "log", ["message: String"] -> "()", "Print a line to stderr, readable next to progress output.",
        move |msg: Dynamic| out(&msg.to_string()));
    let h = host.clone();
    api!(reg, "sleep", ["ms: INT"] -> "()", "Pause for ms milliseconds (at most one hour; Ctrl-C and --max-seconds interrupt).",
    move |ms: INT| -> Result<(), Box<EvalAltResult>> {
        if !(0..=3_600_000).contains(&ms) {
            return Err(err(format!("sleep: {ms} ms is outside 0..3600000")));
        }
        let end = Instant::now() + Duration::from_millis(ms as u64);
        while Instant::now() < end {
            if let Some(why) = h.sandbox.exceeded() {
                return Err(Box::new(EvalAltResult::ErrorTerminated(why.into(), rhai::Position::NONE)));
            }
            if crate::interrupt::requested() {
                return Err(err("interrupted (Ctrl-C)"));
            }
            std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
        Ok(())
    });
    api!(reg, "exit", ["code: INT"] -> "()", "End the script now with this exit code (0-255), printing nothing more: exit(3).",
    |ctx: NativeCallContext, code: INT| -> Result<(), Box<EvalAltResult>> {
        let code = i32::try_from(code).ok().filter(|c| (0..=255).contains(c))
            .ok_or_else(|| err(format!("exit: {code} is not an exit code (0-255)")))?;
        Err(Ending::Exit(code).raise(ctx.call_position()))
    });
    // Any other value would end the script with code 0 (Rhai's own exit): refused.
    FuncRegistration::new("exit")
        .with_volatility(true)
        .register_into_engine(reg.engine, |v: Dynamic| -> Result<(), Box<EvalAltResult>> {
            Err(err(format!(
                "exit: expected an exit code (0-255), got {}",
                v.type_name()
            )))
        });
    api!(reg, "exit", [] -> "()", "End the script now, successfully (exit code 0).",
    |ctx: NativeCallContext| -> Result<(), Box<EvalAltResult>> { Err(Ending::Exit(0).raise(ctx.call_position())) });
    api!(reg, "fail", ["message: String"] -> "()", "Give up: print this one line as the error and exit 1 (try/catch does not stop it).",
    |ctx: NativeCallContext, msg: Dynamic| -> Result<(), Box<EvalAltResult>> {
        Err(Ending::Fail(msg.to_string()).raise(ctx.call_position()))
    });
    super::cluster_handle::register(&mut reg, host.clone());
    super::data::register(&mut reg, host.clone());
    super::state::register(&mut reg, host.clone());
    register_execute(&mut reg, host);
    reg.docs
}

/// `node_info`: INFO as a map; offline, the metrics the snapshot carries.
fn node_info(h: &Host, a: &Addr, section: Option<&str>) -> Result<Dynamic, Box<EvalAltResult>> {
    if h.networked.load(Ordering::SeqCst) {
        let info = h.with(|b| ops::node_info(b, a, section))?;
        return rhai::serde::to_dynamic(&info);
    }
    let me = h.with(|b| Ok(b.view(a)?.myself().clone()))?;
    let mut m = Map::new();
    let int = |v: u64| Dynamic::from_int(v.min(INT::MAX as u64) as INT);
    if let Some(v) = me.used_memory {
        m.insert("used_memory".into(), int(v));
    }
    if let Some(v) = me.maxmemory {
        m.insert("maxmemory".into(), int(v));
    }
    if let Some(v) = me.keys {
        let mut db = Map::new();
        db.insert("keys".into(), int(v));
        m.insert("db0".into(), db.into());
    }
    m.insert("role".into(), me.role_in_cluster.as_str().into());
    Ok(m.into())
}

/// `execute(addr, "CMD", args...)` with up to 12 arguments.
fn register_execute(reg: &mut Registry<'_>, host: Arc<Host>) {
    fn run(
        host: &Host,
        addr: &Dynamic,
        cmd: Dynamic,
        args: &[Dynamic],
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        if let Some(c) = addr.clone().try_cast::<ClusterHandle>() {
            return c.execute(host, cmd, args);
        }
        let a = host.addr("execute", addr)?;
        let bytes = command_line(cmd, args);
        host.with(|b| b.execute(&a, &bytes)).map(reply)
    }
    let h = host.clone();
    register_variadic(reg.engine, "execute", move |addr: Dynamic, cmd, args| {
        run(&h, &addr, cmd, args)
    });
    let h = host.clone();
    api!(reg, "execute", ["addr: String", "command: String", "args: Array"] -> "Dynamic",
        "Run one raw command on one node (also execute(addr, \"CMD\", a1, a2, ...)); replies as nil, integers, strings, arrays, maps. On a cluster(addr) handle, the command goes where it belongs.",
        move |addr: Dynamic, cmd: Dynamic, args: Array| run(&h, &addr, cmd, &args));
}

/// A command name and its arguments as bytes.
pub(super) fn command_line(cmd: Dynamic, args: &[Dynamic]) -> Vec<Vec<u8>> {
    let mut all = vec![cmd];
    all.extend_from_slice(args);
    command_args(&all)
}

/// Registers `name(first, cmd)`, `name(first, cmd, a1)`, ... up to 12 arguments after
/// the command, all calling `run(first, cmd, args)`.
fn register_variadic<F>(engine: &mut Engine, name: &str, run: F)
where
    F: Fn(Dynamic, Dynamic, &[Dynamic]) -> Result<Dynamic, Box<EvalAltResult>>
        + Clone
        + Send
        + Sync
        + 'static,
{
    macro_rules! arity {
        ($($arg:ident),*) => {{
            let f = run.clone();
            FuncRegistration::new(name)
                .with_volatility(true)
                .register_into_engine(engine, move |first: Dynamic, cmd: Dynamic $(, $arg: Dynamic)*| f(first, cmd, &[$($arg),*]));
        }};
    }
    arity!();
    arity!(a1);
    arity!(a1, a2);
    arity!(a1, a2, a3);
    arity!(a1, a2, a3, a4);
    arity!(a1, a2, a3, a4, a5);
    arity!(a1, a2, a3, a4, a5, a6);
    arity!(a1, a2, a3, a4, a5, a6, a7);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
    arity!(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
}

fn max_slots(opts: &Map, fname: &str) -> Result<usize, Box<EvalAltResult>> {
    check_keys(opts, &["max_slots"], fname)?;
    match opts.get("max_slots") {
        None => Ok(16384),
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 => Ok(n as usize),
            _ => Err(err(format!(
                "{fname}: max_slots must be an integer >= 1, got {v}"
            ))),
        },
    }
}

fn int_opt(
    opts: &Map,
    key: &str,
    default: usize,
    fname: &str,
) -> Result<usize, Box<EvalAltResult>> {
    match opts.get(key) {
        None => Ok(default),
        Some(v) => match v.as_int() {
            Ok(n) if n >= 0 => Ok(n as usize),
            _ => Err(err(format!(
                "{fname}: {key} must be a non-negative integer, got {v}"
            ))),
        },
    }
}

fn check_keys(opts: &Map, allowed: &[&str], fname: &str) -> Result<(), Box<EvalAltResult>> {
    match opts.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(format!(
            "{fname}: unknown option '{k}' (expected {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn default_plan(masters: &Array, weights: &[f64]) -> Result<Array, Box<EvalAltResult>> {
    let nodes = masters
        .iter()
        .map(|d| {
            d.clone().try_cast::<Node>().ok_or_else(|| {
                err(format!(
                    "base_balance_plan: expected Node values, got {}",
                    d.type_name()
                ))
            })
        })
        .collect::<Result<Vec<Node>, _>>()?;
    let holders: Vec<Holder> = crate::ops::holders(&nodes, weights);
    base_balance_plan(&holders)
        .map(|p| plan_to_array(&p))
        .map_err(rt)
}

/// A balancer whose weight and plan come from script closures.
struct ScriptBalancer<'a> {
    ctx: &'a NativeCallContext<'a>,
    weight: Option<FnPtr>,
    plan: Option<FnPtr>,
    /// The script's own error, kept whole so its position and call chain survive.
    script_error: Option<Box<EvalAltResult>>,
}

impl ScriptBalancer<'_> {
    fn fail(&mut self, e: Box<EvalAltResult>, what: String) -> anyhow::Error {
        let msg = format!("{what}: {e}");
        self.script_error = Some(e);
        anyhow::anyhow!(msg)
    }
}

impl Balancer for ScriptBalancer<'_> {
    fn weight(&mut self, node: &Node) -> anyhow::Result<f64> {
        let Some(f) = self.weight.clone() else {
            return Ok(1.0);
        };
        let v = f
            .call_within_context::<Dynamic>(self.ctx, (Dynamic::from(node.clone()),))
            .map_err(|e| self.fail(e, format!("the weight callback failed for {}", node.addr())))?;
        number(&v, &format!("the weight of {}", node.addr()))
            .map_err(|e| self.fail(e, "bad weight".into()))
    }

    fn plan(&mut self, masters: &[Node], new: &Node, weights: &[f64]) -> anyhow::Result<Vec<Move>> {
        let Some(f) = self.plan.clone() else {
            return base_balance_plan(&crate::ops::holders(masters, weights));
        };
        let nodes: Array = masters.iter().cloned().map(Dynamic::from).collect();
        let v = f
            .call_within_context::<Dynamic>(self.ctx, (nodes, Dynamic::from(new.clone())))
            .map_err(|e| self.fail(e, "the plan callback failed".into()))?;
        plan_of(v, masters).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn register_node_type(engine: &mut Engine) {
    engine
        .register_type_with_name::<Node>("Node")
        .register_get("node_id", |n: &mut Node| n.node_id.clone())
        .register_get("host", |n: &mut Node| n.host.clone())
        .register_get("port", |n: &mut Node| n.port as INT)
        .register_get("addr", |n: &mut Node| n.addr().to_string())
        .register_get("role_in_cluster", |n: &mut Node| {
            n.role_in_cluster.as_str().to_string()
        })
        .register_get("master_id", |n: &mut Node| match &n.master_id {
            Some(id) => Dynamic::from(id.clone()),
            None => Dynamic::UNIT,
        })
        .register_get("assigned_slots", |n: &mut Node| -> Array {
            n.assigned_slots
                .iter()
                .map(|&s| Dynamic::from_int(s as INT))
                .collect()
        })
        .register_get("slot_count", |n: &mut Node| n.assigned_slots.len() as INT)
        .register_get("slots_migrating", |n: &mut Node| -> Array {
            n.slots_migrating
                .iter()
                .map(|(s, id)| marker(*s, "to", id))
                .collect()
        })
        .register_get("slots_importing", |n: &mut Node| -> Array {
            n.slots_importing
                .iter()
                .map(|(s, id)| marker(*s, "from", id))
                .collect()
        })
        .register_get("flags", |n: &mut Node| -> Array {
            n.flags.iter().cloned().map(Dynamic::from).collect()
        })
        .register_get("fail", |n: &mut Node| n.is_failed())
        .register_get("is_master", |n: &mut Node| n.is_master())
        .register_get("config_epoch", |n: &mut Node| n.config_epoch as INT)
        .register_get("connected", |n: &mut Node| n.connected)
        .register_get("used_memory", |n: &mut Node| opt_int(n.used_memory))
        .register_get("maxmemory", |n: &mut Node| opt_int(n.maxmemory))
        .register_get("keys", |n: &mut Node| opt_int(n.keys))
        .register_get("zone", |n: &mut Node| {
            ops::zones::known(&n.addr()).map_or(Dynamic::UNIT, Dynamic::from)
        })
        .register_fn("to_string", |n: &mut Node| describe(n))
        .register_fn("to_debug", |n: &mut Node| describe(n))
        .register_fn("==", |a: &mut Node, b: Node| a.node_id == b.node_id)
        .register_fn("!=", |a: &mut Node, b: Node| a.node_id != b.node_id);
}

/// A metric that may be unknown: an integer, or `()`.
fn opt_int(v: Option<u64>) -> Dynamic {
    match v {
        Some(v) => Dynamic::from_int(v.min(INT::MAX as u64) as INT),
        None => Dynamic::UNIT,
    }
}

fn marker(slot: u16, dir: &str, id: &str) -> Dynamic {
    let mut m = Map::new();
    m.insert("slot".into(), Dynamic::from_int(slot as INT));
    m.insert(dir.into(), id.to_string().into());
    m.into()
}

fn describe(n: &Node) -> String {
    if n.is_master() {
        format!(
            "M {} {} {} slots{}",
            n.addr(),
            n.short_id(),
            n.assigned_slots.len(),
            if n.is_failed() { " [fail]" } else { "" }
        )
    } else {
        let of = n
            .master_id
            .as_deref()
            .map(|m| &m[..m.len().min(8)])
            .unwrap_or("-");
        format!(
            "S {} {} replica of {of}{}",
            n.addr(),
            n.short_id(),
            if n.is_failed() { " [fail]" } else { "" }
        )
    }
}

/// `#{ moves, slots, keys }` of an applied plan.
fn applied_map(a: &ops::Applied) -> Map {
    let mut m = Map::new();
    m.insert("moves".into(), Dynamic::from_int(a.moves as INT));
    m.insert("slots".into(), Dynamic::from_int(a.slots as INT));
    m.insert("keys".into(), Dynamic::from_int(a.keys as INT));
    m
}

/// A plan from a script for `apply_plan`: `[src, dst, count]` or `#{ src, dst,
/// count }` / `#{ src, dst, slots }` per move; ends are Nodes or strings.
fn plan_moves_of(plan: Array) -> Result<Vec<ops::PlanMove>, Box<EvalAltResult>> {
    let end = |d: &Dynamic, at: &str| -> Result<String, Box<EvalAltResult>> {
        if let Some(n) = d.clone().try_cast::<Node>() {
            return Ok(n.node_id);
        }
        d.clone()
            .into_immutable_string()
            .map(|s| s.to_string())
            .map_err(|t| {
                err(format!(
                    "{at}: expected a node, a node id or an address, got {t}"
                ))
            })
    };
    let count = |d: &Dynamic, at: &str| -> Result<ops::Amount, Box<EvalAltResult>> {
        match d.as_int() {
            Ok(n) if n >= 0 => Ok(ops::Amount::Count(n as usize)),
            Ok(n) => Err(err(format!("{at}: count must not be negative, got {n}"))),
            Err(t) => Err(err(format!("{at}: count must be an integer, got {t}"))),
        }
    };
    plan.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("apply_plan: plan move #{}", i + 1);
            if let Some(a) = item.clone().try_cast::<Array>() {
                if a.len() != 3 {
                    return Err(err(format!(
                        "{at}: expected [src, dst, count], got {} items",
                        a.len()
                    )));
                }
                return Ok(ops::PlanMove {
                    src: end(&a[0], &at)?,
                    dst: end(&a[1], &at)?,
                    amount: count(&a[2], &at)?,
                });
            }
            let Some(m) = item.clone().try_cast::<Map>() else {
                return Err(err(format!(
                    "{at}: expected [src, dst, count] or #{{ src, dst, slots | count }}, got {}",
                    item.type_name()
                )));
            };
            check_keys(&m, &["src", "dst", "slots", "count"], "apply_plan")?;
            let get = |k: &str| m.get(k).ok_or_else(|| err(format!("{at}: missing '{k}'")));
            let amount = match (m.get("slots"), m.get("count")) {
                (Some(s), None) => {
                    ops::Amount::Slots(slots_of(s).map_err(|e| err(format!("{at}: {e}")))?)
                }
                (None, Some(c)) => count(c, &at)?,
                _ => return Err(err(format!("{at}: give either 'slots' or 'count'"))),
            };
            Ok(ops::PlanMove {
                src: end(get("src")?, &at)?,
                dst: end(get("dst")?, &at)?,
                amount,
            })
        })
        .collect()
}
