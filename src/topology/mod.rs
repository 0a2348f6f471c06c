//! The cluster as data: what one node reports ([`View`]), the whole cluster assembled
//! from every node's report ([`Topology`]), and pure checks over them (coverage, open
//! slots, convergence). Nothing here talks to the network.

mod node;
mod resolve;
mod shared;
mod validate;
mod zones;

pub use node::{
    check_node_id, parse_cluster_nodes, parse_node_line, parse_own_line, short_id, Node, Role,
    NODE_ID_LEN,
};
pub use resolve::{Miss, NodeIndex, MIN_PREFIX};
pub use shared::{Seen, SharedView, Table};
pub use validate::{MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_NODES};
pub use zones::{ZoneBook, ZoneFile};

use crate::addr::Addr;
use crate::slots::{format_ranges, SLOT_COUNT};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What one node says about itself and the cluster, read in one round trip.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// The address we reached the node on.
    pub addr: Addr,
    /// Its `CLUSTER NODES`, with its own line's empty host filled in.
    pub nodes: Vec<Node>,
    /// `cluster_state` from `CLUSTER INFO` (`ok` or `fail`).
    pub cluster_state: String,
    /// `cluster_current_epoch` from `CLUSTER INFO`.
    pub current_epoch: u64,
    /// Keys in database 0 (`DBSIZE`).
    pub keys: u64,
}

impl View {
    /// The node's own line.
    pub fn myself(&self) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.is_myself())
            .expect("a CLUSTER NODES reply always has a myself line")
    }

    /// Whether the node is alone: knows no other node and serves no slot.
    pub fn is_alone(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The line for node `id` in this view.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.node_id == id)
    }

    /// Slot → owner id as this node believes.
    pub fn slot_owners(&self) -> BTreeMap<u16, &str> {
        // Built in slot order (a bulk build): this runs on every convergence poll.
        self.owner_table()
            .into_iter()
            .enumerate()
            .filter_map(|(s, o)| Some((u16::try_from(s).ok()?, o?)))
            .collect()
    }

    /// The owner of each slot as this node believes (the last master listing it,
    /// as in [`View::slot_owners`]); slots out of range are left out.
    pub(crate) fn owner_table(&self) -> Vec<Option<&str>> {
        let mut owners = vec![None; SLOT_COUNT as usize];
        for n in self.nodes.iter().filter(|n| n.is_master()) {
            for &s in &n.assigned_slots {
                if let Some(o) = owners.get_mut(usize::from(s)) {
                    *o = Some(n.node_id.as_str());
                }
            }
        }
        owners
    }
}

/// A slot that some node has marked migrating or importing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSlot {
    /// The slot.
    pub slot: u16,
    /// The node carrying the marker.
    pub node_id: String,
    /// `migrating` (to `peer_id`) or `importing` (from `peer_id`).
    pub direction: String,
    /// The other end of the migration.
    pub peer_id: String,
}

/// The whole cluster: every node known to the entry node, with each reachable
/// node's own line (its slots and open-slot markers are authoritative) and facts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// Id of the node the topology was read from.
    pub entry_id: String,
    /// Every node, masters first then replicas, each in address order.
    pub nodes: Vec<Node>,
    /// Keys per reachable node id.
    pub keys: BTreeMap<String, u64>,
    /// `cluster_state` per reachable node id.
    pub states: BTreeMap<String, String>,
    /// Why a node could not be read, per node id.
    pub unreachable: BTreeMap<String, String>,
    /// Server and version per node id (`valkey 9.1.2`), when read live (`list`,
    /// `info`); absent from older snapshots.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, String>,
}

impl Topology {
    /// A topology from `CLUSTER NODES` lines alone (no node's own view), sorted:
    /// what tests and pure planning start from.
    pub fn from_node_lines<S: AsRef<str>>(lines: &[S]) -> anyhow::Result<Topology> {
        let mut t = Topology {
            nodes: lines
                .iter()
                .map(|l| parse_node_line(l.as_ref()))
                .collect::<anyhow::Result<_>>()?,
            ..Topology::default()
        };
        t.sort();
        Ok(t)
    }

    /// Assembles the topology from the entry node's view and the views (or read
    /// errors) of every other node it knows.
    pub fn assemble(entry: &View, others: Vec<(String, Result<View, String>)>) -> Topology {
        Topology::assemble_from(entry, others)
    }

    /// [`Topology::assemble`] from views of any kind (shared node tables too): each
    /// view gives its own line, keys and state.
    pub fn assemble_from<V: Seen>(
        entry: &View,
        others: impl IntoIterator<Item = (String, Result<V, String>)>,
    ) -> Topology {
        let mut topo = Topology {
            entry_id: entry.myself().node_id.clone(),
            ..Topology::default()
        };
        let mut own_lines: HashMap<String, Node> = HashMap::new();
        let mut record = |me: &Node, keys: u64, state: &str, topo: &mut Topology| {
            topo.keys.insert(me.node_id.clone(), keys);
            topo.states.insert(me.node_id.clone(), state.to_string());
            own_lines.insert(me.node_id.clone(), me.clone());
        };
        record(entry.myself(), entry.keys, &entry.cluster_state, &mut topo);
        for (id, view) in others {
            match view {
                Ok(v) if v.me().node_id == id => {
                    record(v.me(), v.key_count(), v.state(), &mut topo)
                }
                Ok(v) => {
                    topo.unreachable.insert(
                        id,
                        format!("{} now answers as node {}", v.addr(), v.me().node_id),
                    );
                }
                Err(e) => {
                    topo.unreachable.insert(id, e);
                }
            }
        }
        for n in &entry.nodes {
            let mut line = own_lines.remove(&n.node_id).unwrap_or_else(|| n.clone());
            // The entry's opinion on failure flags is what the operator sees; a node's
            // own line never carries `myself` for the cluster as a whole.
            line.flags.retain(|f| f != "myself");
            if line.host.is_empty() {
                line.host = n.host.clone();
            }
            topo.nodes.push(line);
        }
        topo.sort();
        topo
    }

    /// Masters first, then replicas; each group by address.
    pub fn sort(&mut self) {
        self.nodes
            .sort_by_key(|n| (!n.is_master(), n.host.clone(), n.port, n.node_id.clone()));
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.node_id == id)
    }

    /// All masters, failed or not.
    pub fn masters(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_master())
    }

    /// Masters not flagged as failed, with a known address, past the handshake.
    pub fn live_masters(&self) -> impl Iterator<Item = &Node> {
        self.masters()
            .filter(|n| !n.is_failed() && !n.in_handshake() && !n.no_addr())
    }

    /// Masters that can be told something now: not flagged `fail`, and answering
    /// when the topology was read.
    pub fn answering_masters(&self) -> impl Iterator<Item = &Node> {
        self.masters()
            .filter(|m| !m.is_failed() && !self.unreachable.contains_key(&m.node_id))
    }

    /// Replicas of master `id`.
    pub fn replicas_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .iter()
            .filter(move |n| !n.is_master() && n.master_id.as_deref() == Some(id))
    }

    /// Owner of each slot (`None` when uncovered).
    pub fn slot_owners(&self) -> Vec<Option<&Node>> {
        let mut owners = vec![None; SLOT_COUNT as usize];
        for n in self.masters() {
            for &s in &n.assigned_slots {
                owners[s as usize] = Some(n);
            }
        }
        owners
    }

    /// Slots no master serves.
    pub fn uncovered_slots(&self) -> Vec<u16> {
        self.slot_owners()
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_none())
            .map(|(s, _)| s as u16)
            .collect()
    }

    /// Slots served by a master the cluster has flagged `fail`.
    pub fn failed_slots(&self) -> Vec<u16> {
        let mut slots: Vec<u16> = self
            .masters()
            .filter(|n| n.is_failed())
            .flat_map(|n| n.assigned_slots.iter().copied())
            .collect();
        slots.sort_unstable();
        slots
    }

    /// Every migrating/importing marker a reachable master carries. Markers reported
    /// by replicas are left out: Valkey 8+ replicates them to a master's replicas,
    /// which follow their master (and refuse `SETSLOT`), so they are never open
    /// slots of their own.
    pub fn open_slots(&self) -> Vec<OpenSlot> {
        let mut open = Vec::new();
        for n in self.nodes.iter().filter(|n| n.is_master()) {
            for (slot, peer) in &n.slots_migrating {
                open.push(OpenSlot {
                    slot: *slot,
                    node_id: n.node_id.clone(),
                    direction: "migrating".into(),
                    peer_id: peer.clone(),
                });
            }
            for (slot, peer) in &n.slots_importing {
                open.push(OpenSlot {
                    slot: *slot,
                    node_id: n.node_id.clone(),
                    direction: "importing".into(),
                    peer_id: peer.clone(),
                });
            }
        }
        open.sort_by_key(|o| (o.slot, o.node_id.clone()));
        open
    }

    /// Total keys over reachable masters.
    pub fn total_keys(&self) -> u64 {
        self.masters()
            .filter_map(|n| self.keys.get(&n.node_id))
            .fold(0u64, |sum, &k| sum.saturating_add(k))
    }

    /// `host:port (abcdef12)`: how messages name a node.
    pub fn describe(&self, id: &str) -> String {
        describe(id, self.node(id))
    }

    /// The nodes indexed by id (and address, for references), for code that looks
    /// many of them up: each [`Topology::node`] or [`Topology::describe`] call scans
    /// the whole list.
    pub fn index(&self) -> NodeIndex<'_> {
        NodeIndex::new(&self.nodes)
    }
}

/// `host:port (abcdef12)` for a node found, `unknown node ID` otherwise.
fn describe(id: &str, node: Option<&Node>) -> String {
    match node {
        Some(n) => format!("{} ({})", n.addr(), n.short_id()),
        None => format!("unknown node {id}"),
    }
}

impl NodeIndex<'_> {
    /// `host:port (abcdef12)`: how messages name a node (as [`Topology::describe`]).
    pub fn describe(&self, id: &str) -> String {
        describe(id, self.node(id))
    }
}

/// Why a set of views has not converged yet, or `None` once every node knows every
/// other node (no handshake, no failure suspicion), all agree on who owns which slot,
/// and, when all slots are covered, every node reports `cluster_state:ok`.
pub fn convergence_problem<V: Seen>(views: &[V]) -> Option<String> {
    if let Some(problem) = membership_problem(views) {
        return Some(problem);
    }
    agreement_problem(views).or_else(|| epoch_collision(views.iter().map(|v| v.me())))
}

/// Two masters (each as it sees itself in `own_lines`) with the same config epoch,
/// named, or `None`. Redis settles such a collision by itself, by bumping the epoch
/// of the one with the lower id the next time they talk; until then that master may
/// jump above an epoch another node just claimed slots with. A source doing so while
/// a destination takes its slots makes the destination lose them (its keys in them
/// deleted), so slots only move once epochs are distinct. Replicas are left out: their
/// line carries their master's epoch.
pub fn epoch_collision<'a>(own_lines: impl Iterator<Item = &'a Node>) -> Option<String> {
    let mut seen: HashMap<u64, &Node> = HashMap::new();
    for n in own_lines.filter(|n| n.is_master()) {
        if let Some(other) = seen.insert(n.config_epoch, n) {
            return Some(format!(
                "masters {} and {} both have config epoch {} (the cluster settles that by itself)",
                other.addr(),
                n.addr(),
                n.config_epoch
            ));
        }
    }
    None
}

/// Why the nodes of `views` do not all know each other yet (past the handshake,
/// with no failure suspicion), or `None`. A node table several views share is
/// looked at once.
pub fn membership_problem<V: Seen>(views: &[V]) -> Option<String> {
    let ids: BTreeSet<&str> = views.iter().map(|v| v.me().node_id.as_str()).collect();
    let mut checked: HashSet<usize> = HashSet::new();
    for v in views {
        if let Some(key) = v.table_key() {
            if !checked.insert(key) {
                continue;
            }
        }
        let index: Option<HashMap<&str, &Node>> = v
            .table_key()
            .is_none()
            .then(|| v.lines().iter().map(|n| (n.node_id.as_str(), n)).collect());
        for id in &ids {
            let line = match &index {
                Some(index) => index.get(id).copied(),
                None => v.find(id),
            };
            match line {
                None => {
                    return Some(format!(
                        "{} does not know node {} yet",
                        v.addr(),
                        short_id(id)
                    ))
                }
                Some(n) if n.in_handshake() || n.no_addr() => {
                    return Some(format!(
                        "{} is still in handshake with {}",
                        v.addr(),
                        n.addr()
                    ))
                }
                Some(n) if n.is_failed() || n.is_suspected() => {
                    return Some(format!("{} flags {} as failing", v.addr(), n.addr()))
                }
                _ => {}
            }
        }
    }
    None
}

/// Why the nodes of `views` do not agree on the slot map (or, with all slots
/// covered, do not all report `cluster_state:ok`), or `None`.
/// The slot claims of a view: each master line that lists slots, as (id, slots),
/// sorted by id. Two views listing the same claims have the same slot owners when
/// the claims do not overlap ([`claims_are_disjoint`]): far cheaper to compare
/// than 16384 owners per view.
pub fn slot_claims<V: Seen>(v: &V) -> Vec<(&str, &[u16])> {
    let mut out: Vec<(&str, &[u16])> = v
        .lines()
        .iter()
        .filter(|n| n.is_master() && !n.assigned_slots.is_empty())
        .map(|n| (n.node_id.as_str(), n.assigned_slots.as_slice()))
        .collect();
    out.sort_unstable();
    out
}

/// Whether `claims` (see [`slot_claims`]) name each slot once, so that equal claims
/// mean equal owners whatever the order of the lines; `owners` is the same view's
/// owner per slot.
pub fn claims_are_disjoint(claims: &[(&str, &[u16])], owners: &[Option<&str>]) -> bool {
    let claimed: usize = claims.iter().map(|(_, s)| s.len()).sum();
    claimed == owners.iter().filter(|o| o.is_some()).count()
}

/// A reference view's slot owners, against which other views are compared as cheaply
/// as they can be: a view sharing a node table already found to agree, or listing the
/// same non-overlapping slot claims, agrees without building its 16384 owners.
pub struct OwnerReference<'a> {
    /// The reference's owner per slot.
    pub owners: Vec<Option<&'a str>>,
    claims: Vec<(&'a str, &'a [u16])>,
    disjoint: bool,
    agreeing: HashSet<usize>,
}

impl<'a> OwnerReference<'a> {
    /// The owners `reference` sees.
    pub fn new<V: Seen>(reference: &'a V) -> OwnerReference<'a> {
        let owners = reference.owners();
        let claims = slot_claims(reference);
        OwnerReference {
            disjoint: claims_are_disjoint(&claims, &owners),
            owners,
            claims,
            agreeing: reference.table_key().into_iter().collect(),
        }
    }

    /// `None` when `v` sees the same owner for every slot; else the owners it sees.
    pub fn differs<'v, V: Seen>(&mut self, v: &'v V) -> Option<Vec<Option<&'v str>>> {
        if v.table_key().is_some_and(|k| self.agreeing.contains(&k)) {
            return None;
        }
        if self.disjoint && slot_claims(v) == self.claims {
            self.agreeing.extend(v.table_key());
            return None;
        }
        let theirs = v.owners();
        if theirs == self.owners {
            self.agreeing.extend(v.table_key());
            return None;
        }
        Some(theirs)
    }

    /// The slots whose owner differs in `theirs` (what [`differs`](Self::differs)
    /// returned).
    pub fn differing(&self, theirs: &[Option<&str>]) -> Vec<u16> {
        (0..SLOT_COUNT)
            .filter(|&s| self.owners.get(usize::from(s)) != theirs.get(usize::from(s)))
            .collect()
    }
}

fn agreement_problem<V: Seen>(views: &[V]) -> Option<String> {
    let reference = views.first()?;
    let mut compare = OwnerReference::new(reference);
    for v in &views[1..] {
        if let Some(theirs) = compare.differs(v) {
            let slots = compare.differing(&theirs);
            let first = usize::from(slots[0]);
            let owner = |view: &dyn Seen, id: Option<&str>| match id {
                Some(id) => describe(id, view.find(id)),
                None => "no one".to_string(),
            };
            return Some(format!(
                "{} and {} disagree on the owner of slots {} (slot {first}: {} says {}, {} says {})",
                reference.addr(),
                v.addr(),
                format_ranges(&slots),
                reference.addr(),
                owner(reference, compare.owners[first]),
                v.addr(),
                owner(v, theirs[first]),
            ));
        }
    }
    let owners = &compare.owners;
    if owners.iter().all(Option::is_some) {
        if let Some(v) = views.iter().find(|v| v.state() != "ok") {
            return Some(format!("{} reports cluster_state:{}", v.addr(), v.state()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(port: u16, lines: &[String], state: &str) -> View {
        View {
            addr: Addr::new("127.0.0.1", port),
            nodes: lines.iter().map(|l| parse_node_line(l).unwrap()).collect(),
            cluster_state: state.into(),
            current_epoch: 1,
            keys: 0,
        }
    }

    /// A master's line; its config epoch is its port's last digits + 1 (distinct).
    fn line(id: char, port: u16, myself: bool, slots: &str) -> String {
        line_at_epoch(id, port, myself, slots, u64::from(port % 1000) + 1)
    }

    fn line_at_epoch(id: char, port: u16, myself: bool, slots: &str, epoch: u64) -> String {
        let flags = if myself { "myself,master" } else { "master" };
        format!(
            "{} 127.0.0.1:{port}@1{port} {flags} - 0 0 {epoch} connected {slots}",
            id.to_string().repeat(40)
        )
    }

    #[test]
    fn masters_sharing_a_config_epoch_have_not_converged() {
        let lines = [
            line_at_epoch('a', 7000, false, "0-8191", 4),
            line_at_epoch('b', 7001, false, "8192-16383", 4),
        ];
        let own = |me: usize| {
            let mut l = lines.clone();
            l[me] = l[me].replacen(" master ", " myself,master ", 1);
            view(7000 + me as u16, &l, "ok")
        };
        let problem = convergence_problem(&[own(0), own(1)]).unwrap();
        assert_eq!(
            problem,
            "masters 127.0.0.1:7000 and 127.0.0.1:7001 both have config epoch 4 (the cluster settles that by itself)"
        );
        // A replica's line shows its master's epoch: no collision.
        let replica = format!(
            "{} 127.0.0.1:7002@17002 myself,slave {} 0 0 4 connected",
            "c".repeat(40),
            "a".repeat(40)
        );
        let with_replica = [
            line_at_epoch('a', 7000, true, "0-16383", 4),
            replica.clone(),
        ];
        let views = [
            view(7000, &with_replica, "ok"),
            view(
                7002,
                &[with_replica[0].replace("myself,", ""), replica],
                "ok",
            ),
        ];
        assert_eq!(convergence_problem(&views), None);
    }

    #[test]
    fn the_index_answers_as_the_scans_do() {
        let mut topo = Topology {
            nodes: ["a", "b"]
                .iter()
                .zip([7000, 7001])
                .map(|(c, p)| {
                    parse_node_line(&line(c.chars().next().unwrap(), p, false, "")).unwrap()
                })
                .collect(),
            ..Topology::default()
        };
        // A second line with a's id: the first one wins, as with `node`.
        let mut dup = topo.nodes[0].clone();
        dup.port = 7009;
        topo.nodes.push(dup);
        let index = topo.index();
        for id in ["a".repeat(40), "b".repeat(40), "c".repeat(40)] {
            assert_eq!(index.node(&id), topo.node(&id));
            assert_eq!(index.describe(&id), topo.describe(&id));
        }
        assert_eq!(index.node(&"a".repeat(40)).unwrap().port, 7000);
        assert_eq!(
            index.describe(&"c".repeat(40)),
            format!("unknown node {}", "c".repeat(40))
        );
    }

    /// The view from `me` (7000 or 7001) of two masters sharing the slots, their
    /// lines in the given order.
    fn halves(me: u16, b_first: bool) -> View {
        let (a, b) = (
            line('a', 7000, me == 7000, "0-8191"),
            line('b', 7001, me == 7001, "8192-16383"),
        );
        let lines = if b_first { [b, a] } else { [a, b] };
        view(me, &lines, "ok")
    }

    #[test]
    fn converged_views_have_no_problem() {
        assert_eq!(
            convergence_problem(&[halves(7000, false), halves(7001, false)]),
            None
        );
    }

    #[test]
    fn equal_claims_agree_in_any_line_order_and_overlapping_claims_are_compared_slot_by_slot() {
        let a = halves(7000, false);
        let b = halves(7001, true);
        assert_eq!(convergence_problem(&[a.clone(), b]), None);
        // A slot one view gives to b: not the same claims, so compared and named.
        let moved = view(
            7001,
            &[
                line('a', 7000, false, "0-8190"),
                line('b', 7001, true, "8191-16383"),
            ],
            "ok",
        );
        let problem = convergence_problem(&[a.clone(), moved]).unwrap();
        assert_eq!(
            problem,
            "127.0.0.1:7000 and 127.0.0.1:7001 disagree on the owner of slots 8191 (slot 8191: 127.0.0.1:7000 says 127.0.0.1:7000 (aaaaaaaa), 127.0.0.1:7001 says 127.0.0.1:7001 (bbbbbbbb))"
        );
        // Overlapping claims are never taken as agreement on the claims alone.
        let owners = a.owners();
        assert!(claims_are_disjoint(&slot_claims(&a), &owners));
        let overlap = view(
            7000,
            &[
                line('a', 7000, true, "0-8191"),
                line('b', 7001, false, "0-16383"),
            ],
            "ok",
        );
        assert!(!claims_are_disjoint(
            &slot_claims(&overlap),
            &overlap.owners()
        ));
    }

    #[test]
    fn names_the_node_that_lags() {
        let a = view(7000, &[line('a', 7000, true, "0-16383")], "ok");
        let b = view(
            7001,
            &[line('a', 7000, false, "0-16383"), line('b', 7001, true, "")],
            "fail",
        );
        let problem = convergence_problem(&[a.clone(), b.clone()]).unwrap();
        assert!(
            problem.contains("127.0.0.1:7000 does not know node bbbbbbbb"),
            "{problem}"
        );

        let a2 = view(
            7000,
            &[line('a', 7000, true, "0-16383"), line('b', 7001, false, "")],
            "ok",
        );
        let problem = convergence_problem(&[a2.clone(), b]).unwrap();
        assert!(
            problem.contains("127.0.0.1:7001 reports cluster_state:fail"),
            "{problem}"
        );

        let b3 = view(
            7001,
            &[
                line('a', 7000, false, "0-16382"),
                line('b', 7001, true, "16383"),
            ],
            "ok",
        );
        let problem = convergence_problem(&[a2, b3]).unwrap();
        assert!(
            problem.contains("disagree on the owner of slots 16383"),
            "{problem}"
        );
    }

    #[test]
    fn assembles_topology_with_own_lines_and_unreachable_nodes() {
        let mut a_line = line('a', 7000, true, "0-100");
        a_line.push_str(&format!(" [101->-{}]", "b".repeat(40)));
        let entry = view(
            7000,
            &[
                a_line,
                line('b', 7001, false, "101-16383"),
                line('c', 7002, false, ""),
            ],
            "ok",
        );
        let b = view(
            7001,
            &[
                line('a', 7000, false, "0-100"),
                line('b', 7001, true, "101-16383"),
            ],
            "ok",
        );
        let topo = Topology::assemble(
            &entry,
            vec![
                ("b".repeat(40), Ok(b)),
                ("c".repeat(40), Err("connection refused".into())),
            ],
        );
        assert_eq!(topo.nodes.len(), 3);
        assert!(topo.nodes.iter().all(|n| !n.is_myself()));
        assert_eq!(topo.open_slots().len(), 1);
        assert_eq!(topo.open_slots()[0].slot, 101);
        assert!(topo.uncovered_slots().is_empty());
        assert_eq!(topo.unreachable.len(), 1);
        assert_eq!(topo.describe(&"b".repeat(40)), "127.0.0.1:7001 (bbbbbbbb)");
    }
}
