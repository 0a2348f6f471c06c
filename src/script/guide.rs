//! The parts of the script reference that are not registered functions: the stdlib
//! modules' functions (read from their `///` comments, so never a hand-kept list),
//! `ARGS`/`PARAMS`, the cluster handle's methods, the maps `check`/`info`/`topology`/
//! `node_info`/`slot_stats` return, the topology snapshot schema, and Rhai's traps.
//! `redis-trib doc` (and `--json`) and the shell's `help()` print them after the
//! functions.

use super::registry::ApiDoc;
use super::resolver::STDLIB;

/// Topics: (name, signature or shape, text).
const TOPICS: &[(&str, &str, &str)] = &[
    (
        "ARGS",
        "ARGS: Array",
        "The script's arguments after the file, as strings: `redis-trib run s.rhai 127.0.0.1:7000 x` gives [\"127.0.0.1:7000\", \"x\"] (arguments that are host:port addresses are the clusters the script may reach). Empty in the shell. A constant.",
    ),
    (
        "PARAMS",
        "PARAMS: Map",
        "The `--set name=value` pairs, values as strings: PARAMS.zone, `\"zone\" in PARAMS` tests one, PARAMS.keys() lists them. A constant.",
    ),
    (
        "Cluster",
        "cluster(addr) -> Cluster",
        "A handle on the whole cluster: c.execute(\"CMD\", args...) (also c.execute(\"CMD\", [args])) routes a key command to its slot's owner (MOVED/ASK followed), answers fan-out commands (DBSIZE, KEYS, SCAN...) per node, splits MGET/MSET/DEL by slot; c.entry is the address it entered through; print(c) shows it. In a dry run only commands that read are sent.",
    ),
    (
        "check map",
        "check(addr) -> #{ healthy: bool, problems: [String], notes: [String] }",
        "healthy is true when problems is empty; problems are the lines `redis-trib check` prints as errors (slot disagreements, open or uncovered slots, failing or unreachable nodes, timeouts that differ), notes the rest (replicas per master). The stdlib's health::check(addr) returns findings as data instead (see health::check).",
    ),
    (
        "info map",
        "info(addr) -> #{ masters: [#{ addr, node_id, keys, slots, replicas }], total_keys, total_slots, total_replicas }",
        "One entry per master (keys is () when the master could not be read), then totals over reachable masters. Not node_info: that is one node's INFO.",
    ),
    (
        "node_info map",
        "node_info(addr[, section]) -> Map",
        "One node's INFO, fields flattened across sections: numbers are numbers (used_memory, maxmemory, connected_clients, ...), `db0:keys=3,expires=0` and `slave0:ip=...,port=...` lines are maps (node_info(a).db0.keys), the rest text (role, redis_version). Offline (--topology): used_memory, maxmemory, db0.keys and role from the snapshot.",
    ),
    (
        "slot_stats array",
        "slot_stats(addr) -> [#{ slot, keys }]",
        "One entry per slot the master at addr serves, in slot order (CLUSTER SLOT-STATS on Valkey 8+ and Redis 8.2+, CLUSTER COUNTKEYSINSLOT pipelined otherwise; offline, the snapshot's keys spread evenly).",
    ),
    (
        "topology map",
        "topology(addr) -> #{ entry_id, nodes: [Node], keys, states, unreachable }",
        "The `list --json` document (the --topology snapshot schema) with each node a Node value, as list_nodes returns them: entry_id is the id of the node it was read from, nodes every node (masters first), keys #{ id: keys }, states #{ id: \"ok\"|\"fail\" }, unreachable #{ id: why }. A node's fields read by name (n.port) or by index (n[\"port\"]): node_id, host, port, cport and hostname (or ()), addr, flags, role_in_cluster (\"master\"|\"slave\"), master_id (or ()), ping_sent, pong_recv, config_epoch, connected, assigned_slots (slot numbers, where the file holds ranges: format_slots(n.assigned_slots) gives \"0-5460,6000\"), slot_count, slots_migrating ([#{ slot, to }]) and slots_importing ([#{ slot, from }]), and when read used_memory, maxmemory, keys (else ()). Nodes are values, not maps (map methods such as values() do not apply, fields cannot be assigned), so a topology of the largest snapshot (20,000 nodes) stays within the sandbox's 100,000 array items and map entries. A snapshot file needs entry_id and nodes; keys, states and unreachable may be empty; the metrics may be absent (older snapshots load).",
    ),
    (
        "state token",
        "state_token(#{ node, slots }) -> \"rt1....\"",
        "A restore token is base64url JSON of the map, slot lists (keys `slots`, `*_slots`) as ranges: short for contiguous slots. token_state(token) gives the map back; save_state/load_state use the run's --state FILE instead.",
    ),
    (
        "Rhai traps",
        "reserved words, in-place methods, copies",
        "`new`, `call`, `default`, `match`, `static`, `var` and such are reserved: name a variable new_node, use execute() for raw commands. String methods such as trim(), to_upper(), pad(), crop() change the string in place and return (): `s.trim(); print(s)`, not `print(s.trim())`. Comparing a value to () (`if nodes == ()`) copies a big array or map first: test `type_of(x) == \"()\"` instead. A closure given to filter/map/for_each must not change the array it is called on (Data race detected): work on a copy. Closures capture variables when they are made; arrays and maps are copied when assigned (`let b = a;`), so a function changes its argument only through `this` (`fn f() { this.push(1) }` with `a.f()`).",
    ),
];

/// The topics (ARGS, PARAMS, the handle, the maps, the snapshot schema, traps) as
/// reference entries.
pub fn topics() -> Vec<ApiDoc> {
    TOPICS
        .iter()
        .map(|(name, signature, doc)| ApiDoc {
            name: name.to_string(),
            signature: signature.to_string(),
            doc: doc.to_string(),
        })
        .collect()
}

/// Every public function of the stdlib modules, as `module::name(params)` with its
/// `///` comment.
pub fn stdlib_docs() -> Vec<ApiDoc> {
    let mut engine = rhai::Engine::new_raw();
    // As the script engine allows (see `ScriptEngine::new`).
    engine.set_max_expr_depths(128, 64);
    let mut out = Vec::new();
    for (module, text) in STDLIB {
        let Ok(ast) = engine.compile(text) else {
            continue;
        };
        for f in ast.iter_functions() {
            if f.access == rhai::FnAccess::Private || super::resolver::is_closure_name(f.name) {
                continue;
            }
            let doc: Vec<&str> = f
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| l.trim_start_matches('/').trim())
                .filter(|l| !l.is_empty())
                .collect();
            out.push(ApiDoc {
                name: format!("{module}::{}", f.name),
                signature: format!("{module}::{}({})", f.name, f.params.join(", ")),
                doc: if doc.is_empty() {
                    format!("(stdlib module {module})")
                } else {
                    doc.join(" ")
                },
            });
        }
    }
    out
}

/// The reference after the functions: the stdlib modules, then the topics, as
/// Markdown.
pub fn markdown() -> String {
    let mut out = String::from("\n## Stdlib modules (`import \"balance\" as b;`)\n\n| function | what it does |\n|---|---|\n");
    for d in stdlib_docs() {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            d.signature,
            d.doc.replace('|', "\\|")
        ));
    }
    out.push_str("\n## Values, maps and traps\n\n");
    for d in topics() {
        out.push_str(&format!("- **{}** `{}`: {}\n", d.name, d.signature, d.doc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stdlib_module_and_topic_is_documented() {
        let docs = stdlib_docs();
        for name in ["balance::drain_plan", "health::check", "topology::masters"] {
            let d = docs
                .iter()
                .find(|d| d.name == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(!d.doc.is_empty() && !d.doc.starts_with("(stdlib"), "{name}");
        }
        let md = markdown();
        for t in [
            "ARGS",
            "PARAMS",
            "Cluster",
            "check map",
            "topology map",
            "Rhai traps",
        ] {
            assert!(md.contains(&format!("**{t}**")), "{t}");
        }
    }
}
