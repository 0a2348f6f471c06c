//! The JSON documents commands print with `--json` (beyond the library's own
//! serialisable values).

use crate::output::Output;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::backend::Backend;
use redis_trib::ops;
use redis_trib::topology::Topology;
use serde_json::{json, Value};

/// Prints `value` as pretty JSON on stdout.
pub fn print(out: &Output, value: &impl serde::Serialize) -> Result<()> {
    out.data(&serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `import --json`: where the keys came from, how many, whether they were copied.
pub fn import(from: &Addr, keys: u64, copy: bool) -> Value {
    json!({ "source": from.to_string(), "keys": keys, "copy": copy })
}

/// `check --json`: healthy, the problems and the notes.
pub fn check(report: &ops::CheckReport) -> Value {
    json!({ "healthy": report.healthy(), "problems": report.problems, "notes": report.notes })
}

/// `list --json`: the topology, each node with its zone where one is known.
pub fn list(b: &mut dyn Backend, topo: &Topology) -> Result<Value> {
    let mut doc = serde_json::to_value(topo)?;
    ops::zones::annotate(b, topo, &mut doc);
    Ok(doc)
}
