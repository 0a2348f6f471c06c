//! Node tables shared between views: a simulation keeps one table per cluster, and
//! every node of that cluster reports it, so its views share it instead of each
//! carrying a copy of everyone ([`SharedView`]). The checks over views
//! ([`super::convergence_problem`] and friends) take any [`Seen`], and look at a
//! shared table once however many views share it.

use super::{Node, View};
use crate::addr::Addr;
use crate::slots::SLOT_COUNT;
use std::collections::HashMap;
use std::sync::Arc;

/// The nodes one cluster lists, indexed by id, with the owner of each slot.
#[derive(Debug, Default)]
pub struct Table {
    nodes: Vec<Node>,
    by_id: HashMap<String, usize>,
    /// Index in `nodes` of the owner of each slot (the last master listing it).
    owners: Vec<Option<u32>>,
}

impl Table {
    /// A table of `nodes` (their `myself` flags removed: a shared table is no one's).
    pub fn new(mut nodes: Vec<Node>) -> Table {
        let mut by_id = HashMap::with_capacity(nodes.len());
        let mut owners = vec![None; usize::from(SLOT_COUNT)];
        for (i, n) in nodes.iter_mut().enumerate() {
            n.flags.retain(|f| f != "myself");
            by_id.insert(n.node_id.clone(), i);
            if n.is_master() {
                for &s in &n.assigned_slots {
                    if let (Some(o), Ok(i)) = (owners.get_mut(usize::from(s)), u32::try_from(i)) {
                        *o = Some(i);
                    }
                }
            }
        }
        Table {
            nodes,
            by_id,
            owners,
        }
    }

    /// Every node, in the table's order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.by_id.get(id).and_then(|&i| self.nodes.get(i))
    }

    /// Index of the node with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Replaces the line of the node with `node`'s id (its `myself` flag removed),
    /// keeping its place; false (and no change) when the table has no such node.
    /// The owners of slots are not updated: see [`Table::set_owner`].
    pub fn replace(&mut self, mut node: Node) -> bool {
        let Some(&i) = self.by_id.get(&node.node_id) else {
            return false;
        };
        node.flags.retain(|f| f != "myself");
        match self.nodes.get_mut(i) {
            Some(line) => {
                *line = node;
                true
            }
            None => false,
        }
    }

    /// Records `owner` (a node id of the table, or `None`) as the owner of `slots`,
    /// as [`Table::new`] would find it once `owner` is the only master listing them
    /// (or no master lists them). False (and no change) when `owner` is not in the
    /// table; slots out of range are skipped.
    pub fn set_owner(&mut self, slots: &[u16], owner: Option<&str>) -> bool {
        let index = match owner {
            Some(id) => match self.by_id.get(id).and_then(|&i| u32::try_from(i).ok()) {
                Some(i) => Some(i),
                None => return false,
            },
            None => None,
        };
        for &s in slots {
            if let Some(o) = self.owners.get_mut(usize::from(s)) {
                *o = index;
            }
        }
        true
    }

    /// The owner id of each slot (`None`: uncovered).
    pub fn owner_ids(&self) -> Vec<Option<&str>> {
        self.owners
            .iter()
            .map(|o| {
                o.and_then(|i| self.nodes.get(i as usize))
                    .map(|n| n.node_id.as_str())
            })
            .collect()
    }
}

/// What one node reports, its node table shared with the other nodes of its cluster
/// (see [`crate::backend::Backend::shared_view`]).
#[derive(Clone, Debug)]
pub struct SharedView {
    /// The address the node was asked on.
    pub addr: Addr,
    /// The nodes it knows.
    pub table: Arc<Table>,
    /// Its own line's index in `table`.
    pub me: usize,
    /// `cluster_state` (`ok` or `fail`).
    pub cluster_state: String,
    /// `cluster_current_epoch`.
    pub current_epoch: u64,
    /// Keys in database 0.
    pub keys: u64,
}

impl SharedView {
    /// The node's own line (without the `myself` flag, which a shared table lacks).
    pub fn myself(&self) -> &Node {
        // `me` indexes the table by construction; an empty table has no one.
        &self.table.nodes()[self.me.min(self.table.nodes().len().saturating_sub(1))]
    }

    /// The same as a [`View`] of its own: the list copied, its own line flagged
    /// `myself` first, as a node reports it.
    pub fn to_view(&self) -> View {
        let nodes = self
            .table
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut n = n.clone();
                if i == self.me {
                    n.flags.insert(0, "myself".into());
                }
                n
            })
            .collect();
        View {
            addr: self.addr.clone(),
            nodes,
            cluster_state: self.cluster_state.clone(),
            current_epoch: self.current_epoch,
            keys: self.keys,
        }
    }
}

/// What the checks over views read of one: a [`View`] or a [`SharedView`].
pub trait Seen {
    /// The address it was read from.
    fn addr(&self) -> &Addr;
    /// The node's own line.
    fn me(&self) -> &Node;
    /// The line of node `id`.
    fn find(&self, id: &str) -> Option<&Node>;
    /// Every line.
    fn lines(&self) -> &[Node];
    /// `cluster_state`.
    fn state(&self) -> &str;
    /// Keys in database 0.
    fn key_count(&self) -> u64;
    /// Owner id of each slot as this node believes.
    fn owners(&self) -> Vec<Option<&str>>;
    /// An identity for its table when shared: views with the same one list the same
    /// nodes, so a check of the list holds for all of them.
    fn table_key(&self) -> Option<usize>;
}

/// A view seen through a reference (what code that keeps its views passes on).
impl<T: Seen + ?Sized> Seen for &T {
    fn addr(&self) -> &Addr {
        (**self).addr()
    }
    fn me(&self) -> &Node {
        (**self).me()
    }
    fn find(&self, id: &str) -> Option<&Node> {
        (**self).find(id)
    }
    fn lines(&self) -> &[Node] {
        (**self).lines()
    }
    fn state(&self) -> &str {
        (**self).state()
    }
    fn key_count(&self) -> u64 {
        (**self).key_count()
    }
    fn owners(&self) -> Vec<Option<&str>> {
        (**self).owners()
    }
    fn table_key(&self) -> Option<usize> {
        (**self).table_key()
    }
}

impl Seen for View {
    fn addr(&self) -> &Addr {
        &self.addr
    }
    fn me(&self) -> &Node {
        self.myself()
    }
    fn find(&self, id: &str) -> Option<&Node> {
        self.node(id)
    }
    fn lines(&self) -> &[Node] {
        &self.nodes
    }
    fn state(&self) -> &str {
        &self.cluster_state
    }
    fn key_count(&self) -> u64 {
        self.keys
    }
    fn owners(&self) -> Vec<Option<&str>> {
        self.owner_table()
    }
    fn table_key(&self) -> Option<usize> {
        None
    }
}

impl Seen for SharedView {
    fn addr(&self) -> &Addr {
        &self.addr
    }
    fn me(&self) -> &Node {
        self.myself()
    }
    fn find(&self, id: &str) -> Option<&Node> {
        self.table.node(id)
    }
    fn lines(&self) -> &[Node] {
        self.table.nodes()
    }
    fn state(&self) -> &str {
        &self.cluster_state
    }
    fn key_count(&self) -> u64 {
        self.keys
    }
    fn owners(&self) -> Vec<Option<&str>> {
        self.table.owner_ids()
    }
    fn table_key(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.table) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::parse_node_line;

    fn node(id: char, port: u16, flags: &str, slots: &str) -> Node {
        let id: String = std::iter::repeat_n(id, 40).collect();
        let master = if flags.contains("slave") {
            "a".repeat(40)
        } else {
            "-".into()
        };
        parse_node_line(&format!(
            "{id} 10.0.0.1:{port}@1{port} {flags} {master} 0 0 1 connected {slots}"
        ))
        .unwrap()
    }

    #[test]
    fn replace_and_set_owner_give_what_a_rebuild_gives() {
        let a = node('a', 7000, "master", "0-99");
        let b = node('b', 7001, "master", "100-199");
        let r = node('c', 7002, "slave", "");
        let mut table = Table::new(vec![a.clone(), b.clone(), r.clone()]);
        // 50..=149 go to b.
        let mut a2 = a.clone();
        a2.assigned_slots.retain(|s| *s < 50);
        let mut b2 = b.clone();
        b2.assigned_slots = (50..200).collect();
        b2.flags.insert(0, "myself".into());
        assert!(table.replace(a2.clone()));
        assert!(table.replace(b2.clone()));
        assert!(table.set_owner(&(50..150).collect::<Vec<_>>(), Some(&b.node_id)));
        let rebuilt = Table::new(vec![a2, b2, r]);
        assert_eq!(table.nodes(), rebuilt.nodes());
        assert_eq!(table.owner_ids(), rebuilt.owner_ids());
        assert!(!table.nodes()[1].is_myself());
        // Unknown nodes change nothing.
        assert!(!table.replace(node('d', 7003, "master", "")));
        assert!(!table.set_owner(&[1], Some(&"d".repeat(40))));
        assert_eq!(table.owner_ids(), rebuilt.owner_ids());
        // No owner: uncovered.
        assert!(table.set_owner(&[0], None));
        assert_eq!(table.owner_ids()[0], None);
    }
}
