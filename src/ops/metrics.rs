//! Node metrics: `INFO` as a map, each node's memory and key count on its node
//! value (so `list --json` snapshots carry them and memory-aware plans work
//! offline), and per-slot key counts.

use super::{member, topology};
use crate::addr::Addr;
use crate::backend::Backend;
use crate::topology::Topology;
use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// A value of an `INFO` field: an integer, a float, a nested map (`db0:keys=1,...`,
/// `slave0:ip=...`) or text.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum InfoValue {
    /// A whole number.
    Int(i64),
    /// A decimal number.
    Float(f64),
    /// Comma-separated `name=value` pairs.
    Map(BTreeMap<String, InfoValue>),
    /// Anything else.
    Text(String),
}

fn scalar(v: &str) -> InfoValue {
    if let Ok(i) = v.parse::<i64>() {
        return InfoValue::Int(i);
    }
    // "nan", "inf" and version strings stay text.
    match v.parse::<f64>() {
        Ok(f) if f.is_finite() && v.contains('.') => InfoValue::Float(f),
        _ => InfoValue::Text(v.to_string()),
    }
}

/// Parses an `INFO` reply into field → value (sections flattened: field names are
/// unique across them). `db0:keys=3,expires=0` and `slave0:ip=...,port=...` become
/// nested maps; numbers become numbers.
pub fn parse_info(text: &str) -> BTreeMap<String, InfoValue> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let nested = v.contains('=')
            && v.split(',').all(|p| {
                p.split_once('=')
                    .is_some_and(|(a, _)| !a.is_empty() && !a.contains(' '))
            });
        let value = if nested {
            InfoValue::Map(
                v.split(',')
                    .filter_map(|p| p.split_once('='))
                    .map(|(a, b)| (a.to_string(), scalar(b)))
                    .collect(),
            )
        } else {
            scalar(v)
        };
        out.insert(k.to_string(), value);
    }
    out
}

/// `INFO [section]` of one node as a map (see [`parse_info`]).
pub fn node_info(
    b: &mut dyn Backend,
    addr: &Addr,
    section: Option<&str>,
) -> Result<BTreeMap<String, InfoValue>> {
    let mut args = vec![b"INFO".to_vec()];
    if let Some(s) = section {
        args.push(s.as_bytes().to_vec());
    }
    match b.execute(addr, &args)? {
        redis::Value::BulkString(t) => Ok(parse_info(&String::from_utf8_lossy(&t))),
        redis::Value::VerbatimString { text, .. } => Ok(parse_info(&text)),
        redis::Value::SimpleString(t) => Ok(parse_info(&t)),
        other => bail!("{addr}: INFO answered {other:?}"),
    }
}

/// `used_memory` and `maxmemory` of one node, from `INFO memory`.
pub fn memory_of(b: &mut dyn Backend, addr: &Addr) -> Result<(u64, u64)> {
    let info = node_info(b, addr, Some("memory"))?;
    let get = |k: &str| match info.get(k) {
        Some(InfoValue::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    match get("used_memory") {
        Some(used) => Ok((used, get("maxmemory").unwrap_or(0))),
        None => bail!("{addr}: INFO memory has no used_memory"),
    }
}

/// `INFO server memory` of one node in one round trip: what it runs (`valkey
/// 9.1.2`) and its `used_memory` and `maxmemory` (absent fields: `None`).
pub fn server_and_memory(
    b: &mut dyn Backend,
    addr: &Addr,
) -> Result<(crate::conn::Server, Option<(u64, u64)>)> {
    parse_server_and_memory(
        addr,
        b.execute(addr, &INFO_SERVER_MEMORY.map(|w| w.to_vec()))?,
    )
}

/// The command [`server_and_memory`] sends.
const INFO_SERVER_MEMORY: [&[u8]; 3] = [b"INFO", b"server", b"memory"];

/// What one `INFO server memory` reply says (see [`server_and_memory`]).
fn parse_server_and_memory(
    addr: &Addr,
    reply: redis::Value,
) -> Result<(crate::conn::Server, Option<(u64, u64)>)> {
    let text = match &reply {
        redis::Value::BulkString(t) => match std::str::from_utf8(t) {
            Ok(text) => text.into(),
            Err(_) => String::from_utf8_lossy(t),
        },
        redis::Value::VerbatimString { text, .. } => text.as_str().into(),
        redis::Value::SimpleString(t) => t.as_str().into(),
        other => bail!("{addr}: INFO answered {other:?}"),
    };
    // A few fields of a long reply: looked up in place, not copied into a map.
    let fields = crate::conn::InfoLines::parse(&text);
    let server = crate::conn::Server::from_info_lines(&fields);
    let num = |k: &str| fields.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let memory = num("used_memory").map(|used| (used, num("maxmemory").unwrap_or(0)));
    Ok((server, memory))
}

/// Gives every reachable node of `topo` its key count and, where `INFO server
/// memory` answers (one round trip a node, every node at once where the backend
/// can), its `used_memory`, `maxmemory` and server with version (`topo.servers`).
/// Where it does not (an offline simulation), values already there (from a
/// snapshot) are kept.
pub fn fill(b: &mut dyn Backend, topo: &mut Topology) {
    let mut asked: Vec<usize> = Vec::new();
    for (i, n) in topo.nodes.iter_mut().enumerate() {
        if let Some(k) = topo.keys.get(&n.node_id) {
            n.keys = Some(*k);
        }
        if !(topo.unreachable.contains_key(&n.node_id) || n.is_failed() || n.no_addr()) {
            asked.push(i);
        }
    }
    let addrs: Vec<Addr> = asked.iter().map(|&i| topo.nodes[i].addr()).collect();
    let replies = b.execute_many(&addrs, &INFO_SERVER_MEMORY.map(|w| w.to_vec()));
    for ((i, addr), reply) in asked.into_iter().zip(&addrs).zip(replies) {
        let Ok((server, memory)) = reply.and_then(|r| parse_server_and_memory(addr, r)) else {
            continue;
        };
        let n = &mut topo.nodes[i];
        if let Some((used, max)) = memory {
            n.used_memory = Some(used);
            n.maxmemory = Some(max);
        }
        topo.servers.insert(n.node_id.clone(), server.to_string());
    }
}

/// [`topology`] with every node's metrics (see [`fill`]).
pub fn topology_with_metrics(b: &mut dyn Backend, entry: &Addr) -> Result<Topology> {
    let mut topo = topology(b, entry)?;
    fill(b, &mut topo);
    Ok(topo)
}

/// Keys per slot of the slots `addr` serves, in slot order.
pub fn slot_stats(b: &mut dyn Backend, addr: &Addr) -> Result<Vec<(u16, u64)>> {
    let view = member(b, addr)?;
    let slots = view.myself().assigned_slots.clone();
    let counts = b.slot_key_counts(addr, &slots)?;
    Ok(slots.into_iter().zip(counts).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_and_memory_come_from_one_info_reply() {
        let addr = Addr::new("127.0.0.1", 7000);
        let text =
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n\
                    redis_mode:cluster\r\n\r\n# Memory\r\nused_memory:1048576\r\n\
                    used_memory_human:1.00M\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\n";
        let (server, memory) =
            parse_server_and_memory(&addr, redis::Value::BulkString(text.as_bytes().to_vec()))
                .unwrap();
        assert_eq!(server.to_string(), "valkey 9.1.2");
        assert_eq!(memory, Some((1048576, 0)));
        let (server, memory) = parse_server_and_memory(
            &addr,
            redis::Value::SimpleString("redis_version:7.0.15\r\n".into()),
        )
        .unwrap();
        assert_eq!((server.to_string(), memory), ("redis 7.0.15".into(), None));
        assert!(parse_server_and_memory(&addr, redis::Value::Int(1)).is_err());
    }

    #[test]
    fn info_becomes_a_typed_map() {
        let m = parse_info(
            "# Memory\r\nused_memory:1024\r\nused_memory_human:1.00K\r\nmem_fragmentation_ratio:1.5\r\n\
             maxmemory_policy:noeviction\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n",
        );
        assert_eq!(m["used_memory"], InfoValue::Int(1024));
        assert_eq!(m["used_memory_human"], InfoValue::Text("1.00K".into()));
        assert_eq!(m["mem_fragmentation_ratio"], InfoValue::Float(1.5));
        let InfoValue::Map(db) = &m["db0"] else {
            panic!("db0 is a map")
        };
        assert_eq!(db["keys"], InfoValue::Int(3));
    }
}
