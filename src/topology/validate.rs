//! Loading a saved topology (`redis-trib list HOST:PORT --json > FILE`) and checking
//! it before anything plans on it: every error names the field at fault, e.g.
//! `nodes[3].slots_migrating[0]: slot 65535 is out of range 0..16383`.

use super::node::check_node_id;
use super::{Node, Role, Topology};
use crate::slots::{check_slot, parse_slot_list, SLOT_COUNT};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// More keys than any node holds (about 10^12): a larger count in a snapshot is a
/// mistake, and bounding it keeps sums over nodes from overflowing.
pub const MAX_KEYS_PER_NODE: u64 = 1 << 40;

/// The most nodes a snapshot may list. Redis itself recommends at most 1,000 nodes
/// per cluster; planning stays linear well beyond (10,000 nodes load in well under
/// 1 GB), and a larger file is refused with this limit named rather than risk
/// exhausting memory.
pub const MAX_SNAPSHOT_NODES: usize = 20_000;

/// The largest snapshot file read, in bytes (32 MiB; a 20,000-node snapshot written
/// by `list --json` takes about 17 MiB).
pub const MAX_SNAPSHOT_BYTES: u64 = 32 << 20;

const NOT_A_SNAPSHOT: &str =
    "this is not a topology snapshot (write one with `redis-trib list HOST:PORT --json > FILE`)";

impl Topology {
    /// Reads and checks a saved topology; errors start with the file's name.
    pub fn load(path: &Path) -> Result<Topology> {
        let size = std::fs::metadata(path)
            .with_context(|| format!("cannot read topology {}", path.display()))?
            .len();
        if size > MAX_SNAPSHOT_BYTES {
            bail!(
                "{}: the snapshot is {} MiB, more than the {} MiB a topology snapshot may take (at most {MAX_SNAPSHOT_NODES} nodes)",
                path.display(),
                size >> 20,
                MAX_SNAPSHOT_BYTES >> 20
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read topology {}", path.display()))?;
        Topology::from_json(&text).with_context(|| path.display().to_string())
    }

    /// Parses a topology snapshot (the `list --json` document) and checks it with
    /// [`Topology::validate`].
    pub fn from_json(text: &str) -> Result<Topology> {
        let topo = structure(text)?;
        topo.validate()?;
        Ok(topo)
    }

    /// Checks what planning relies on: node ids as Redis makes them (40 hex
    /// characters), each id and each address once, slots in 0..16383, roles that
    /// agree with the flags, replicas that follow a known master and serve no slot,
    /// migration markers that name another node, key counts a node can hold, and an
    /// entry node that is one of the nodes.
    pub fn validate(&self) -> Result<()> {
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut addrs: BTreeMap<(&str, u16), usize> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let at = format!("nodes[{i}]");
            check_node_id(&n.node_id).with_context(|| format!("{at}.node_id"))?;
            if let Some(j) = ids.insert(&n.node_id, i) {
                bail!("{at}.node_id: node {} is also nodes[{j}]", n.node_id);
            }
            check_address(n, &at)?;
            if !n.host.is_empty() && n.port != 0 {
                if let Some(j) = addrs.insert((&n.host, n.port), i) {
                    bail!("{at}: address {} is also nodes[{j}]'s", n.addr());
                }
            }
        }
        let by_id: HashMap<&str, &Node> =
            self.nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
        for (i, n) in self.nodes.iter().enumerate() {
            check_node(&by_id, n, &format!("nodes[{i}]"))?;
        }
        if !self.entry_id.is_empty() && !ids.contains_key(self.entry_id.as_str()) {
            check_node_id(&self.entry_id).context("entry_id")?;
            bail!("entry_id: node {} is not one of the nodes", self.entry_id);
        }
        for (id, &keys) in &self.keys {
            if keys > MAX_KEYS_PER_NODE {
                bail!("keys[{id:?}]: {keys} keys is more than a node can hold");
            }
        }
        Ok(())
    }
}

/// Decodes the document; errors in a node name it (`nodes[2]: missing field ...`),
/// and slot numbers are checked here because the decoded types would lose where
/// they were.
fn structure(text: &str) -> Result<Topology> {
    let mut doc: Value = serde_json::from_str(text).context(NOT_A_SNAPSHOT)?;
    // The nodes are decoded one by one (so errors name them), the rest after.
    let nodes = doc
        .get_mut("nodes")
        .context("missing field `nodes`")
        .context(NOT_A_SNAPSHOT)?
        .as_array_mut()
        .map(std::mem::take)
        .context("`nodes` is not a list")
        .context(NOT_A_SNAPSHOT)?;
    if nodes.len() > MAX_SNAPSHOT_NODES {
        bail!(
            "the snapshot lists {} nodes, more than the {MAX_SNAPSHOT_NODES} a topology snapshot may hold",
            nodes.len()
        );
    }
    let mut decoded = Vec::with_capacity(nodes.len());
    for (i, n) in nodes.into_iter().enumerate() {
        let at = format!("nodes[{i}]");
        if let Some(items) = n.get("assigned_slots").and_then(Value::as_array) {
            for (j, item) in items.iter().enumerate() {
                if let Some(text) = item.as_str() {
                    parse_slot_list(&[text])
                        .with_context(|| format!("{at}.assigned_slots[{j}]"))?;
                }
            }
        }
        for field in ["slots_migrating", "slots_importing"] {
            let Some(markers) = n.get(field).and_then(Value::as_array) else {
                continue;
            };
            for (j, m) in markers.iter().enumerate() {
                let Some(slot) = m.get(0).filter(|s| s.is_number()) else {
                    continue;
                };
                match slot.as_i64() {
                    Some(s) => check_slot(s).map(drop),
                    None => Err(anyhow::anyhow!("slot {slot} is out of range 0..16383")),
                }
                .with_context(|| format!("{at}.{field}[{j}]"))?;
            }
        }
        let node: Node = serde_json::from_value(n)
            .with_context(|| at.clone())
            .context(NOT_A_SNAPSHOT)?;
        decoded.push(node);
    }
    let mut topo: Topology = serde_json::from_value(doc).context(NOT_A_SNAPSHOT)?;
    topo.nodes = decoded;
    Ok(topo)
}

/// A host a client can use (empty only for a node Redis knows no address of).
fn check_address(n: &Node, at: &str) -> Result<()> {
    if n.host.is_empty() {
        if !(n.no_addr() || n.in_handshake()) {
            bail!("{at}.host: empty, but the node is not flagged noaddr or handshake");
        }
    } else if n.host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{at}.host: {:?} is not a host name or IP address", n.host);
    }
    Ok(())
}

/// Checks one node (`at`: where it is, `nodes[3]`) against the others.
fn check_node(by_id: &HashMap<&str, &Node>, n: &Node, at: &str) -> Result<()> {
    let says_slave = n.has_flag("slave");
    if n.has_flag("master") && says_slave {
        bail!("{at}.flags: both master and slave");
    }
    match (n.role_in_cluster, says_slave) {
        (Role::Slave, false) => bail!(
            "{at}.role_in_cluster: slave, but the flags ({}) do not say slave",
            n.flags.join(",")
        ),
        (Role::Master, true) => bail!("{at}.role_in_cluster: master, but the flags say slave"),
        _ => {}
    }
    match (&n.master_id, n.role_in_cluster) {
        (Some(_), Role::Master) => {
            bail!("{at}.master_id: a master replicates no node (use null)")
        }
        (Some(m), Role::Slave) => {
            check_node_id(m).with_context(|| format!("{at}.master_id"))?;
            match by_id.get(m.as_str()).copied() {
                None => bail!("{at}.master_id: node {m} is not one of the nodes"),
                Some(master) if master.node_id == n.node_id => {
                    bail!("{at}.master_id: the node cannot replicate itself")
                }
                Some(master) if !master.is_master() => {
                    bail!("{at}.master_id: node {m} is a replica, not a master")
                }
                Some(_) => {}
            }
        }
        (None, _) => {}
    }
    if !n.is_master() && !n.assigned_slots.is_empty() {
        bail!("{at}.assigned_slots: a replica serves no slots");
    }
    if let Some(s) = n.assigned_slots.iter().find(|&&s| s >= SLOT_COUNT) {
        bail!("{at}.assigned_slots: slot {s} is out of range 0..16383");
    }
    if n.assigned_slots.windows(2).any(|w| w[0] >= w[1]) {
        bail!("{at}.assigned_slots: not sorted, or a slot is listed twice");
    }
    for (field, markers) in [
        ("slots_migrating", &n.slots_migrating),
        ("slots_importing", &n.slots_importing),
    ] {
        for (j, (slot, peer)) in markers.iter().enumerate() {
            let here = || format!("{at}.{field}[{j}]");
            check_slot((*slot).into()).with_context(here)?;
            check_node_id(peer).with_context(here)?;
            if *peer == n.node_id {
                bail!(
                    "{}: the node cannot migrate a slot to or from itself",
                    here()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "07c37dfeb235213a872192d90877d0cd55635b91";
    const B: &str = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1";
    const C: &str = "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f";

    fn snapshot() -> serde_json::Value {
        let node = |id: &str, port: u16, role: &str, master: Option<&str>, slots: &[&str]| {
            serde_json::json!({
                "node_id": id, "host": "127.0.0.1", "port": port, "cport": port + 10000,
                "hostname": null, "flags": [role], "role_in_cluster": role, "master_id": master,
                "ping_sent": 0, "pong_recv": 0, "config_epoch": 1, "connected": true,
                "assigned_slots": slots, "slots_migrating": [], "slots_importing": []
            })
        };
        serde_json::json!({
            "entry_id": A,
            "nodes": [
                node(A, 7000, "master", None, &["0-8191"]),
                node(B, 7001, "master", None, &["8192-16383"]),
                node(C, 7002, "slave", Some(A), &[]),
            ],
            "keys": { A: 10, B: 20 },
            "states": {},
            "unreachable": {}
        })
    }

    /// An edit of a valid snapshot.
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

    fn error_of(doc: &serde_json::Value) -> String {
        format!("{:#}", Topology::from_json(&doc.to_string()).unwrap_err())
    }

    #[test]
    fn loads_a_valid_snapshot_and_round_trips() {
        let topo = Topology::from_json(&snapshot().to_string()).unwrap();
        assert_eq!(topo.nodes.len(), 3);
        assert_eq!(topo.total_keys(), 30);
        let again = Topology::from_json(&serde_json::to_string(&topo).unwrap()).unwrap();
        assert_eq!(again, topo);
        assert!(Topology::default().validate().is_ok());
    }

    #[test]
    fn names_the_field_at_fault() {
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|d| d["nodes"][1]["slots_migrating"] = serde_json::json!([[65535, A]])),
                "nodes[1].slots_migrating[0]: slot 65535 is out of range 0..16383",
            ),
            (
                Box::new(|d| d["nodes"][0]["slots_importing"] = serde_json::json!([[-1, B]])),
                "nodes[0].slots_importing[0]: slot -1 is out of range",
            ),
            (
                Box::new(|d| d["nodes"][1]["node_id"] = "é".repeat(40).into()),
                "nodes[1].node_id: node id \"éééé",
            ),
            (
                Box::new(|d| d["nodes"][1]["node_id"] = "abc".into()),
                "nodes[1].node_id: node id \"abc\" is not 40 lowercase hexadecimal",
            ),
            (
                Box::new(|d| d["nodes"][1]["node_id"] = A.into()),
                "nodes[1].node_id: node 07c37dfeb235213a872192d90877d0cd55635b91 is also nodes[0]",
            ),
            (
                Box::new(|d| d["nodes"][1]["port"] = 7000.into()),
                "nodes[1]: address 127.0.0.1:7000 is also nodes[0]'s",
            ),
            (
                Box::new(|d| d["nodes"][1]["assigned_slots"] = serde_json::json!(["1-16384"])),
                "nodes[1].assigned_slots[0]: slot 16384 is out of range",
            ),
            (
                Box::new(|d| d["nodes"][2]["master_id"] = B.replace('6', "7").into()),
                "nodes[2].master_id: node 77ed2db8",
            ),
            (
                Box::new(|d| d["nodes"][2]["master_id"] = C.into()),
                "nodes[2].master_id: the node cannot replicate itself",
            ),
            (
                Box::new(|d| d["nodes"][2]["role_in_cluster"] = "master".into()),
                "nodes[2].role_in_cluster: master, but the flags say slave",
            ),
            (
                Box::new(|d| d["nodes"][2]["role_in_cluster"] = "boss".into()),
                "nodes[2]: unknown variant `boss`",
            ),
            (
                Box::new(|d| d["nodes"][2]["assigned_slots"] = serde_json::json!(["5"])),
                "nodes[2].assigned_slots: a replica serves no slots",
            ),
            (
                Box::new(|d| d["nodes"][0]["slots_migrating"] = serde_json::json!([[5, A]])),
                "nodes[0].slots_migrating[0]: the node cannot migrate",
            ),
            (
                Box::new(|d| d["nodes"][0]["port"] = 70000.into()),
                "nodes[0]: invalid value: integer `70000`",
            ),
            (
                Box::new(|d| d["keys"][A] = u64::MAX.into()),
                "is more than a node can hold",
            ),
            (
                Box::new(|d| d["entry_id"] = "x".into()),
                "entry_id: node id \"x\"",
            ),
            (Box::new(|d| d["nodes"] = 5.into()), "`nodes` is not a list"),
        ];
        for (mutate, want) in cases {
            let mut doc = snapshot();
            mutate(&mut doc);
            let err = error_of(&doc);
            assert!(err.contains(want), "want {want:?}, got {err:?}");
        }
        let err = format!("{:#}", Topology::from_json("{}").unwrap_err());
        assert!(err.contains("is not a topology snapshot"), "{err}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topology.json");
        let mut doc = snapshot();
        doc["nodes"][1]["slots_migrating"] = serde_json::json!([[65535, A]]);
        std::fs::write(&path, doc.to_string()).unwrap();
        let err = format!("{:#}", Topology::load(&path).unwrap_err());
        assert!(
            err.ends_with(
                "topology.json: nodes[1].slots_migrating[0]: slot 65535 is out of range 0..16383"
            ),
            "{err}"
        );
    }
}
