//! The simulated backend behind dry runs and offline topologies: an in-memory copy of
//! the cluster that mutating primitives update (and record as plan steps) instead of
//! touching nodes. Reads see the planned state. Nodes not in the copy are read once
//! from a live source when there is one (reads only), or invented as free nodes.

use super::live::Live;
use super::{Backend, Event, FailoverMode, MoveStats, SlotState};
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
    nodes: BTreeMap<String, SimNode>,
    source: Option<Box<Live>>,
    steps: Vec<PlanStep>,
    tap: Option<Sender<Event>>,
    next_group: usize,
    next_id: u64,
    epoch: u64,
    /// Each group's node table and cluster state, shared by every view of it; built
    /// on first read, dropped by any change (see [`Sim::touch`]).
    tables: HashMap<usize, (Arc<Table>, &'static str)>,
    /// Node id by (host, port); dropped when nodes come or go.
    by_addr: HashMap<(String, u16), String>,
    /// What is known of zones offline (over live nodes, the live backend's book is
    /// used).
    zones: ZoneBook,
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
            tables: HashMap::new(),
            by_addr: HashMap::new(),
            zones: ZoneBook::default(),
        }
    }

    /// Zones known offline besides the snapshot's own: the `--zones` file.
    pub fn with_zones(mut self, file: Option<Arc<ZoneFile>>) -> Sim {
        self.zones = ZoneBook::with_file(file);
        self
    }

    /// The nodes, for a change: the shared tables no longer hold.
    fn touch(&mut self) -> &mut BTreeMap<String, SimNode> {
        self.tables.clear();
        &mut self.nodes
    }

    /// Adds (or replaces) a node.
    fn put(&mut self, id: String, node: SimNode) {
        self.by_addr.clear();
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
        if let Some(t) = self.tables.get(&group) {
            return t.clone();
        }
        let members: Vec<Node> = self
            .nodes
            .values()
            .filter(|s| s.group == group)
            .map(|s| s.node.clone())
            .collect();
        let covered: usize = members
            .iter()
            .filter(|n| n.is_master() && !n.is_failed())
            .map(|n| n.assigned_slots.len())
            .sum();
        let state = if covered == SLOT_COUNT as usize {
            "ok"
        } else {
            "fail"
        };
        let entry = (Arc::new(Table::new(members)), state);
        self.tables.insert(group, entry.clone());
        entry
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
    }

    fn new_group(&mut self) -> usize {
        self.next_group += 1;
        self.next_group
    }

    /// The recorded plan.
    pub fn steps(&self) -> &[PlanStep] {
        &self.steps
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

    fn assign(&mut self, slots: &[u16], to: &str) {
        // Only `to`'s cluster: another cluster of the copy may serve the same slots.
        let group = self.nodes.get(to).map(|s| s.group);
        for s in self.touch().values_mut().filter(|s| Some(s.group) == group) {
            s.node
                .assigned_slots
                .retain(|x| slots.binary_search(x).is_err());
            s.node
                .slots_migrating
                .retain(|(x, _)| slots.binary_search(x).is_err());
            s.node
                .slots_importing
                .retain(|(x, _)| slots.binary_search(x).is_err());
        }
        if let Some(owner) = self.touch().get_mut(to) {
            owner.node.assigned_slots.extend_from_slice(slots);
            owner.node.assigned_slots.sort_unstable();
            owner.node.assigned_slots.dedup();
        }
    }
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
        let a = self.id_at(node)?;
        let b = self.id_at(other)?;
        let (ga, gb) = (self.nodes[&a].group, self.nodes[&b].group);
        for s in self.touch().values_mut() {
            if s.group == gb {
                s.group = ga;
            }
        }
        self.record("meet", node, format!("CLUSTER MEET {other}"), &[]);
        Ok(())
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
        if let Some(s) = self.touch().get_mut(&src.node_id) {
            s.keys = s.keys.saturating_sub(keys);
        }
        if let Some(d) = self.touch().get_mut(&dst.node_id) {
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
