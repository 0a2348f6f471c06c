//! The `Node` type scripts see: its fields (getters, and by index), how it prints,
//! equality.

use crate::topology::Node;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, INT};

/// Fields of node values (for completion and docs), each read by a getter
/// (`n.host`) or by index (`n["host"]`, as on the maps `topology()` used to return).
pub const NODE_FIELDS: &[&str] = &[
    "node_id",
    "host",
    "port",
    "cport",
    "hostname",
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
    "ping_sent",
    "pong_recv",
    "connected",
    "used_memory",
    "maxmemory",
    "keys",
    "zone",
];

/// The value of field `name` of `n` (one of [`NODE_FIELDS`]); `None` for any other
/// name.
pub fn field(n: &Node, name: &str) -> Option<Dynamic> {
    Some(match name {
        "node_id" => n.node_id.clone().into(),
        "host" => n.host.clone().into(),
        "port" => Dynamic::from_int(n.port as INT),
        "cport" => n
            .cport
            .map_or(Dynamic::UNIT, |p| Dynamic::from_int(p as INT)),
        "hostname" => n.hostname.clone().map_or(Dynamic::UNIT, Dynamic::from),
        "addr" => n.addr().to_string().into(),
        "role_in_cluster" => n.role_in_cluster.as_str().to_string().into(),
        "master_id" => n.master_id.clone().map_or(Dynamic::UNIT, Dynamic::from),
        "assigned_slots" => n
            .assigned_slots
            .iter()
            .map(|&s| Dynamic::from_int(s as INT))
            .collect::<Array>()
            .into(),
        "slot_count" => Dynamic::from_int(n.assigned_slots.len() as INT),
        "slots_migrating" => n
            .slots_migrating
            .iter()
            .map(|(s, id)| marker(*s, "to", id))
            .collect::<Array>()
            .into(),
        "slots_importing" => n
            .slots_importing
            .iter()
            .map(|(s, id)| marker(*s, "from", id))
            .collect::<Array>()
            .into(),
        "flags" => n
            .flags
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
        "fail" => n.is_failed().into(),
        "is_master" => n.is_master().into(),
        "config_epoch" => opt_int(Some(n.config_epoch)),
        "ping_sent" => opt_int(Some(n.ping_sent)),
        "pong_recv" => opt_int(Some(n.pong_recv)),
        "connected" => n.connected.into(),
        "used_memory" => opt_int(n.used_memory),
        "maxmemory" => opt_int(n.maxmemory),
        "keys" => opt_int(n.keys),
        "zone" => n.zone.clone().map_or(Dynamic::UNIT, Dynamic::from),
        _ => return None,
    })
}

/// Registers `Node` with its getters and indexer (one per field of [`NODE_FIELDS`]),
/// `to_string` and equality.
pub(super) fn register_node_type(engine: &mut Engine) {
    engine.register_type_with_name::<Node>("Node");
    for &name in NODE_FIELDS {
        engine.register_get(name, move |n: &mut Node| {
            field(n, name).unwrap_or(Dynamic::UNIT)
        });
    }
    engine
        .register_indexer_get(
            |n: &mut Node, name: &str| -> Result<Dynamic, Box<EvalAltResult>> {
                field(n, name).ok_or_else(|| {
                    // `n.nme` reaches this indexer too: suggest the field meant.
                    let fields: Vec<String> = NODE_FIELDS.iter().map(|f| f.to_string()).collect();
                    match super::report::suggestion(name, &fields) {
                        Some(hint) => format!("a Node has no field '{name}'{hint}"),
                        None => format!(
                            "a Node has no field '{name}' (fields: {})",
                            NODE_FIELDS.join(", ")
                        ),
                    }
                    .into()
                })
            },
        )
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
