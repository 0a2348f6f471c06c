//! Conversions between Rhai values and the library's: addresses, slot lists, Redis
//! replies, balance plans.

use crate::addr::Addr;
use crate::balance::Move;
use crate::slots::{check_slot, parse_slot_list};
use crate::topology::{Miss, Node, NodeIndex, Topology};
use rhai::{Array, Dynamic, EvalAltResult, Map, INT};
use std::collections::BTreeMap;

/// A script error with this message (the engine adds the position).
pub fn err(msg: impl Into<String>) -> Box<EvalAltResult> {
    msg.into().into()
}

/// Turns a library error into a script error, keeping its whole context chain.
pub fn rt(e: anyhow::Error) -> Box<EvalAltResult> {
    err(format!("{e:#}"))
}

/// An address from `"host:port"` or a node value.
pub fn addr_of(d: &Dynamic) -> Result<Addr, Box<EvalAltResult>> {
    if let Some(n) = d.clone().try_cast::<Node>() {
        return Ok(n.addr());
    }
    if let Ok(s) = d.clone().into_immutable_string() {
        return Addr::parse(&s).map_err(rt);
    }
    Err(err(format!(
        "expected an address \"host:port\" or a node, got {}",
        d.type_name()
    )))
}

/// Addresses from an array of addresses or nodes.
pub fn addrs_of(a: &Array) -> Result<Vec<Addr>, Box<EvalAltResult>> {
    a.iter().map(addr_of).collect()
}

/// Slots from an integer, an array of integers, or a string such as `"0 2 4-7"`.
pub fn slots_of(d: &Dynamic) -> Result<Vec<u16>, Box<EvalAltResult>> {
    if let Ok(i) = d.as_int() {
        return Ok(vec![check_slot(i).map_err(rt)?]);
    }
    if let Ok(s) = d.clone().into_immutable_string() {
        return parse_slot_list(&[s.as_str()]).map_err(rt);
    }
    if let Some(a) = d.clone().try_cast::<Array>() {
        let mut slots = Vec::with_capacity(a.len());
        for item in a {
            slots.extend(slots_of(&item)?);
        }
        slots.sort_unstable();
        slots.dedup();
        return Ok(slots);
    }
    Err(err(format!(
        "expected slots (an integer, an array, or a string like \"0 2 4-7\"), got {}",
        d.type_name()
    )))
}

/// A number as f64 (weights).
pub fn number(d: &Dynamic, what: &str) -> Result<f64, Box<EvalAltResult>> {
    if let Ok(i) = d.as_int() {
        return Ok(i as f64);
    }
    if let Ok(f) = d.as_float() {
        return Ok(f);
    }
    Err(err(format!(
        "{what} must be a number, got {}",
        d.type_name()
    )))
}

/// Arguments of `execute` as bytes.
pub fn command_args(args: &[Dynamic]) -> Vec<Vec<u8>> {
    args.iter()
        .map(|a| {
            if let Some(blob) = a.clone().try_cast::<rhai::Blob>() {
                blob
            } else {
                a.to_string().into_bytes()
            }
        })
        .collect()
}

/// A Redis reply as a Rhai value: nil → `()`, integers, strings, arrays, maps.
pub fn reply(v: redis::Value) -> Dynamic {
    use redis::Value as V;
    match v {
        V::Nil => Dynamic::UNIT,
        V::Int(i) => Dynamic::from_int(i),
        V::BulkString(b) => String::from_utf8_lossy(&b).into_owned().into(),
        V::SimpleString(s) => s.into(),
        V::Okay => "OK".into(),
        V::Double(f) => Dynamic::from_float(f),
        V::Boolean(b) => b.into(),
        V::Array(items) | V::Set(items) => items.into_iter().map(reply).collect::<Array>().into(),
        V::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| (reply_key(k).into(), reply(v)))
            .collect::<Map>()
            .into(),
        V::VerbatimString { text, .. } => text.into(),
        V::Attribute { data, .. } => reply(*data),
        V::ServerError(e) => format!("error: {e}").into(),
        other => format!("{other:?}").into(),
    }
}

fn reply_key(k: redis::Value) -> String {
    match reply(k) {
        d if d.is_string() => d.into_string().unwrap_or_default(),
        d => d.to_string(),
    }
}

/// Resolves a node reference in a plan (a node value, or a node id, an id prefix or
/// an address: see [`NodeIndex`]) to the id of one of `masters` (indexed once per
/// plan, so a plan of n moves costs O(n log n)).
pub fn master_id(d: &Dynamic, masters: &NodeIndex, at: &str) -> Result<String, Box<EvalAltResult>> {
    if let Some(n) = d.clone().try_cast::<Node>() {
        return Ok(n.node_id);
    }
    let Some(s) = d.clone().into_immutable_string().ok() else {
        return Err(err(format!(
            "{at}: expected a node, a node id or an address, got {}",
            d.type_name()
        )));
    };
    match masters.find(s.as_str()) {
        Ok(m) => Ok(m.node_id.clone()),
        // An ambiguous prefix is refused here; unknown ids are left for plan
        // validation to name.
        Err(Miss::Several(_)) => Err(err(format!(
            "{at}: '{s}' matches several masters; give more of the id"
        ))),
        Err(Miss::Nothing) => Ok(s.to_string()),
    }
}

/// A plan from a script: an array of `[src, dst, count]` (or `#{src, dst, count}`).
pub fn plan_of(d: Dynamic, masters: &[Node]) -> Result<Vec<Move>, Box<EvalAltResult>> {
    let Some(items) = d.clone().try_cast::<Array>() else {
        return Err(err(format!(
            "a plan must be an array of [src, dst, count] moves, got {}",
            d.type_name()
        )));
    };
    let index = NodeIndex::new(masters);
    let mut moves = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("plan move #{}", i + 1);
        let (src, dst, count) = if let Some(a) = item.clone().try_cast::<Array>() {
            if a.len() != 3 {
                return Err(err(format!(
                    "{at}: expected [src, dst, count], got {} items",
                    a.len()
                )));
            }
            (a[0].clone(), a[1].clone(), a[2].clone())
        } else if let Some(m) = item.clone().try_cast::<Map>() {
            let get = |k: &str| {
                m.get(k)
                    .cloned()
                    .ok_or_else(|| err(format!("{at}: missing '{k}'")))
            };
            (get("src")?, get("dst")?, get("count")?)
        } else {
            return Err(err(format!(
                "{at}: expected [src, dst, count], got {}",
                item.type_name()
            )));
        };
        let count = count
            .as_int()
            .map_err(|_| err(format!("{at}: count must be an integer")))?;
        if count < 0 {
            return Err(err(format!(
                "{at}: count must not be negative, got {count}"
            )));
        }
        moves.push(Move {
            src: master_id(&src, &index, &at)?,
            dst: master_id(&dst, &index, &at)?,
            count: count as usize,
        });
    }
    Ok(moves)
}

/// A plan as Rhai values: `[[src_id, dst_id, count], ...]`.
pub fn plan_to_array(moves: &[Move]) -> Array {
    moves
        .iter()
        .map(|m| {
            let item: Array = vec![
                m.src.clone().into(),
                m.dst.clone().into(),
                Dynamic::from_int(m.count as i64),
            ];
            Dynamic::from_array(item)
        })
        .collect()
}

/// What `topology(addr)` returns: `#{ entry_id, nodes, keys, states, unreachable }`
/// (and `servers` when known), the `list --json` document with each node a `Node`
/// value rather than a map of its fields.
///
/// Nodes as `Node` values keep the map small for Rhai's data-size limit: Rhai counts
/// every entry of every nested map and array in a value (and measures it again after
/// each call on it), but a custom type counts as one array item. A node as a map
/// counted ~17 map entries, so the sandbox's 100,000 entries stopped `topology()` at
/// 3,000 masters + 3,000 replicas; now a topology of n nodes counts n array items and
/// at most 3n map entries (`keys`, `states`, `servers`), within the limits up to
/// the largest snapshot (`MAX_SNAPSHOT_NODES`).
pub fn topology_map(topo: Topology) -> Map {
    fn ints(m: BTreeMap<String, u64>) -> Dynamic {
        m.into_iter()
            .map(|(k, v)| (k.into(), Dynamic::from_int(v.min(INT::MAX as u64) as INT)))
            .collect::<Map>()
            .into()
    }
    fn texts(m: BTreeMap<String, String>) -> Dynamic {
        m.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<Map>()
            .into()
    }
    let mut out = Map::new();
    out.insert("entry_id".into(), topo.entry_id.into());
    let nodes: Array = topo.nodes.into_iter().map(Dynamic::from).collect();
    out.insert("nodes".into(), nodes.into());
    out.insert("keys".into(), ints(topo.keys));
    out.insert("states".into(), texts(topo.states));
    out.insert("unreachable".into(), texts(topo.unreachable));
    if !topo.servers.is_empty() {
        out.insert("servers".into(), texts(topo.servers));
    }
    out
}
