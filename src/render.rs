//! Human output: colours (off with `--no-color`, `NO_COLOR`, or when not a terminal)
//! and the text forms of topologies and events. Functions return strings; only the
//! binary prints.

use crate::backend::sim::PlanStep;
use crate::backend::Event;
use crate::ops::{CheckReport, ClusterInfo};
use crate::slots::format_ranges;
use crate::topology::{short_id, Node, Topology};
use nu_ansi_term::{Color, Style};
use std::fmt::Write;

/// Applies colours, or not.
#[derive(Clone, Copy, Debug)]
pub struct Painter {
    /// Whether to emit ANSI colours.
    pub color: bool,
}

impl Painter {
    /// Colour when `wanted`, `NO_COLOR` is unset, and `is_terminal`.
    pub fn new(wanted: bool, is_terminal: bool) -> Painter {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Painter {
            color: wanted && is_terminal && !no_color,
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            style.paint(text).to_string()
        } else {
            text.to_string()
        }
    }

    /// Emphasis.
    pub fn bold(&self, t: &str) -> String {
        self.paint(Style::new().bold(), t)
    }
    /// Secondary text.
    pub fn dim(&self, t: &str) -> String {
        self.paint(Style::new().dimmed(), t)
    }
    /// Success.
    pub fn good(&self, t: &str) -> String {
        self.paint(Color::Green.normal(), t)
    }
    /// Warning.
    pub fn warn(&self, t: &str) -> String {
        self.paint(Color::Yellow.normal(), t)
    }
    /// Failure.
    pub fn bad(&self, t: &str) -> String {
        self.paint(Color::Red.bold(), t)
    }
}

/// Ranges shown before a long slot list is summarised.
pub const SHOWN_RANGES: usize = 8;

/// Slot ranges as `0-5460,5462`: all of them when `all` or when there are at most
/// [`SHOWN_RANGES`], else the first ones and a count (`0-3,7,... (5002 slots in 1431
/// ranges)`).
pub fn ranges_text(ranges: &str, all: bool) -> String {
    let parts: Vec<&str> = ranges.split(',').filter(|r| !r.is_empty()).collect();
    if all || parts.len() <= SHOWN_RANGES {
        return ranges.to_string();
    }
    let count: usize = parts
        .iter()
        .map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            match (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            }
        })
        .sum();
    format!(
        "{},... ({count} slots in {} ranges)",
        parts[..SHOWN_RANGES].join(","),
        parts.len()
    )
}

/// The `list` table: masters with slot counts and keys, replicas under their master;
/// long slot lists summarised (see [`topology_text_all`]).
pub fn topology_text(topo: &Topology, masters_only: bool, p: Painter) -> String {
    topology_text_all(topo, masters_only, false, p)
}

/// [`topology_text`], with every slot range when `all_slots`.
pub fn topology_text_all(
    topo: &Topology,
    masters_only: bool,
    all_slots: bool,
    p: Painter,
) -> String {
    let mut out = String::new();
    let masters: Vec<&Node> = topo.masters().collect();
    for m in &masters {
        let keys = topo
            .keys
            .get(&m.node_id)
            .map_or("?".into(), |k| k.to_string());
        let _ = writeln!(
            out,
            "{} {:<21} {} {:>5} slots {:>8} keys  {}{}{}",
            p.bold("M"),
            m.addr().to_string(),
            p.dim(m.short_id()),
            m.assigned_slots.len(),
            keys,
            ranges_text(&format_ranges(&m.assigned_slots), all_slots),
            server_note(m, topo, p),
            flags_note(m, topo, p),
        );
        if masters_only {
            continue;
        }
        for r in topo.replicas_of(&m.node_id) {
            let _ = writeln!(
                out,
                "  {} {:<19} {} replica{}{}",
                p.dim("S"),
                r.addr().to_string(),
                p.dim(r.short_id()),
                server_note(r, topo, p),
                flags_note(r, topo, p)
            );
        }
    }
    if !masters_only {
        let orphans: Vec<&Node> = topo
            .nodes
            .iter()
            .filter(|n| {
                !n.is_master()
                    && !masters
                        .iter()
                        .any(|m| Some(&m.node_id) == n.master_id.as_ref())
            })
            .collect();
        for r in orphans {
            let _ = writeln!(
                out,
                "  {} {:<19} {} replica of unknown {}{}",
                p.dim("S"),
                r.addr().to_string(),
                p.dim(r.short_id()),
                r.master_id.as_deref().unwrap_or("-"),
                flags_note(r, topo, p)
            );
        }
    }
    out
}

/// `  valkey 9.1.2` when the node's server was read, else nothing.
fn server_note(n: &Node, topo: &Topology, p: Painter) -> String {
    topo.servers
        .get(&n.node_id)
        .map_or(String::new(), |s| format!("  {}", p.dim(s)))
}

fn flags_note(n: &Node, topo: &Topology, p: Painter) -> String {
    let mut notes: Vec<String> = n
        .flags
        .iter()
        .filter(|f| !matches!(f.as_str(), "master" | "slave" | "myself"))
        .cloned()
        .collect();
    if topo.unreachable.contains_key(&n.node_id) && !n.is_failed() {
        notes.push("unreachable".into());
    }
    for (slot, peer) in &n.slots_migrating {
        notes.push(format!("migrating {slot} to {}", short_id(peer)));
    }
    for (slot, peer) in &n.slots_importing {
        notes.push(format!("importing {slot} from {}", short_id(peer)));
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!("  {}", p.warn(&format!("[{}]", notes.join(", "))))
    }
}

/// One line for an event (progress lines are for non-terminal output).
pub fn event_line(e: &Event, p: Painter) -> String {
    match e {
        Event::Step(s) => format!("{} {s}", p.dim(">>>")),
        Event::Warning(w) => format!("{} {w}", p.warn("warning:")),
        Event::Keys(k) => format!("    {}: {}/{} keys", k.label, k.done, k.total),
        Event::Progress(m) => format!(
            "    {} -> {}: {}/{} slots, {} keys",
            m.src, m.dst, m.slots_done, m.slots_total, m.keys_moved
        ),
    }
}

/// A dry run's plan as a numbered list; long slot lists summarised (see
/// [`plan_text_all`]).
pub fn plan_text(steps: &[PlanStep]) -> String {
    plan_text_all(steps, false)
}

/// [`plan_text`], with every slot range when `all_slots`.
pub fn plan_text_all(steps: &[PlanStep], all_slots: bool) -> String {
    let mut out = format!("Plan ({} steps, nothing was changed):\n", steps.len());
    for (i, s) in steps.iter().enumerate() {
        let short = ranges_text(&s.slots, all_slots);
        let detail = if s.slots.is_empty() {
            s.detail.clone()
        } else {
            s.detail.replace(&s.slots, &short)
        };
        let _ = write!(out, "{:>4}. {:<21} {}", i + 1, s.node, detail);
        if !s.slots.is_empty() && !s.detail.contains(&s.slots) {
            let _ = write!(out, " [{short}]");
        }
        out.push('\n');
    }
    out
}

/// The `check` report: problems (or OK) then notes.
pub fn check_text(r: &CheckReport, p: Painter) -> String {
    let mut out = String::new();
    for n in &r.notes {
        let _ = writeln!(out, "{}", p.dim(n));
    }
    if r.healthy() {
        let _ = writeln!(
            out,
            "{} all 16384 slots covered, all nodes agree, no open slot, every node reachable",
            p.good("[OK]")
        );
    }
    for problem in &r.problems {
        let _ = writeln!(out, "{} {problem}", p.bad("[ERR]"));
    }
    out
}

/// The `info` table.
pub fn info_text(info: &ClusterInfo) -> String {
    let mut out = String::new();
    for m in &info.masters {
        let keys = m.keys.map_or("?".into(), |k| k.to_string());
        let _ = writeln!(
            out,
            "{:<21} ({}) {:>9} keys | {:>5} slots | {} replica(s){}",
            m.addr,
            short_id(&m.node_id),
            keys,
            m.slots,
            m.replicas,
            m.server
                .as_deref()
                .map_or(String::new(), |s| format!(" | {s}"))
        );
    }
    let _ = writeln!(
        out,
        "total: {} keys in {} masters, {} slots, {} replica(s)",
        info.total_keys,
        info.masters.len(),
        info.total_slots,
        info.total_replicas
    );
    if !info.servers.is_empty() {
        let each: Vec<String> = info
            .servers
            .iter()
            .map(|(s, n)| format!("{s} ({n} node(s))"))
            .collect();
        let _ = writeln!(out, "servers: {}", each.join(", "));
    }
    out
}

/// What a backup wrote: one line per master, then the manifest.
pub fn backup_text(m: &crate::engine::rdb::Manifest) -> String {
    let mut out = String::new();
    for b in &m.masters {
        let _ = writeln!(
            out,
            "{:<21} {:>6} slots {:>9} keys  {:>12} bytes  {}  sha256 {}{}",
            b.addr,
            b.slot_count,
            b.keys,
            b.bytes,
            b.rdb,
            &b.sha256[..b.sha256.len().min(16)],
            rdb_note(b)
        );
    }
    let _ = writeln!(
        out,
        "{} node configurations, manifest {}",
        m.nodes.len(),
        crate::engine::rdb::MANIFEST
    );
    out
}

/// `  RDB v11 by valkey 9.1.2` (what is known of it).
fn rdb_note(b: &crate::engine::rdb::MasterBackup) -> String {
    let version = b.rdb_version.map(|v| match b.rdb_magic.as_deref() {
        Some("REDIS") | None => format!("RDB v{v}"),
        Some(m) => format!("{m} RDB v{v}"),
    });
    match (version, &b.server) {
        (Some(v), Some(s)) => format!("  {v} by {s}"),
        (Some(v), None) => format!("  {v}"),
        (None, Some(s)) => format!("  by {s}"),
        (None, None) => String::new(),
    }
}

/// A Redis reply as redis-cli shows it: `(integer) 1`, `(nil)`, `"text"`, numbered
/// nested arrays, `(error) ...`.
pub fn reply_text(v: &redis::Value) -> String {
    let mut out = String::new();
    write_reply(&mut out, v, 0);
    out
}

fn write_reply(out: &mut String, v: &redis::Value, indent: usize) {
    use redis::Value as V;
    match v {
        V::Nil => out.push_str("(nil)\n"),
        V::Int(i) => {
            let _ = writeln!(out, "(integer) {i}");
        }
        // Multi-line text at the top (INFO, CLUSTER NODES) reads best as it is.
        V::BulkString(b) if indent == 0 && b.contains(&b'\n') => {
            let text = String::from_utf8_lossy(b).replace("\r\n", "\n");
            let _ = writeln!(out, "{}", text.trim_end());
        }
        V::BulkString(b) => {
            let _ = writeln!(out, "{:?}", String::from_utf8_lossy(b));
        }
        V::SimpleString(s) => {
            let _ = writeln!(out, "{s}");
        }
        V::Okay => out.push_str("OK\n"),
        V::Double(d) => {
            let _ = writeln!(out, "(double) {d}");
        }
        V::Boolean(b) => {
            let _ = writeln!(out, "({b})");
        }
        V::ServerError(e) => {
            let _ = writeln!(out, "(error) {e}");
        }
        V::Array(items) | V::Set(items) if items.is_empty() => out.push_str("(empty array)\n"),
        V::Array(items) | V::Set(items) => {
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                let prefix = format!("{:>width$}) ", i + 1);
                out.push_str(&prefix);
                write_reply(out, item, indent + prefix.len());
            }
        }
        V::Map(pairs) => {
            for (i, (k, val)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(&" ".repeat(indent));
                }
                let key = reply_text(k);
                let prefix = format!("{}) ", key.trim_end());
                out.push_str(&prefix);
                write_reply(out, val, indent + prefix.len());
            }
        }
        other => {
            let _ = writeln!(out, "{other:?}");
        }
    }
}

/// A Redis reply as JSON: null, numbers, strings, arrays, objects, `{"error": ...}`.
pub fn reply_json(v: &redis::Value) -> serde_json::Value {
    use redis::Value as V;
    use serde_json::json;
    match v {
        V::Nil => serde_json::Value::Null,
        V::Int(i) => json!(i),
        V::BulkString(b) => json!(String::from_utf8_lossy(b)),
        V::SimpleString(s) => json!(s),
        V::Okay => json!("OK"),
        V::Double(d) => json!(d),
        V::Boolean(b) => json!(b),
        V::ServerError(e) => json!({ "error": e.to_string() }),
        V::Array(items) | V::Set(items) => {
            serde_json::Value::Array(items.iter().map(reply_json).collect())
        }
        V::Map(pairs) => serde_json::Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        reply_text(k).trim_end().trim_matches('"').to_string(),
                        reply_json(v),
                    )
                })
                .collect(),
        ),
        other => json!(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value as V;

    #[test]
    fn long_slot_lists_are_summarised_unless_all_are_asked_for() {
        let many: Vec<String> = (0..20).map(|i| (i * 3).to_string()).collect();
        let text = many.join(",");
        assert_eq!(
            ranges_text(&text, false),
            "0,3,6,9,12,15,18,21,... (20 slots in 20 ranges)"
        );
        assert_eq!(ranges_text(&text, true), text);
        assert_eq!(ranges_text("0-5460,5462", false), "0-5460,5462");
    }

    #[test]
    fn replies_look_like_redis_cli() {
        assert_eq!(reply_text(&V::Int(3)), "(integer) 3\n");
        assert_eq!(reply_text(&V::Nil), "(nil)\n");
        assert_eq!(reply_text(&V::Okay), "OK\n");
        assert_eq!(reply_text(&V::BulkString(b"a b".to_vec())), "\"a b\"\n");
        let nested = V::Array(vec![
            V::Int(1),
            V::Array(vec![V::BulkString(b"x".to_vec()), V::Nil]),
        ]);
        assert_eq!(
            reply_text(&nested),
            "1) (integer) 1\n2) 1) \"x\"\n   2) (nil)\n"
        );
        assert_eq!(reply_text(&V::Array(vec![])), "(empty array)\n");
        assert_eq!(
            reply_text(&V::BulkString(b"# Server\r\nredis_version:7\r\n".to_vec())),
            "# Server\nredis_version:7\n"
        );
        assert_eq!(reply_json(&nested), serde_json::json!([1, ["x", null]]));
    }
}
