//! The `Node` type scripts see: its fields (getters), how it prints, equality.

use crate::topology::Node;
use rhai::{Array, Dynamic, Engine, Map, INT};

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

/// Registers `Node` with its getters, `to_string` and equality.
pub(super) fn register_node_type(engine: &mut Engine) {
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
            n.zone.clone().map_or(Dynamic::UNIT, Dynamic::from)
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
