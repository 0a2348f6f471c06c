//! The script API: every cluster operation and helper registered as a Rhai function,
//! each with its signature and one line of doc recorded as it is registered (that
//! record is what `help()` and `redis-trib doc` print: never a hand-kept list).
//!
//! The pieces live beside it: [`super::host`] (the runtime the functions share),
//! [`super::registry`] (how they are registered and documented), [`super::node`]
//! (the `Node` type), `options` (option maps and plans), [`super::events`]
//! (events as script values) and `balancer` (script closures as a balancer).

pub use super::events::event_value;
pub use super::host::{Host, ScriptIo, Target};
pub use super::node::NODE_FIELDS;
pub use super::registry::ApiDoc;

use super::balancer::{default_plan, ScriptBalancer};
use super::cluster_handle::ClusterHandle;
use super::convert::{command_args, err, number, plan_to_array, reply, rt, slots_of, topology_map};
use super::node::register_node_type;
use super::options::{check_keys, int_opt, max_slots, plan_moves_of};
use super::registry::{api, register_variadic, Registry};
use super::report::Ending;
use crate::addr::Addr;
use crate::ops;
use crate::slots::format_ranges;
use crate::topology::Node;
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, Map, NativeCallContext, INT,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            let mut t = ops::topology_with_metrics(b, &a)?;
            ops::zones::learn_topology(b, &mut t);
            Ok(t)
        })?;
        Ok(topo.nodes.into_iter().map(Dynamic::from).collect())
    });
    let h = host.clone();
    api!(reg, "list_masters", ["addr: String"] -> "Array", "The masters of the cluster `addr` belongs to.",
    move |addr: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        let a = h.addr("list_masters", &addr)?;
        let topo = h.with(|b| {
            let mut t = ops::topology_with_metrics(b, &a)?;
            ops::zones::learn_topology(b, &mut t);
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
            me.zone = ops::zones::zone_of(b, &a);
            if let Ok((used, max)) = ops::memory_of(b, &a) {
                me.used_memory = Some(used);
                me.maxmemory = Some(max);
            }
            Ok(me)
        })
    });
    let h = host.clone();
    api!(reg, "topology", ["addr: String"] -> "Map", "The whole cluster as a map: #{ entry_id, nodes: [Node], keys, states, unreachable } (the `list --json` document, its nodes as Node values).",
    move |addr: Dynamic| -> Result<Map, Box<EvalAltResult>> {
        let a = h.addr("topology", &addr)?;
        let topo = h.with(|b| ops::topology_with_metrics(b, &a))?;
        Ok(topology_map(topo))
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
    api!(reg, "join_no_load", ["cluster: String", "new: String | Array"] -> "()", "Add a free node as a master with no slots (an array of free nodes: all at once, one wait for all).",
    move |ctx: NativeCallContext, cluster: Dynamic, new: Dynamic| -> Result<(), Box<EvalAltResult>> {
        let c = h.addr("join_no_load", &cluster)?;
        let news = match new.clone().try_cast::<Array>() {
            Some(list) => h.addrs("join_no_load", &list)?,
            None => vec![h.addr("join_no_load", &new)?],
        };
        h.run(&ctx, |b| ops::join_no_load_many(b, &c, &news).map(|_| ()))
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
    api!(reg, "fix_migrating", ["addr: String"] -> "INT", "Give back every slot no master claims while nodes name an owner, then finish or repair every open slot of the cluster (and put back node timeouts that differ); returns how many repairs were made.",
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
    "Run a plan of moves [src, dst, count] or #{ src, dst, slots | count } (ends: nodes, ids, 4+ character id prefixes or addresses), validated whole first; returns #{ moves, slots, keys }.",
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
    if h.is_networked() {
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

/// `#{ moves, slots, keys }` of an applied plan.
fn applied_map(a: &ops::Applied) -> Map {
    let mut m = Map::new();
    m.insert("moves".into(), Dynamic::from_int(a.moves as INT));
    m.insert("slots".into(), Dynamic::from_int(a.slots as INT));
    m.insert("keys".into(), Dynamic::from_int(a.keys as INT));
    m
}
