//! Zones (availability zones, racks): which failure domain each node lives in, so
//! that `create` spreads masters and replicas across them and `check` reports a
//! master whose replicas share its zone.
//!
//! A node's zone comes from the `--zones FILE` given to the process (see
//! [`ZoneFile`]), else from the server's own `availability-zone` setting (Valkey
//! 8.0+: `CONFIG GET availability-zone`), else it is unknown. Zones read from the
//! servers are remembered for the life of the process, so a script reading
//! `n.zone` costs no round trip once its nodes were listed.

use crate::addr::Addr;
use crate::backend::Backend;
use crate::topology::{Node, Topology};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A `--zones` file: node → zone. Two formats, told apart by the first character:
///
/// * lines `HOST:PORT ZONE` or `HOST ZONE` (a host alone names every port on it: a
///   rack of nodes at once), `#` starts a comment, blank lines are skipped;
/// * a JSON object `{"HOST:PORT": "ZONE", "HOST": "ZONE"}`.
///
/// `HOST:PORT` wins over `HOST`. Hosts match as written, or by the address they
/// resolve to (`localhost` names `127.0.0.1`).
#[derive(Clone, Debug, Default)]
pub struct ZoneFile {
    /// Where it was read from (named in errors).
    pub path: PathBuf,
    by_addr: BTreeMap<(String, u16), String>,
    by_host: BTreeMap<String, String>,
    /// Resolved address of each host key, for matching a node announced by IP.
    resolved: Vec<(IpAddr, Option<u16>, String)>,
}

impl ZoneFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ZoneFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--zones {}: cannot read it", path.display()))?;
        ZoneFile::parse(path, &text)
    }

    /// Parses `text` (the content of `path`, named in errors with the line).
    pub fn parse(path: &Path, text: &str) -> Result<ZoneFile> {
        let shown = path.display();
        let mut entries: Vec<(usize, String, String)> = Vec::new();
        if text.trim_start().starts_with('{') {
            let map: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(text).map_err(|e| {
                    anyhow::anyhow!(
                        "{shown}:{}: not a JSON object of \"host:port\": \"zone\" ({e})",
                        e.line()
                    )
                })?;
            for (k, v) in map {
                let line = text
                    .lines()
                    .position(|l| l.contains(&format!("\"{k}\"")))
                    .map_or(1, |i| i + 1);
                match v {
                    serde_json::Value::String(z) => entries.push((line, k, z)),
                    other => {
                        bail!("{shown}:{line}: the zone of {k:?} must be a string, not {other}")
                    }
                }
            }
        } else {
            for (i, raw) in text.lines().enumerate() {
                let line = raw.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() != 2 {
                    bail!(
                        "{shown}:{}: expected `HOST:PORT ZONE` or `HOST ZONE`, got {line:?}",
                        i + 1
                    );
                }
                entries.push((i + 1, words[0].to_string(), words[1].to_string()));
            }
        }
        let mut f = ZoneFile {
            path: path.to_path_buf(),
            ..ZoneFile::default()
        };
        for (line, key, zone) in entries {
            if zone.is_empty() || zone.chars().any(char::is_whitespace) {
                bail!("{shown}:{line}: zone {zone:?} of {key} must be one word");
            }
            let (host, port) =
                split_key(&key).with_context(|| format!("{shown}:{line}: bad node {key:?}"))?;
            let earlier = match port {
                Some(p) => f.by_addr.insert((host.clone(), p), zone.clone()),
                None => f.by_host.insert(host.clone(), zone.clone()),
            };
            if let Some(z) = earlier.filter(|z| *z != zone) {
                bail!("{shown}:{line}: {key} is given zone {zone} here and {z} earlier");
            }
            if let Ok(ip) = Addr::new(host.clone(), port.unwrap_or(0)).resolve_ip() {
                f.resolved.push((ip, port, zone));
            }
        }
        Ok(f)
    }

    /// The zone the file gives `addr`: by `HOST:PORT`, then by `HOST`, then by the
    /// address either resolves to.
    pub fn lookup(&self, addr: &Addr) -> Option<&str> {
        if let Some(z) = self.by_addr.get(&(addr.host.clone(), addr.port)) {
            return Some(z);
        }
        if let Some(z) = self.by_host.get(&addr.host) {
            return Some(z);
        }
        if self.resolved.is_empty() {
            return None;
        }
        let ip = addr.resolve_ip().ok()?;
        let find = |port: Option<u16>| {
            self.resolved
                .iter()
                .find(|(i, p, _)| *i == ip && *p == port)
                .map(|(_, _, z)| z.as_str())
        };
        find(Some(addr.port)).or_else(|| find(None))
    }

    /// How many nodes and hosts it names.
    pub fn len(&self) -> usize {
        self.by_addr.len() + self.by_host.len()
    }

    /// True when it names nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `host:port`, `[v6]:port`, or a host alone.
fn split_key(key: &str) -> Result<(String, Option<u16>)> {
    if let Some(rest) = key.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').context("unclosed [")?;
        return match tail.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), Some(p.parse().context("bad port")?))),
            None if tail.is_empty() => Ok((host.to_string(), None)),
            None => bail!("unexpected {tail:?} after ]"),
        };
    }
    match key.rsplit_once(':') {
        // More than one colon and no brackets: an IPv6 address alone.
        Some((h, _)) if h.contains(':') => Ok((key.to_string(), None)),
        Some((h, p)) if !h.is_empty() => Ok((h.to_string(), Some(p.parse().context("bad port")?))),
        Some(_) => bail!("no host"),
        None => Ok((key.to_string(), None)),
    }
}

/// The process's zones: the `--zones` file, and what servers said.
#[derive(Default)]
struct State {
    file: Option<Arc<ZoneFile>>,
    /// `host:port` → the server's availability-zone (None: it has none).
    server: BTreeMap<String, Option<String>>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut guard = STATE.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(State::default))
}

/// Makes `file` the process's `--zones` file (None: none).
pub fn use_file(file: Option<ZoneFile>) {
    with_state(|s| s.file = file.map(Arc::new));
}

/// The process's `--zones` file, if one was given.
pub fn file() -> Option<Arc<ZoneFile>> {
    with_state(|s| s.file.clone())
}

/// The zone of `addr` as far as known without asking it: the `--zones` file, else
/// what the server said earlier in this process.
pub fn known(addr: &Addr) -> Option<String> {
    with_state(|s| {
        if let Some(z) = s.file.as_ref().and_then(|f| f.lookup(addr)) {
            return Some(z.to_string());
        }
        s.server.get(&addr.to_string()).cloned().flatten()
    })
}

/// The zone of `addr`: the `--zones` file's, else the server's `availability-zone`
/// (read once per process; a server without the setting, or one that does not
/// answer, has none).
pub fn zone_of(b: &mut dyn Backend, addr: &Addr) -> Option<String> {
    let key = addr.to_string();
    let cached = with_state(|s| {
        if let Some(z) = s.file.as_ref().and_then(|f| f.lookup(addr)) {
            return Some(Some(z.to_string()));
        }
        s.server.get(&key).cloned()
    });
    if let Some(z) = cached {
        return z;
    }
    // Only an answer is remembered: a node that did not answer is asked again later.
    let z = server_zone(b, addr)?;
    with_state(|s| s.server.insert(key, z.clone()));
    z
}

/// `CONFIG GET availability-zone`: `Some(zone)` when set and not empty, `Some(None)`
/// when the server has no such setting or it is empty, `None` when it did not answer.
fn server_zone(b: &mut dyn Backend, addr: &Addr) -> Option<Option<String>> {
    let args: Vec<Vec<u8>> = ["CONFIG", "GET", "availability-zone"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let reply = b.execute(addr, &args).ok()?;
    let pair: Vec<String> = redis::from_redis_value(reply).unwrap_or_default();
    Some(pair.get(1).filter(|z| !z.is_empty()).cloned())
}

/// [`learn`] for every node of `topo` that was read.
pub fn learn_topology(b: &mut dyn Backend, topo: &Topology) {
    let unreachable: BTreeSet<String> = topo.unreachable.keys().cloned().collect();
    learn(b, &topo.nodes, &unreachable);
}

/// Reads (and remembers) the zone of every node of `nodes` that answers: nodes
/// flagged failed or `unreachable` are looked up in the file only.
pub fn learn(b: &mut dyn Backend, nodes: &[Node], unreachable: &BTreeSet<String>) {
    // The nodes neither the file nor the cache answers for, asked all at once.
    let ask: Vec<Addr> = nodes
        .iter()
        .filter(|n| !(n.is_failed() || n.no_addr() || unreachable.contains(&n.node_id)))
        .map(Node::addr)
        .filter(|a| {
            with_state(|s| {
                s.file.as_ref().and_then(|f| f.lookup(a)).is_none()
                    && !s.server.contains_key(&a.to_string())
            })
        })
        .collect();
    let args: Vec<Vec<u8>> = ["CONFIG", "GET", "availability-zone"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let replies = b.execute_many(&ask, &args);
    for (a, reply) in ask.iter().zip(replies) {
        // Only an answer is remembered: a node that did not answer is asked again.
        let Ok(reply) = reply else { continue };
        let pair: Vec<String> = redis::from_redis_value(reply).unwrap_or_default();
        let z = pair.get(1).filter(|z| !z.is_empty()).cloned();
        with_state(|s| s.server.insert(a.to_string(), z));
    }
}

/// What `check` says about zones (pure), given each node's zone by id: a master
/// serving slots whose every replica is in its own zone is a problem (losing that
/// zone loses the shard) when the cluster spans other zones; a master with some
/// replica in its zone and another elsewhere is a note; so is a cluster in one zone.
/// Nothing when no zone is known.
pub fn zone_findings(
    topo: &Topology,
    zone: &dyn Fn(&Node) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let zones: BTreeMap<&str, Option<String>> = topo
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), zone(n)))
        .collect();
    let known: BTreeSet<&String> = zones.values().flatten().collect();
    if known.is_empty() {
        return (problems, notes);
    }
    if known.len() == 1 {
        notes.push(format!(
            "every node with a known zone is in zone {}: no spreading across zones is possible",
            known.iter().next().map_or("", |z| z.as_str())
        ));
        return (problems, notes);
    }
    for m in topo.masters().filter(|m| !m.assigned_slots.is_empty()) {
        let Some(mz) = zones.get(m.node_id.as_str()).cloned().flatten() else {
            continue;
        };
        let replicas: Vec<&Node> = topo
            .replicas_of(&m.node_id)
            .filter(|r| !r.is_failed())
            .collect();
        let same: Vec<String> = replicas
            .iter()
            .filter(|r| zones.get(r.node_id.as_str()).cloned().flatten().as_deref() == Some(&mz))
            .map(|r| r.addr().to_string())
            .collect();
        if same.is_empty() {
            continue;
        }
        let name = topo.describe(&m.node_id);
        if same.len() == replicas.len() {
            problems.push(format!(
                "master {name} and its replica(s) {} are all in zone {mz}: losing that zone loses these slots; `zones::fix_replicas(cluster)` (import \"zones\") re-points replicas across zones",
                same.join(", ")
            ));
        } else {
            notes.push(format!(
                "master {name} shares zone {mz} with its replica(s) {} (it has another replica in another zone)",
                same.join(", ")
            ));
        }
    }
    (problems, notes)
}

/// `zone_findings` on a live (or simulated) cluster: zones from the file or the
/// servers that answer.
pub fn check_zones(b: &mut dyn Backend, topo: &Topology) -> (Vec<String>, Vec<String>) {
    learn_topology(b, topo);
    zone_findings(topo, &|n| known(&n.addr()))
}

/// Adds `"zone"` to each node of a serialized topology (the `list --json`
/// document) whose zone is known; nothing when no zone is.
pub fn annotate(b: &mut dyn Backend, topo: &Topology, doc: &mut serde_json::Value) {
    learn_topology(b, topo);
    let Some(nodes) = doc.get_mut("nodes").and_then(|n| n.as_array_mut()) else {
        return;
    };
    for (doc_node, n) in nodes.iter_mut().zip(&topo.nodes) {
        if let (Some(z), Some(obj)) = (known(&n.addr()), doc_node.as_object_mut()) {
            obj.insert("zone".into(), serde_json::Value::String(z));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ZoneFile> {
        ZoneFile::parse(Path::new("zones.txt"), text)
    }

    #[test]
    fn lines_by_addr_and_by_host() {
        let f = parse(
            "# rack map\n10.0.0.1:7000 a\n10.0.0.1 b  # the rest of that host\n\n[::1]:7001 c\n",
        )
        .unwrap();
        assert_eq!(f.lookup(&Addr::new("10.0.0.1", 7000)), Some("a"));
        assert_eq!(f.lookup(&Addr::new("10.0.0.1", 7001)), Some("b"));
        assert_eq!(f.lookup(&Addr::new("::1", 7001)), Some("c"));
        assert_eq!(f.lookup(&Addr::new("10.0.0.2", 7000)), None);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn json_object_and_resolved_hosts() {
        let f = ZoneFile::parse(
            Path::new("z.json"),
            "{\n  \"localhost:7000\": \"east\",\n  \"localhost\": \"west\"\n}",
        )
        .unwrap();
        assert_eq!(f.lookup(&Addr::new("127.0.0.1", 7000)), Some("east"));
        assert_eq!(f.lookup(&Addr::new("127.0.0.1", 7002)), Some("west"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = parse("10.0.0.1:7000 a\n10.0.0.1:7001\n").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("zones.txt:2: expected"),
            "{e:#}"
        );
        let e = parse("10.0.0.1:x a\n").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("zones.txt:1: bad node"),
            "{e:#}"
        );
        let e = parse("h:1 a\nh:1 b\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("zones.txt:2: h:1 is given zone b here and a earlier"),
            "{e:#}"
        );
        let e = ZoneFile::parse(Path::new("z.json"), "{\"h:1\": 3}").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("z.json:1: the zone of \"h:1\" must be a string"),
            "{e:#}"
        );
        let e = ZoneFile::parse(Path::new("z.json"), "{\n\"h:1\": \"a\",,}").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("z.json:2: not a JSON object"),
            "{e:#}"
        );
    }

    fn topo(spec: &[(&str, u16, Option<&str>)]) -> Topology {
        // (id letter, port, master letter); masters serve one slot each.
        let id = |c: &str| c.repeat(40);
        let nodes: Vec<Node> = spec
            .iter()
            .enumerate()
            .map(|(i, (me, port, master))| {
                let line = match master {
                    None => format!(
                        "{} 10.0.0.1:{port}@1{port} master - 0 0 {} connected {i}",
                        id(me),
                        i + 1
                    ),
                    Some(m) => format!(
                        "{} 10.0.0.1:{port}@1{port} slave {} 0 0 {} connected",
                        id(me),
                        id(m),
                        i + 1
                    ),
                };
                crate::topology::parse_node_line(&line).unwrap()
            })
            .collect();
        Topology {
            entry_id: nodes[0].node_id.clone(),
            nodes,
            ..Topology::default()
        }
    }

    #[test]
    fn findings_problem_note_and_silence() {
        // a, b masters; c replicates a, d and e replicate b.
        let t = topo(&[
            ("a", 1, None),
            ("b", 2, None),
            ("c", 3, Some("a")),
            ("d", 4, Some("b")),
            ("e", 5, Some("b")),
        ]);
        let zones = |map: &'static [(u16, &'static str)]| {
            move |n: &Node| {
                map.iter()
                    .find(|(p, _)| *p == n.port)
                    .map(|(_, z)| z.to_string())
            }
        };
        let (p, n) = zone_findings(
            &t,
            &zones(&[(1, "x"), (2, "y"), (3, "x"), (4, "y"), (5, "x")]),
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("10.0.0.1:3") && p[0].contains("zone x"),
            "{p:?}"
        );
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(
            n[0].contains("10.0.0.1:4") && n[0].contains("zone y"),
            "{n:?}"
        );
        let (p, n) = zone_findings(
            &t,
            &zones(&[(1, "x"), (2, "y"), (3, "y"), (4, "x"), (5, "x")]),
        );
        assert!(p.is_empty() && n.is_empty(), "{p:?} {n:?}");
        let (p, n) = zone_findings(&t, &zones(&[]));
        assert!(p.is_empty() && n.is_empty());
        let (p, n) = zone_findings(&t, &zones(&[(1, "x"), (3, "x")]));
        assert!(p.is_empty());
        assert_eq!(n.len(), 1);
        assert!(n[0].contains("zone x: no spreading"), "{n:?}");
    }
}
