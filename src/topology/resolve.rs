//! Node references as operators and scripts write them — a node id, an id prefix of
//! [`MIN_PREFIX`]+ characters, or `HOST:PORT` (a host name matches the address it
//! resolves to) — resolved against a set of nodes. Every command and script function
//! that names a node goes through [`NodeIndex`], so the same reference means the
//! same node everywhere. Lookups are O(log n): plans naming thousands of nodes stay
//! linear.

use super::Node;
use crate::addr::Addr;
use anyhow::{bail, Result};
use std::collections::HashMap;

/// The shortest id prefix accepted (as git accepts 4+ characters of a hash).
pub const MIN_PREFIX: usize = 4;

/// Why a reference named no single node.
#[derive(Debug, PartialEq)]
pub enum Miss<'a> {
    /// Nothing matches.
    Nothing,
    /// An id prefix shared by these nodes (the first few).
    Several(Vec<&'a Node>),
}

/// Nodes indexed by id, sorted id (for prefixes) and address.
pub struct NodeIndex<'a> {
    by_id: HashMap<&'a str, &'a Node>,
    ids: Vec<&'a str>,
    by_addr: HashMap<Addr, &'a Node>,
}

impl<'a> NodeIndex<'a> {
    /// Indexes `nodes` (typically a topology's nodes or its masters).
    pub fn new(nodes: impl IntoIterator<Item = &'a Node>) -> NodeIndex<'a> {
        let nodes: Vec<&Node> = nodes.into_iter().collect();
        let mut ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        ids.sort_unstable();
        let mut by_id = HashMap::with_capacity(nodes.len());
        for n in &nodes {
            // The first line with an id wins, as in `Topology::node`.
            by_id.entry(n.node_id.as_str()).or_insert(*n);
        }
        NodeIndex {
            by_id,
            ids,
            by_addr: nodes
                .iter()
                .filter(|n| !n.no_addr() && n.port != 0)
                .map(|n| (n.addr(), *n))
                .collect(),
        }
    }

    /// The node with exactly this id.
    pub fn node(&self, id: &str) -> Option<&'a Node> {
        self.by_id.get(id).copied()
    }

    /// The node `spec` names: an exact id, then a unique id prefix of
    /// [`MIN_PREFIX`]+ characters, then an address (a host name is resolved).
    pub fn find(&self, spec: &str) -> Result<&'a Node, Miss<'a>> {
        if let Some(n) = self.by_id.get(spec) {
            return Ok(n);
        }
        if spec.chars().count() >= MIN_PREFIX {
            let from = self.ids.partition_point(|id| *id < spec);
            let hits: Vec<&Node> = self.ids[from..]
                .iter()
                .take_while(|id| id.starts_with(spec))
                .take(4)
                .filter_map(|id| self.by_id.get(id).copied())
                .collect();
            match hits.len() {
                0 => {}
                1 => return Ok(hits[0]),
                _ => return Err(Miss::Several(hits)),
            }
        }
        let Ok(addr) = Addr::parse(spec) else {
            return Err(Miss::Nothing);
        };
        if let Some(n) = self.by_addr.get(&addr) {
            return Ok(n);
        }
        match addr.resolve_ip() {
            Ok(ip) if ip.to_string() != addr.host => {
                let by_ip = Addr {
                    host: ip.to_string(),
                    ..addr
                };
                self.by_addr.get(&by_ip).copied().ok_or(Miss::Nothing)
            }
            _ => Err(Miss::Nothing),
        }
    }

    /// [`find`](Self::find), with a miss explained in one line; `what` is the kind
    /// of node looked for (`master`, `node`).
    pub fn resolve(&self, spec: &str, what: &str) -> Result<&'a Node> {
        match self.find(spec) {
            Ok(n) => Ok(n),
            Err(Miss::Nothing) => bail!(
                "no {what} of the cluster matches '{spec}' (give a node id, an id prefix of {MIN_PREFIX}+ characters or HOST:PORT; `redis-trib check` lists them)"
            ),
            Err(Miss::Several(hits)) => bail!(
                "'{spec}' matches {}{} {what}s ({}); give more of the id",
                if hits.len() >= 4 { "at least " } else { "" },
                hits.len(),
                hits.iter()
                    .map(|n| format!("{} {}", n.short_id(), n.addr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::parse_node_line;

    fn nodes() -> Vec<Node> {
        let a = format!("{}{}", "ab".repeat(4), "0".repeat(32));
        let c = format!("{}{}", "ab".repeat(3), "c".repeat(34));
        vec![
            parse_node_line(&format!(
                "{a} 127.0.0.1:7000@17000 master - 0 0 1 connected 0-16383"
            ))
            .unwrap(),
            parse_node_line(&format!(
                "{c} 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected"
            ))
            .unwrap(),
        ]
    }

    #[test]
    fn ids_prefixes_and_addresses() {
        let n = nodes();
        let index = NodeIndex::new(&n);
        assert_eq!(index.find(&n[1].node_id).map(|n| n.port), Ok(7001));
        assert_eq!(index.find("abababab").unwrap().port, 7000);
        match index.find("ababab") {
            Err(Miss::Several(hits)) => {
                assert_eq!(
                    hits.iter().map(|n| n.port).collect::<Vec<_>>(),
                    [7000, 7001]
                )
            }
            other => panic!("expected two hits, got {:?}", other.map(|n| n.port)),
        }
        assert_eq!(index.find("127.0.0.1:7001").unwrap().port, 7001);
        assert_eq!(index.find("localhost:7000").unwrap().port, 7000);
        assert_eq!(
            index.find("aba").unwrap_err(),
            Miss::Nothing,
            "too short a prefix"
        );
        assert_eq!(index.find("127.0.0.1:7009").unwrap_err(), Miss::Nothing);
        assert_eq!(index.find("").unwrap_err(), Miss::Nothing);
        assert_eq!(index.find("é").unwrap_err(), Miss::Nothing);
    }

    #[test]
    fn misses_are_explained() {
        let n = nodes();
        let index = NodeIndex::new(&n);
        let several = index.resolve("abab", "node").unwrap_err().to_string();
        assert!(several.contains("'abab' matches 2 nodes"), "{several}");
        let none = index.resolve("beef", "master").unwrap_err().to_string();
        assert!(
            none.starts_with("no master of the cluster matches 'beef'"),
            "{none}"
        );
    }
}
