//! The simulated backend behind dry runs and offline topologies: an in-memory copy of
//! the cluster that mutating primitives update (and record as plan steps) instead of
//! touching nodes. Reads see the planned state. Nodes not in the copy are read once
//! from a live source when there is one (reads only), or invented as free nodes.

use super::live::Live;
use super::{Backend, Event, FailoverMode, MoveStats, NodeCmd, SlotState};
use crate::addr::Addr;
use crate::engine::key_copy::ImportOpts;
use crate::engine::rdb::Written;
use crate::slots::{format_ranges, SLOT_COUNT};
use crate::topology::{
    short_id, Node, Role, SharedView, Table, Topology, View, ZoneBook, ZoneFile,
};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

/// One recorded change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanStep {
    /// What kind of change (`add_slots`, `meet`, `move_slots`, ...); `op` in JSON.
    #[serde(rename = "op")]
    pub action: String,
    /// The node it is sent to.
    pub node: String,
    /// Human description.
    pub detail: String,
    /// Slots concerned, as ranges (empty when none); `[[first, last], ...]` in JSON.
    #[serde(serialize_with = "slot_ranges")]
    pub slots: String,
    /// Where slots or keys come from (moves, imports).
    pub src: Option<String>,
    /// Where they go (moves).
    pub dst: Option<String>,
    /// How many slots (moves, slot assignments).
    pub count: Option<usize>,
    /// How many keys (moves: an estimate in proportion to the slots; imports).
    pub keys: Option<u64>,
}

/// A step's `0-5460,5462` slots as `[[0, 5460], [5462, 5462]]`.
fn slot_ranges<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let ranges: Vec<[u16; 2]> = text
        .split(',')
        .filter_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            Some([a.trim().parse().ok()?, b.trim().parse().ok()?])
        })
        .collect();
    s.collect_seq(ranges)
}

#[derive(Clone, Debug)]
struct SimNode {
    node: Node,
    group: usize,
    keys: u64,
}

/// An in-memory cluster.
pub struct Sim {
    /// Every node of the copy, by id. Changed through [`Sim::touch`] (which drops the
    /// per-group caches) or [`Sim::assign`] (which keeps them true).
    nodes: BTreeMap<String, SimNode>,
    source: Option<Box<Live>>,
    steps: Vec<PlanStep>,
    tap: Option<Sender<Event>>,
    next_group: usize,
    next_id: u64,
    epoch: u64,
    /// What each group keeps between changes: its shared table and slot index.
    groups: HashMap<usize, GroupCache>,
    /// Node id by (host, port); dropped when nodes come or go.
    by_addr: HashMap<(String, u16), String>,
    /// What is known of zones offline (over live nodes, the live backend's book is
    /// used).
    zones: ZoneBook,
    /// Views served with a node table of their own (see [`Sim::views_copied`]).
    copies: usize,
}

impl Sim {
    /// A simulation seeded from a saved topology (offline runs).
    pub fn offline(topo: &Topology) -> Sim {
        let mut sim = Sim::empty(None);
        sim.seed(topo);
        sim
    }

    /// A simulation seeded from a topology snapshot file (`list --json`), checked
    /// first (see [`Topology::load`]): a bad file is refused with the field at fault.
    pub fn load(path: &Path) -> Result<Sim> {
        Ok(Sim::offline(&Topology::load(path)?))
    }

    /// A simulation that reads real nodes on first use and never changes them.
    pub fn over(source: Live) -> Sim {
        Sim::empty(Some(Box::new(source)))
    }

    /// Sends every event to `tap` (until set to `None`).
    pub fn set_tap(&mut self, tap: Option<Sender<Event>>) {
        self.tap = tap;
    }

    /// The live backend this simulation reads from, if any.
    pub fn source(&self) -> Option<&Live> {
        self.source.as_deref()
    }

    fn empty(source: Option<Box<Live>>) -> Sim {
        Sim {
            nodes: BTreeMap::new(),
            source,
            steps: Vec::new(),
            tap: None,
            next_group: 0,
            next_id: 1,
            epoch: 1,
            groups: HashMap::new(),
            by_addr: HashMap::new(),
            zones: ZoneBook::default(),
            copies: 0,
        }
    }

    /// How many views it has served with a node table of their own ([`Backend::view`],
    /// each a copy of its cluster's whole table, where [`Backend::shared_view`] shares
    /// it): tests hold operations that poll every member to the shared tables, since
    /// n copies of an n-node table is n^2 work.
    pub fn views_copied(&self) -> usize {
        self.copies
    }

    /// Zones known offline besides the snapshot's own: the `--zones` file.
    pub fn with_zones(mut self, file: Option<Arc<ZoneFile>>) -> Sim {
        self.zones = ZoneBook::with_file(file);
        self
    }

    /// The nodes, for a change: the shared tables and slot indexes no longer hold.
    fn touch(&mut self) -> &mut BTreeMap<String, SimNode> {
        self.groups.clear();
        &mut self.nodes
    }

    /// Adds (or replaces) a node.
    fn put(&mut self, id: String, node: SimNode) {
        // A new node joins the address index as its rebuild would place it (the
        // smallest id wins an address); a node replaced under its id rebuilds it.
        // Clearing it for every new node made adding n free nodes cost n^2.
        if self.nodes.contains_key(&id) {
            self.by_addr.clear();
        } else if !self.by_addr.is_empty() {
            let key = (node.node.host.clone(), node.node.port);
            match self.by_addr.get_mut(&key) {
                Some(first) if *first <= id => {}
                Some(first) => *first = id.clone(),
                None => {
                    self.by_addr.insert(key, id.clone());
                }
            }
        }
        self.touch().insert(id, node);
    }

    /// The id of the node at `host:port`, through an index built on first use.
    fn id_by_addr(&mut self, host: &str, port: u16) -> Option<String> {
        if self.by_addr.is_empty() {
            for (id, s) in &self.nodes {
                self.by_addr
                    .entry((s.node.host.clone(), s.node.port))
                    .or_insert_with(|| id.clone());
            }
        }
        self.by_addr.get(&(host.to_string(), port)).cloned()
    }

    /// The table of `group` and its cluster state, built once per change.
    fn table(&mut self, group: usize) -> (Arc<Table>, &'static str) {
        let state = |covered: usize| {
            if covered == usize::from(SLOT_COUNT) {
                "ok"
            } else {
                "fail"
            }
        };
        if let Some((table, covered)) = self.groups.get(&group).and_then(|g| g.table.as_ref()) {
            return (table.clone(), state(*covered));
        }
        let members: Vec<Node> = self
            .nodes
            .values()
            .filter(|s| s.group == group)
            .map(|s| s.node.clone())
            .collect();
        let covered: usize = members.iter().map(covered_by).sum();
        let table = Arc::new(Table::new(members));
        self.groups.entry(group).or_default().table = Some((table.clone(), covered));
        (table, state(covered))
    }

    /// What the node at `addr` reports, its table shared with its cluster.
    fn shared(&mut self, addr: &Addr) -> Result<SharedView> {
        let id = self.id_at(addr)?;
        let (group, keys) = match self.nodes.get(&id) {
            Some(s) => (s.group, s.keys),
            None => bail!("{addr}: node {id} left the simulated cluster"),
        };
        let (table, state) = self.table(group);
        let me = table
            .index_of(&id)
            .with_context(|| format!("{addr}: node {id} is missing from its own table"))?;
        Ok(SharedView {
            addr: addr.clone(),
            table,
            me,
            cluster_state: state.into(),
            current_epoch: self.epoch,
            keys,
        })
    }

    fn seed(&mut self, topo: &Topology) {
        let group = self.new_group();
        for n in &topo.nodes {
            let mut node = n.clone();
            node.flags.retain(|f| f != "myself");
            self.epoch = self.epoch.max(node.config_epoch);
            let keys = topo.keys.get(&n.node_id).copied().unwrap_or(0);
            self.put(n.node_id.clone(), SimNode { node, group, keys });
        }
        self.settle_epochs(group);
    }

    fn new_group(&mut self) -> usize {
        self.next_group += 1;
        self.next_group
    }

    /// The recorded plan.
    pub fn steps(&self) -> &[PlanStep] {
        &self.steps
    }

    /// `node` meets `other`: their clusters become one.
    fn merge_groups(&mut self, node: &Addr, other: &Addr) -> Result<()> {
        let a = self.id_at(node)?;
        let ga = self.nodes[&a].group;
        self.merge_into(ga, other)
    }

    /// The cluster of `other` becomes part of cluster `ga`.
    fn merge_into(&mut self, ga: usize, other: &Addr) -> Result<()> {
        let b = self.id_at(other)?;
        let gb = self.nodes[&b].group;
        // Meeting a node of its own cluster changes nothing (a join meets every one).
        if ga != gb {
            for s in self.touch().values_mut() {
                if s.group == gb {
                    s.group = ga;
                }
            }
            self.settle_epochs(ga);
        }
        Ok(())
    }

    /// Settles config-epoch collisions among the masters of `group` as Redis does
    /// (`clusterHandleConfigEpochCollision`): of two masters with one epoch, the one
    /// with the lower id takes a new epoch, above every other. A real cluster does
    /// it the next time the two talk; the simulation at once.
    fn settle_epochs(&mut self, group: usize) {
        let mut by_epoch: HashMap<u64, Vec<String>> = HashMap::new();
        for (id, s) in &self.nodes {
            if s.group == group && s.node.is_master() {
                by_epoch
                    .entry(s.node.config_epoch)
                    .or_default()
                    .push(id.clone());
            }
        }
        let mut losers: Vec<String> = by_epoch
            .into_values()
            .filter(|ids| ids.len() > 1)
            .flat_map(|mut ids| {
                // Ids come in order: the highest keeps the epoch.
                ids.pop();
                ids
            })
            .collect();
        if losers.is_empty() {
            return;
        }
        losers.sort();
        for id in losers {
            self.epoch += 1;
            let epoch = self.epoch;
            if let Some(s) = self.touch().get_mut(&id) {
                s.node.config_epoch = epoch;
            }
        }
    }

    fn record(&mut self, action: &str, node: &Addr, detail: String, slots: &[u16]) {
        self.steps.push(PlanStep {
            action: action.into(),
            node: node.to_string(),
            detail,
            slots: if slots.is_empty() {
                String::new()
            } else {
                format_ranges(slots)
            },
            src: None,
            dst: None,
            count: (!slots.is_empty()).then_some(slots.len()),
            keys: None,
        });
    }

    /// Gives the step just recorded its ends and key count.
    fn ends(&mut self, src: Option<&Addr>, dst: Option<&Addr>, keys: Option<u64>) {
        if let Some(step) = self.steps.last_mut() {
            step.src = src.map(Addr::to_string);
            step.dst = dst.map(Addr::to_string);
            step.keys = keys;
        }
    }

    /// Finds the node at `addr`, loading it (or inventing it) when unknown.
    fn id_at(&mut self, addr: &Addr) -> Result<String> {
        if let Some(id) = self.id_by_addr(&addr.host, addr.port) {
            return Ok(id);
        }
        let ip = addr
            .resolve_ip()
            .map(|ip| ip.to_string())
            .unwrap_or_else(|_| addr.host.clone());
        if let Some(id) = self.id_by_addr(&ip, addr.port) {
            return Ok(id);
        }
        match self.source.as_mut() {
            Some(live) => {
                let view = live.view(addr)?;
                if view.is_alone() && view.myself().assigned_slots.is_empty() {
                    let group = self.new_group();
                    let mut node = view.myself().clone();
                    node.flags.retain(|f| f != "myself");
                    let id = node.node_id.clone();
                    self.put(
                        id.clone(),
                        SimNode {
                            node,
                            group,
                            keys: view.keys,
                        },
                    );
                    Ok(id)
                } else {
                    let topo = super::read::topology_from(live.as_mut(), &view)?;
                    self.seed(&topo);
                    Ok(view.myself().node_id.clone())
                }
            }
            None => {
                // Offline: an address the snapshot does not know is a free node.
                let id = self.fresh_id();
                let group = self.new_group();
                let node = Node {
                    node_id: id.clone(),
                    host: addr.host.clone(),
                    port: addr.port,
                    cport: addr.default_bus_port(),
                    hostname: None,
                    flags: vec!["master".into()],
                    role_in_cluster: Role::Master,
                    master_id: None,
                    ping_sent: 0,
                    pong_recv: 0,
                    config_epoch: 0,
                    connected: true,
                    assigned_slots: Vec::new(),
                    slots_migrating: Vec::new(),
                    slots_importing: Vec::new(),
                    used_memory: None,
                    maxmemory: None,
                    keys: None,
                    zone: None,
                };
                self.put(
                    id.clone(),
                    SimNode {
                        node,
                        group,
                        keys: 0,
                    },
                );
                Ok(id)
            }
        }
    }

    /// A node id no node of the copy has.
    fn fresh_id(&mut self) -> String {
        loop {
            let id = format!("{:040x}", 0xd1e5_0000_0000u64.wrapping_add(self.next_id));
            self.next_id = self.next_id.wrapping_add(1);
            if !self.nodes.contains_key(&id) {
                return id;
            }
        }
    }

    fn node_mut(&mut self, addr: &Addr) -> Result<&mut SimNode> {
        let id = self.id_at(addr)?;
        self.touch()
            .get_mut(&id)
            .with_context(|| format!("{addr}: node {id} left the simulated cluster"))
    }

    /// Gives `slots` (sorted) to node `to` in its cluster: no other node of that
    /// cluster lists them or an open-slot marker for them any more. Only the nodes
    /// concerned change (found through the cluster's [`SlotIndex`]), and the shared
    /// table follows in place when no view holds it.
    fn assign(&mut self, slots: &[u16], to: &str) {
        // Only `to`'s cluster: another cluster of the copy may serve the same slots.
        let Some(group) = self.nodes.get(to).map(|s| s.group) else {
            return;
        };
        let nodes = &mut self.nodes;
        let cache = self.groups.entry(group).or_default();
        let index = cache
            .index
            .get_or_insert_with(|| SlotIndex::build(nodes, group));
        let changed = index.assign(slots, to);
        let mut table = cache.table.take();
        for id in &changed {
            let Some(s) = nodes.get_mut(id) else { continue };
            let before = covered_by(&s.node);
            give_away(&mut s.node, slots);
            if id == to {
                take(&mut s.node, slots);
            }
            let after = covered_by(&s.node);
            if let Some((arc, covered)) = table.as_mut() {
                *covered = (*covered + after).saturating_sub(before);
                if !Arc::get_mut(arc).is_some_and(|t| t.replace(s.node.clone())) {
                    table = None;
                }
            }
        }
        index.keep_marked(nodes);
        if let Some((mut arc, covered)) = table {
            let owner = nodes
                .get(to)
                .filter(|s| s.node.is_master())
                .map(|s| s.node.node_id.as_str());
            if Arc::get_mut(&mut arc).is_some_and(|t| t.set_owner(slots, owner)) {
                cache.table = Some((arc, covered));
            }
        }
    }
}

/// The slots a node counts for in its cluster's state: those it holds as a master
/// that has not failed.
fn covered_by(n: &Node) -> usize {
    if n.is_master() && !n.is_failed() {
        n.assigned_slots.len()
    } else {
        0
    }
}

/// Removes `slots` (sorted) from what `n` holds and its open-slot markers.
fn give_away(n: &mut Node, slots: &[u16]) {
    n.assigned_slots.retain(|x| slots.binary_search(x).is_err());
    n.slots_migrating
        .retain(|(x, _)| slots.binary_search(x).is_err());
    n.slots_importing
        .retain(|(x, _)| slots.binary_search(x).is_err());
}

/// Adds `slots` to what `n` holds (kept sorted, without duplicates).
fn take(n: &mut Node, slots: &[u16]) {
    n.assigned_slots.extend_from_slice(slots);
    n.assigned_slots.sort_unstable();
    n.assigned_slots.dedup();
}

/// What the simulation keeps of one cluster (group) between changes; any change
/// but a slot assignment drops it (see [`Sim::touch`]).
#[derive(Debug, Default)]
struct GroupCache {
    /// The node table shared by every view of the cluster and the slots its masters
    /// hold (not failed), built on first read; slot assignments update it in place
    /// when no view holds it.
    table: Option<(Arc<Table>, usize)>,
    /// The slot holders, built on the first slot assignment.
    index: Option<SlotIndex>,
}

/// Who lists each slot in one cluster of the copy, so that a slot assignment looks
/// at the nodes concerned only, not at every node.
#[derive(Debug)]
struct SlotIndex {
    /// The ids of the nodes listing each slot as theirs (one, unless the cluster
    /// disagrees with itself); only slots someone lists, so that a cluster of one
    /// free node costs little.
    holders: HashMap<u16, Vec<String>>,
    /// The ids of the nodes with open-slot markers.
    marked: Vec<String>,
}

impl SlotIndex {
    /// The index of the nodes of `group`.
    fn build(nodes: &BTreeMap<String, SimNode>, group: usize) -> SlotIndex {
        let mut index = SlotIndex {
            holders: HashMap::new(),
            marked: Vec::new(),
        };
        for (id, s) in nodes.iter().filter(|(_, s)| s.group == group) {
            for &slot in &s.node.assigned_slots {
                index.holders.entry(slot).or_default().push(id.clone());
            }
            if is_marked(&s.node) {
                index.marked.push(id.clone());
            }
        }
        index
    }

    /// Records that `to` alone now holds `slots`; returns the ids of the nodes to
    /// change (those that listed or marked a slot of them, and `to`), sorted.
    fn assign(&mut self, slots: &[u16], to: &str) -> Vec<String> {
        let mut changed = self.marked.clone();
        changed.push(to.to_string());
        for &s in slots {
            let h = self.holders.entry(s).or_default();
            changed.append(h);
            h.push(to.to_string());
        }
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// Forgets the marked nodes that have no marker left.
    fn keep_marked(&mut self, nodes: &BTreeMap<String, SimNode>) {
        self.marked
            .retain(|id| nodes.get(id).is_some_and(|s| is_marked(&s.node)));
    }
}

/// Whether `n` carries an open-slot marker.
fn is_marked(n: &Node) -> bool {
    !n.slots_migrating.is_empty() || !n.slots_importing.is_empty()
}

impl Sim {
    /// Redis 7 (`cluster-allow-replica-migration yes`, the default): a master that
    /// gave its last slots to `new_owner` becomes its replica, and so do its own
    /// replicas.
    fn follow_new_owner(&mut self, emptied: &str, new_owner: &str) {
        for s in self.touch().values_mut() {
            let n = &mut s.node;
            if n.node_id == emptied || n.master_id.as_deref() == Some(emptied) {
                n.role_in_cluster = Role::Slave;
                n.master_id = Some(new_owner.to_string());
                n.flags.retain(|f| f != "master");
                if !n.flags.iter().any(|f| f == "slave") {
                    n.flags.push("slave".into());
                }
            }
        }
    }
}

impl Backend for Sim {
    fn view(&mut self, addr: &Addr) -> Result<View> {
        self.copies += 1;
        Ok(self.shared(addr)?.to_view())
    }

    fn zone_book(&mut self) -> &mut ZoneBook {
        match self.source.as_mut() {
            Some(live) => live.zone_book(),
            None => &mut self.zones,
        }
    }

    fn shared_view(&mut self, addr: &Addr) -> Option<Result<SharedView>> {
        Some(self.shared(addr))
    }

    fn timeout(&self) -> Duration {
        Duration::ZERO
    }

    fn poll_interval(&self) -> Duration {
        Duration::ZERO
    }

    fn emit(&mut self, event: Event) {
        if let Some(tap) = &self.tap {
            let _ = tap.send(event);
        }
    }

    fn add_slots(&mut self, node: &Addr, slots: &[u16], _chunk: usize) -> Result<()> {
        let id = self.id_at(node)?;
        self.assign(slots, &id);
        self.record(
            "add_slots",
            node,
            format!("CLUSTER ADDSLOTS {}", format_ranges(slots)),
            slots,
        );
        Ok(())
    }

    fn set_config_epoch(&mut self, node: &Addr, epoch: u64) -> Result<()> {
        self.node_mut(node)?.node.config_epoch = epoch;
        self.epoch = self.epoch.max(epoch);
        self.record(
            "set_config_epoch",
            node,
            format!("CLUSTER SET-CONFIG-EPOCH {epoch}"),
            &[],
        );
        Ok(())
    }

    fn meet(&mut self, node: &Addr, other: &Addr) -> Result<()> {
        self.merge_groups(node, other)?;
        self.record("meet", node, format!("CLUSTER MEET {other}"), &[]);
        Ok(())
    }

    fn apply_many(&mut self, cmds: &[(Addr, NodeCmd)]) -> Vec<Result<()>> {
        const MEETS_LISTED: usize = 8;
        // A node's consecutive meets are one step naming every node it meets: a
        // cluster of n nodes is n(n-1)/2 meets, which as steps of their own would
        // make a plan of half a million lines at 1,000 nodes.
        let mut results = Vec::with_capacity(cmds.len());
        let mut i = 0;
        while i < cmds.len() {
            let (node, cmd) = &cmds[i];
            let NodeCmd::Meet(_) = cmd else {
                results.push(self.apply_one(node, cmd));
                i += 1;
                continue;
            };
            let mut met = Vec::new();
            // The sender's cluster stays its own while others join it: read once.
            let group = self.id_at(node).ok().map(|a| self.nodes[&a].group);
            while let Some((n, NodeCmd::Meet(other))) = cmds.get(i) {
                if n != node {
                    break;
                }
                let r = match group {
                    Some(ga) => self.merge_into(ga, other),
                    // Unknown sender: the error as a single meet makes it.
                    None => self.merge_groups(node, other),
                };
                if r.is_ok() {
                    met.push(other.to_string());
                }
                results.push(r);
                i += 1;
            }
            match met.len() {
                0 => {}
                1 => self.record("meet", node, format!("CLUSTER MEET {}", met[0]), &[]),
                // A big cluster's lists are summarised: its first and last nodes
                // (n lines of n/2 addresses would make the plan itself n^2).
                n if n > MEETS_LISTED => {
                    let half = MEETS_LISTED / 2;
                    let (first, last) = (met[..half].join(" "), met[n - half..].join(" "));
                    let detail = format!("CLUSTER MEET each of {n} nodes: {first} … {last}");
                    self.record("meet", node, detail, &[])
                }
                n => self.record(
                    "meet",
                    node,
                    format!("CLUSTER MEET each of {n} nodes: {}", met.join(" ")),
                    &[],
                ),
            }
        }
        results
    }

    fn move_slots(
        &mut self,
        src: &Node,
        dst: &Node,
        slots: &[u16],
        _masters: &[Node],
    ) -> Result<MoveStats> {
        let held = &self
            .nodes
            .get(&src.node_id)
            .map(|s| s.node.assigned_slots.clone())
            .unwrap_or_default();
        if let Some(s) = slots.iter().find(|s| held.binary_search(s).is_err()) {
            bail!(
                "{} does not hold slot {s} in the planned cluster",
                src.addr()
            );
        }
        // The engine the live run would use, asked of the real nodes (none offline).
        let engine = match self.source.as_mut() {
            Some(live) => format!(", engine {}", live.engine_for(src, dst)?),
            None => String::new(),
        };
        // Keys are not known per slot here: the source's keys move in proportion.
        let keys = match self.nodes.get(&src.node_id) {
            Some(s) if !held.is_empty() => {
                let share = u128::from(s.keys) * slots.len() as u128 / held.len() as u128;
                u64::try_from(share).unwrap_or(s.keys).min(s.keys)
            }
            _ => 0,
        };
        self.assign(slots, &dst.node_id);
        // Keys are not in the shared tables: they stay.
        if let Some(s) = self.nodes.get_mut(&src.node_id) {
            s.keys = s.keys.saturating_sub(keys);
        }
        if let Some(d) = self.nodes.get_mut(&dst.node_id) {
            d.keys = d.keys.saturating_add(keys);
        }
        if !held.is_empty() && held.len() == slots.len() {
            self.follow_new_owner(&src.node_id, &dst.node_id);
        }
        self.record(
            "move_slots",
            &src.addr(),
            format!(
                "move {} slots to {} ({}){engine}",
                slots.len(),
                dst.addr(),
                dst.short_id()
            ),
            slots,
        );
        self.ends(Some(&src.addr()), Some(&dst.addr()), Some(keys));
        Ok(MoveStats {
            slots: slots.len(),
            keys,
        })
    }

    fn move_keys(&mut self, src: &Node, dst: &Node, slot: u16) -> Result<u64> {
        self.record(
            "move_keys",
            &src.addr(),
            format!("move the keys of slot {slot} to {}", dst.addr()),
            &[slot],
        );
        self.ends(Some(&src.addr()), Some(&dst.addr()), None);
        Ok(0)
    }

    fn set_slots(&mut self, node: &Addr, slots: &[u16], state: &SlotState) -> Result<()> {
        match state {
            SlotState::Node(id) => {
                let id = id.clone();
                self.assign(slots, &id);
                self.record(
                    "set_slots",
                    node,
                    format!("CLUSTER SETSLOT ... NODE {}", short_id(&id)),
                    slots,
                );
            }
            SlotState::Stable => {
                let n = self.node_mut(node)?;
                n.node
                    .slots_migrating
                    .retain(|(x, _)| slots.binary_search(x).is_err());
                n.node
                    .slots_importing
                    .retain(|(x, _)| slots.binary_search(x).is_err());
                self.record(
                    "set_slots",
                    node,
                    "CLUSTER SETSLOT ... STABLE".into(),
                    slots,
                );
            }
        }
        Ok(())
    }

    fn bump_epoch(&mut self, node: &Addr) -> Result<()> {
        self.epoch = self
            .epoch
            .checked_add(1)
            .context("the config epoch cannot grow any more")?;
        let epoch = self.epoch;
        self.node_mut(node)?.node.config_epoch = epoch;
        self.record("bump_epoch", node, "CLUSTER BUMPEPOCH".into(), &[]);
        Ok(())
    }

    fn replicate(&mut self, replica: &Addr, master_id: &str) -> Result<()> {
        let n = self.node_mut(replica)?;
        n.node.role_in_cluster = Role::Slave;
        n.node.master_id = Some(master_id.to_string());
        n.node.flags = vec!["slave".into()];
        self.record(
            "replicate",
            replica,
            format!("CLUSTER REPLICATE {master_id}"),
            &[],
        );
        Ok(())
    }

    fn forget(&mut self, node: &Addr, id: &str) -> Result<()> {
        // The copy has one table per cluster: the forgotten node leaves it (as it
        // does once every node has forgotten it).
        let group = self.new_group();
        if let Some(s) = self.touch().get_mut(id) {
            s.group = group;
        }
        self.record("forget", node, format!("CLUSTER FORGET {id}"), &[]);
        Ok(())
    }

    fn set_config(&mut self, node: &Addr, name: &str, value: &str) -> Result<()> {
        self.record(
            "set_config",
            node,
            format!("CONFIG SET {name} {value}"),
            &[],
        );
        Ok(())
    }

    fn replica_link_up(&mut self, _replica: &Addr) -> Result<bool> {
        Ok(true)
    }

    fn import_keys(
        &mut self,
        source: &Addr,
        _owners: &[Addr],
        opts: &ImportOpts,
        expected: u64,
    ) -> Result<u64> {
        let how = match (opts.copy, opts.replace) {
            (false, false) => "move",
            (true, false) => "copy",
            (false, true) => "move (replacing existing keys)",
            (true, true) => "copy (replacing existing keys)",
        };
        self.record(
            "import",
            source,
            format!(
                "{how} its {expected} keys into the masters owning their slots (SCAN + MIGRATE)"
            ),
            &[],
        );
        self.ends(Some(source), None, Some(expected));
        Ok(expected)
    }

    fn save_rdb(&mut self, node: &Addr, path: &Path) -> Result<Written> {
        self.record(
            "save_rdb",
            node,
            format!("RDB (SYNC) into {}", path.display()),
            &[],
        );
        Ok(Written::default())
    }

    fn write_file(&mut self, path: &Path, content: &[u8]) -> Result<Written> {
        self.steps.push(PlanStep {
            action: "write_file".into(),
            node: "(local file)".into(),
            detail: format!("{} ({} bytes)", path.display(), content.len()),
            slots: String::new(),
            src: None,
            dst: None,
            count: None,
            keys: None,
        });
        Ok(Written::default())
    }

    fn execute(&mut self, node: &Addr, args: &[Vec<u8>]) -> Result<redis::Value> {
        let name = args
            .first()
            .map(|a| String::from_utf8_lossy(a).to_string())
            .unwrap_or_default();
        match self.source.as_mut() {
            Some(live) if crate::commands::is_read_only(args) => live.execute(node, args),
            Some(_) => bail!("a dry run does not send {name} to {node}: it could change the cluster (read-only commands such as INFO, DBSIZE, GET pass)"),
            None => bail!("an offline run has no nodes to send {name} to"),
        }
    }

    fn reset(&mut self, node: &Addr) -> Result<()> {
        let old = self.id_at(node)?;
        self.by_addr.clear();
        let mut s = self
            .touch()
            .remove(&old)
            .with_context(|| format!("{node}: node {old} left the simulated cluster"))?;
        s.group = self.new_group();
        s.node.node_id = self.fresh_id();
        s.node.role_in_cluster = Role::Master;
        s.node.master_id = None;
        s.node.flags = vec!["master".into()];
        s.node.assigned_slots.clear();
        s.node.config_epoch = 0;
        s.keys = 0;
        self.put(s.node.node_id.clone(), s);
        self.record("reset", node, "CLUSTER RESET HARD".into(), &[]);
        Ok(())
    }

    fn failover(&mut self, replica: &Addr, mode: FailoverMode) -> Result<()> {
        let id = self.id_at(replica)?;
        let Some(master) = self.nodes[&id].node.master_id.clone() else {
            bail!("{replica} is not a replica: nothing to fail over");
        };
        let slots = self
            .nodes
            .get(&master)
            .map(|m| m.node.assigned_slots.clone())
            .unwrap_or_default();
        self.epoch += 1;
        let epoch = self.epoch;
        for s in self.touch().values_mut() {
            let n = &mut s.node;
            if n.node_id == id {
                n.role_in_cluster = Role::Master;
                n.master_id = None;
                n.config_epoch = epoch;
                n.flags.retain(|f| f != "slave");
                n.flags.insert(0, "master".into());
            } else if n.node_id == master || n.master_id.as_deref() == Some(&master) {
                n.role_in_cluster = Role::Slave;
                n.master_id = Some(id.clone());
                n.flags.retain(|f| f != "master");
                if !n.flags.iter().any(|f| f == "slave") {
                    n.flags.push("slave".into());
                }
            }
        }
        self.assign(&slots, &id);
        let word = mode.word().map(|w| format!(" {w}")).unwrap_or_default();
        self.record(
            "failover",
            replica,
            format!(
                "CLUSTER FAILOVER{word}: takes over from {}",
                short_id(&master)
            ),
            &slots,
        );
        Ok(())
    }

    fn slot_key_counts(&mut self, node: &Addr, slots: &[u16]) -> Result<Vec<u64>> {
        if let Some(live) = self.source.as_mut() {
            return live.slot_key_counts(node, slots);
        }
        // Offline: the snapshot knows keys per node only; spread them evenly.
        let id = self.id_at(node)?;
        let s = &self.nodes[&id];
        let held = s.node.assigned_slots.len().max(1) as u64;
        let (each, extra) = (s.keys / held, s.keys % held);
        Ok(slots
            .iter()
            .map(|x| match s.node.assigned_slots.binary_search(x) {
                Ok(i) => each + u64::from((i as u64) < extra),
                Err(_) => 0,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    //! The incremental slot assignment (slot index, shared table updated in place)
    //! against the full rebuild it replaces.
    use super::*;

    const HOST: &str = "10.9.0.1";

    fn id(port: u16) -> String {
        format!("{port:040x}")
    }

    fn line(port: u16, master: Option<u16>, slots: Vec<u16>) -> Node {
        Node {
            node_id: id(port),
            host: HOST.into(),
            port,
            cport: None,
            hostname: None,
            flags: vec![if master.is_some() { "slave" } else { "master" }.into()],
            role_in_cluster: if master.is_some() {
                Role::Slave
            } else {
                Role::Master
            },
            master_id: master.map(id),
            ping_sent: 0,
            pong_recv: 0,
            config_epoch: u64::from(port),
            connected: true,
            assigned_slots: slots,
            slots_migrating: Vec::new(),
            slots_importing: Vec::new(),
            used_memory: None,
            maxmemory: None,
            keys: None,
            zone: None,
        }
    }

    /// Six masters (7000..7005) sharing the slots, a replica each (7006..7011), open
    /// markers on two of them, one failed master, and a replica that wrongly lists a
    /// slot (a cluster that disagrees with itself).
    fn cluster() -> Topology {
        let mut nodes = Vec::new();
        let per = SLOT_COUNT / 6 + 1;
        for i in 0..6u16 {
            let slots = (i * per..((i + 1) * per).min(SLOT_COUNT)).collect();
            nodes.push(line(7000 + i, None, slots));
            nodes.push(line(7006 + i, Some(7000 + i), Vec::new()));
        }
        nodes[0].slots_migrating = vec![(3, id(7001)), (10, id(7002))];
        nodes[2].slots_importing = vec![(3, id(7000))];
        nodes[4].flags.push("fail".into());
        nodes[3].assigned_slots = vec![5, 6];
        Topology {
            entry_id: id(7000),
            nodes,
            ..Topology::default()
        }
    }

    /// A tiny deterministic generator (no dependency for tests).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % below.max(1)
        }
    }

    /// The slot assignment as it was: every node of the cluster looked at.
    fn assign_by_scan(nodes: &mut BTreeMap<String, SimNode>, slots: &[u16], to: &str) {
        let group = nodes.get(to).map(|s| s.group);
        for s in nodes.values_mut().filter(|s| Some(s.group) == group) {
            give_away(&mut s.node, slots);
        }
        if let Some(owner) = nodes.get_mut(to) {
            take(&mut owner.node, slots);
        }
    }

    /// What a view of the cluster shows: its lines, the owner of each slot, its state.
    type Served = (Vec<Node>, Vec<Option<String>>, String);

    fn lines(sim: &Sim) -> Vec<(usize, Node)> {
        sim.nodes
            .values()
            .map(|s| (s.group, s.node.clone()))
            .collect()
    }

    /// The shared table and state the simulation hands out for `port`, and the ones a
    /// rebuild from its nodes gives.
    fn served_and_rebuilt(sim: &mut Sim, port: u16) -> (Served, Served) {
        let parts = |v: &SharedView| {
            (
                v.table.nodes().to_vec(),
                v.table
                    .owner_ids()
                    .into_iter()
                    .map(|o| o.map(str::to_string))
                    .collect::<Vec<_>>(),
                v.cluster_state.clone(),
            )
        };
        let served = parts(&sim.shared(&Addr::new(HOST, port)).unwrap());
        for g in sim.groups.values_mut() {
            g.table = None;
        }
        let rebuilt = parts(&sim.shared(&Addr::new(HOST, port)).unwrap());
        (served, rebuilt)
    }

    fn random_slots(rng: &mut Lcg) -> Vec<u16> {
        let first = rng.next(usize::from(SLOT_COUNT)) as u16;
        let len = 1 + rng.next(40) as u16;
        let mut slots: Vec<u16> = (first..first.saturating_add(len).min(SLOT_COUNT)).collect();
        // Now and then a scattered set, with a slot listed twice.
        if rng.next(3) == 0 {
            slots.push(rng.next(usize::from(SLOT_COUNT)) as u16);
            slots.push(slots[0]);
        }
        // And now and then a slot out of range, which a table lists but no owner has.
        if rng.next(10) == 0 {
            slots.push(SLOT_COUNT + rng.next(4) as u16);
        }
        slots.sort_unstable();
        slots
    }

    #[test]
    fn slot_assignments_match_a_full_scan_and_the_table_follows_in_place() {
        let mut sim = Sim::offline(&cluster());
        // A free node: a cluster of its own, which may claim the same slots.
        let free = Addr::new(HOST, 7100);
        sim.add_slots(&free, &[1, 2, 3], 0).unwrap();
        let mut rng = Lcg(7);
        let mut held: Option<SharedView> = None;
        for round in 0..400 {
            let mut expected = sim.nodes.clone();
            let ports: Vec<u16> = (7000..7012).chain([7100]).collect();
            let port = ports[rng.next(ports.len())];
            let to = sim.id_at(&Addr::new(HOST, port)).unwrap();
            match rng.next(4) {
                0 => {
                    let slots = random_slots(&mut rng);
                    assign_by_scan(&mut expected, &slots, &to);
                    sim.add_slots(&Addr::new(HOST, port), &slots, 0).unwrap();
                }
                1 => {
                    let slots = random_slots(&mut rng);
                    assign_by_scan(&mut expected, &slots, &to);
                    let state = SlotState::Node(to.clone());
                    sim.set_slots(&Addr::new(HOST, 7000), &slots, &state)
                        .unwrap();
                }
                2 => {
                    // A move between two masters of the cluster, of part of what the
                    // source holds.
                    let src = sim.nodes[&id(7000 + rng.next(6) as u16)].node.clone();
                    let dst = sim.nodes[&id(7000 + rng.next(6) as u16)].node.clone();
                    let take_n = 1 + rng.next(src.assigned_slots.len().min(30));
                    let slots: Vec<u16> = src.assigned_slots.iter().copied().take(take_n).collect();
                    if slots.is_empty() || src.node_id == dst.node_id {
                        continue;
                    }
                    assign_by_scan(&mut expected, &slots, &dst.node_id);
                    if slots.len() == src.assigned_slots.len() {
                        // The emptied master follows the receiver: roles change, as
                        // before; copied from the simulation.
                        sim.move_slots(&src, &dst, &slots, &[]).unwrap();
                        expected = sim.nodes.clone();
                    } else {
                        sim.move_slots(&src, &dst, &slots, &[]).unwrap();
                    }
                }
                _ => {
                    // Any other change drops the index; markers cleared as well.
                    let slots = random_slots(&mut rng);
                    sim.set_slots(&Addr::new(HOST, port), &slots, &SlotState::Stable)
                        .unwrap();
                    expected = sim.nodes.clone();
                }
            }
            let got = lines(&sim);
            let want: Vec<(usize, Node)> = expected
                .values()
                .map(|s| (s.group, s.node.clone()))
                .collect();
            // Compared line by line: a whole-cluster diff is too long to read.
            assert_eq!(got.len(), want.len(), "round {round}");
            for (g, w) in got.iter().zip(&want) {
                assert!(g == w, "round {round}: {g:?}\nshould be\n{w:?}");
            }
            // Read a view now and then; keep one alive now and then, so that the
            // table cannot be changed in place and is rebuilt instead.
            if rng.next(3) == 0 {
                let (served, rebuilt) = served_and_rebuilt(&mut sim, 7000 + rng.next(12) as u16);
                assert_eq!(served, rebuilt, "round {round}");
            }
            held = match rng.next(4) {
                0 => Some(sim.shared(&Addr::new(HOST, 7000)).unwrap()),
                1 => None,
                _ => held,
            };
        }
        let (served, rebuilt) = served_and_rebuilt(&mut sim, 7001);
        assert_eq!(served, rebuilt);
        let (served, rebuilt) = served_and_rebuilt(&mut sim, 7100);
        assert_eq!(served, rebuilt);
    }

    #[test]
    fn a_move_updates_the_shared_table_without_a_rebuild() {
        let mut sim = Sim::offline(&cluster());
        let before = sim.shared(&Addr::new(HOST, 7000)).unwrap();
        let table = Arc::as_ptr(&before.table);
        drop(before);
        let src = sim.nodes[&id(7001)].node.clone();
        let dst = sim.nodes[&id(7002)].node.clone();
        sim.move_slots(&src, &dst, &src.assigned_slots[..10], &[])
            .unwrap();
        let after = sim.shared(&Addr::new(HOST, 7000)).unwrap();
        // The same table, changed in place.
        assert_eq!(Arc::as_ptr(&after.table), table);
        let owners = after.table.owner_ids();
        for s in &src.assigned_slots[..10] {
            assert_eq!(owners[usize::from(*s)], Some(id(7002).as_str()));
        }
        drop(after);
        let (served, rebuilt) = served_and_rebuilt(&mut sim, 7000);
        assert_eq!(served, rebuilt);
    }

    #[test]
    fn a_table_still_read_is_left_alone_and_rebuilt() {
        let mut sim = Sim::offline(&cluster());
        let held = sim.shared(&Addr::new(HOST, 7000)).unwrap();
        let src = sim.nodes[&id(7001)].node.clone();
        let dst = sim.nodes[&id(7002)].node.clone();
        sim.move_slots(&src, &dst, &src.assigned_slots[..10], &[])
            .unwrap();
        // The view read before shows the cluster as it was.
        assert_eq!(
            held.table.node(&id(7001)).unwrap().assigned_slots,
            src.assigned_slots
        );
        let after = sim.shared(&Addr::new(HOST, 7000)).unwrap();
        assert!(!Arc::ptr_eq(&after.table, &held.table));
        assert_eq!(
            after.table.node(&id(7001)).unwrap().assigned_slots,
            src.assigned_slots[10..]
        );
    }

    #[test]
    fn covering_the_last_slots_turns_the_state_ok_in_place() {
        let mut topo = cluster();
        // Slots 0..=9 uncovered: state fail.
        topo.nodes[0].assigned_slots.retain(|s| *s > 9);
        topo.nodes[4].flags.retain(|f| f != "fail");
        topo.nodes[3].assigned_slots.clear();
        let mut sim = Sim::offline(&topo);
        assert_eq!(
            sim.shared(&Addr::new(HOST, 7000)).unwrap().cluster_state,
            "fail"
        );
        sim.add_slots(&Addr::new(HOST, 7001), &(0..10).collect::<Vec<_>>(), 0)
            .unwrap();
        assert_eq!(
            sim.shared(&Addr::new(HOST, 7000)).unwrap().cluster_state,
            "ok"
        );
        let (served, rebuilt) = served_and_rebuilt(&mut sim, 7000);
        assert_eq!(served, rebuilt);
    }
}
