//! One node as a `CLUSTER NODES` line describes it, and the parser for those lines
//! (Redis 3.x `ip:port`, 4.x+ `ip:port@cport`, 7.x `ip:port@cport,hostname`, IPv6).

use crate::addr::Addr;
use crate::slots::check_slot;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// A node's role in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Serves slots (or could).
    Master,
    /// Replicates a master (`slave` in Redis's vocabulary).
    Slave,
}

impl Role {
    /// The word Redis uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave => "slave",
        }
    }
}

/// One node of the cluster as seen in one `CLUSTER NODES` line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The 40-character node id.
    pub node_id: String,
    /// Host as announced (empty for a lone node that was never met; see [`Node::with_host`]).
    pub host: String,
    /// Client port.
    pub port: u16,
    /// Cluster bus port, when the line has one (Redis 4+).
    pub cport: Option<u16>,
    /// Announced hostname (Redis 7+), if any.
    pub hostname: Option<String>,
    /// Raw flags: myself, master, slave, fail?, fail, handshake, noaddr, nofailover.
    pub flags: Vec<String>,
    /// Master or slave.
    pub role_in_cluster: Role,
    /// The master's id for a replica.
    pub master_id: Option<String>,
    /// Milliseconds timestamp of the last ping sent (0 when none pending).
    pub ping_sent: u64,
    /// Milliseconds timestamp of the last pong received.
    pub pong_recv: u64,
    /// The node's configuration epoch.
    pub config_epoch: u64,
    /// Whether the cluster bus link is connected.
    pub connected: bool,
    /// Slots this node serves, sorted.
    #[serde(with = "crate::slots::ranges_serde")]
    pub assigned_slots: Vec<u16>,
    /// Slots this node is migrating away: (slot, destination node id).
    pub slots_migrating: Vec<(u16, String)>,
    /// Slots this node is importing: (slot, source node id).
    pub slots_importing: Vec<(u16, String)>,
    /// Bytes of memory in use (`INFO memory` `used_memory`), when read (`list --json`,
    /// script node values); absent from `CLUSTER NODES` and older snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_memory: Option<u64>,
    /// The node's `maxmemory` in bytes (0: no limit), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxmemory: Option<u64>,
    /// Keys in database 0 (`DBSIZE`), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// Its zone (availability zone, rack), when known (see `crate::ops::zones`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

impl Node {
    /// The node's client address.
    pub fn addr(&self) -> Addr {
        Addr::new(self.host.clone(), self.port)
    }

    /// True when the line is the answering node itself.
    pub fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }

    /// True for a master.
    pub fn is_master(&self) -> bool {
        self.role_in_cluster == Role::Master
    }

    /// True when the cluster has agreed this node failed (`fail`).
    pub fn is_failed(&self) -> bool {
        self.has_flag("fail")
    }

    /// True when the answering node merely suspects a failure (`fail?`).
    pub fn is_suspected(&self) -> bool {
        self.has_flag("fail?")
    }

    /// True while the handshake with this node is unfinished.
    pub fn in_handshake(&self) -> bool {
        self.has_flag("handshake")
    }

    /// True when the node has no known address.
    pub fn no_addr(&self) -> bool {
        self.has_flag("noaddr")
    }

    /// Whether the flags contain `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// Fills an empty host (a lone node that was never met prints `:port`) with the
    /// host we reached it on.
    pub fn with_host(mut self, host: &str) -> Node {
        if self.host.is_empty() {
            self.host = host.to_string();
        }
        self
    }

    /// Short form of the id, as operators read it (see [`short_id`]).
    pub fn short_id(&self) -> &str {
        short_id(&self.node_id)
    }
}

/// Length of a Redis node id: 40 lowercase hexadecimal characters.
pub const NODE_ID_LEN: usize = 40;

/// The short form of a node id operators read (its first 8 characters; the whole
/// id when shorter). Safe on any text: it cuts at a character boundary.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// Checks that `id` looks like a node id Redis generates: exactly 40 characters
/// `0-9a-f`.
pub fn check_node_id(id: &str) -> Result<()> {
    let hex = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if id.len() != NODE_ID_LEN || !id.as_bytes().iter().all(hex) {
        bail!(
            "node id {id:?} is not {NODE_ID_LEN} lowercase hexadecimal characters (as Redis makes them, e.g. 07c37dfeb235213a872192d90877d0cd55635b91)"
        );
    }
    Ok(())
}

/// Parses the whole reply of `CLUSTER NODES`: one line per node, each node once, at
/// most one `myself` line.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<Node>> {
    let nodes: Vec<Node> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(parse_node_line)
        .collect::<Result<_>>()?;
    let mut seen = std::collections::BTreeSet::new();
    for n in &nodes {
        if !seen.insert(n.node_id.as_str()) {
            bail!(
                "malformed CLUSTER NODES reply: node {} appears twice",
                n.node_id
            );
        }
    }
    if nodes.iter().filter(|n| n.is_myself()).count() > 1 {
        bail!("malformed CLUSTER NODES reply: more than one line is flagged myself");
    }
    Ok(nodes)
}

/// Parses one line of `CLUSTER NODES`.
pub fn parse_node_line(line: &str) -> Result<Node> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        bail!("malformed CLUSTER NODES line (expected at least 8 fields): {line}");
    }
    let ctx = || format!("malformed CLUSTER NODES line: {line}");
    check_node_id(fields[0]).with_context(ctx)?;
    if fields[3] != "-" {
        check_node_id(fields[3])
            .context("bad master id")
            .with_context(ctx)?;
    }
    let (host, port, cport, hostname) = parse_address_field(fields[1]).with_context(ctx)?;
    let flags: Vec<String> = fields[2]
        .split(',')
        .filter(|f| !f.is_empty() && *f != "noflags")
        .map(String::from)
        .collect();
    // Every server of the matrix (Redis 7.0, 8.2, Valkey 8.1, 9.1) still prints
    // `slave`; `replica` is taken too should a server print the newer word.
    let role_in_cluster = if flags.iter().any(|f| f == "slave" || f == "replica") {
        Role::Slave
    } else {
        Role::Master
    };
    let master_id = (fields[3] != "-").then(|| fields[3].to_string());
    let number = |i: usize| fields[i].parse::<u64>().with_context(ctx);
    let mut node = Node {
        node_id: fields[0].to_string(),
        host,
        port,
        cport,
        hostname,
        flags,
        role_in_cluster,
        master_id,
        ping_sent: number(4)?,
        pong_recv: number(5)?,
        config_epoch: number(6)?,
        connected: fields[7] == "connected",
        assigned_slots: Vec::new(),
        slots_migrating: Vec::new(),
        slots_importing: Vec::new(),
        used_memory: None,
        maxmemory: None,
        keys: None,
        zone: None,
    };
    // Redis lists ranges in order; only an out-of-order reply needs sorting.
    let mut in_order = true;
    for item in &fields[8..] {
        in_order &= parse_slot_item(item, &mut node).with_context(ctx)?;
    }
    if !in_order {
        crate::slots::sort_slots(&mut node.assigned_slots);
    }
    Ok(node)
}

/// `ip:port`, `ip:port@cport` or `ip:port@cport,hostname`; IPv6 ip unbracketed.
fn parse_address_field(field: &str) -> Result<(String, u16, Option<u16>, Option<String>)> {
    let (addr, hostname) = match field.split_once(',') {
        Some((a, h)) => (a, (!h.is_empty()).then(|| h.to_string())),
        None => (field, None),
    };
    let (addr, cport) = match addr.split_once('@') {
        Some((a, c)) => (a, Some(c.parse::<u16>().context("bad cluster bus port")?)),
        None => (addr, None),
    };
    let (host, port) = addr.rsplit_once(':').context("address has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((
        host.to_string(),
        port.parse().context("bad port")?,
        cport,
        hostname,
    ))
}

/// `5`, `0-5460`, `[5461->-id]` (migrating) or `[5461-<-id]` (importing); false
/// when the slots do not come after those already listed.
fn parse_slot_item(item: &str, node: &mut Node) -> Result<bool> {
    if let Some(inner) = item.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Some((slot, id)) = inner.split_once("->-") {
            check_node_id(id)?;
            node.slots_migrating
                .push((check_slot(slot.parse()?)?, id.to_string()));
        } else if let Some((slot, id)) = inner.split_once("-<-") {
            check_node_id(id)?;
            node.slots_importing
                .push((check_slot(slot.parse()?)?, id.to_string()));
        } else {
            bail!("unknown slot marker '{item}'");
        }
        return Ok(true);
    }
    let (first, last) = match item.split_once('-') {
        Some((a, b)) => (a.parse::<i64>()?, b.parse::<i64>()?),
        None => {
            let s = item.parse::<i64>()?;
            (s, s)
        }
    };
    let (first, last) = (check_slot(first)?, check_slot(last)?);
    if first > last {
        bail!("slot range '{item}' is reversed");
    }
    Ok(crate::slots::extend_range(
        &mut node.assigned_slots,
        first,
        last,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "07c37dfeb235213a872192d90877d0cd55635b91";
    const ID_B: &str = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1";

    #[test]
    fn parses_redis3_line() {
        let n = parse_node_line(&format!(
            "{ID_A} 127.0.0.1:30004 slave {ID_B} 0 1426238317239 4 connected"
        ))
        .unwrap();
        assert_eq!(n.addr(), Addr::new("127.0.0.1", 30004));
        assert_eq!(n.cport, None);
        assert_eq!(n.role_in_cluster, Role::Slave);
        assert_eq!(n.master_id.as_deref(), Some(ID_B));
        assert_eq!(n.config_epoch, 4);
        assert!(n.connected);
        assert!(n.assigned_slots.is_empty());
    }

    #[test]
    fn parses_redis4_line_with_slots() {
        let n = parse_node_line(&format!(
            "{ID_B} 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922 11000"
        ))
        .unwrap();
        assert_eq!(n.cport, Some(40002));
        assert!(n.is_master() && n.master_id.is_none());
        assert_eq!(n.assigned_slots.len(), 5462 + 1);
        assert_eq!(*n.assigned_slots.last().unwrap(), 11000);
    }

    #[test]
    fn parses_redis7_line_with_hostname_and_markers() {
        let n = parse_node_line(&format!(
            "{ID_A} 127.0.0.1:7000@17000,node-a.example myself,master - 0 0 1 connected 0-2 [3->-{ID_B}] [4-<-{ID_B}]"
        ))
        .unwrap();
        assert!(n.is_myself());
        assert_eq!(n.hostname.as_deref(), Some("node-a.example"));
        assert_eq!(n.assigned_slots, vec![0, 1, 2]);
        assert_eq!(n.slots_migrating, vec![(3, ID_B.to_string())]);
        assert_eq!(n.slots_importing, vec![(4, ID_B.to_string())]);
    }

    #[test]
    fn parses_empty_hostname_and_lone_node() {
        let n = parse_node_line(&format!(
            "{ID_A} :7000@17000, myself,master - 0 0 0 connected"
        ))
        .unwrap();
        assert_eq!(n.host, "");
        assert_eq!(n.hostname, None);
        assert_eq!(
            n.with_host("localhost").addr(),
            Addr::new("localhost", 7000)
        );
    }

    #[test]
    fn parses_ipv6_and_failure_flags() {
        let n = parse_node_line(&format!(
            "{ID_A} ::1:7001@17001 master,fail,nofailover - 1426238316232 0 3 disconnected"
        ))
        .unwrap();
        assert_eq!(n.addr(), Addr::new("::1", 7001));
        assert!(n.is_failed() && !n.is_suspected() && !n.connected);
        let n = parse_node_line(&format!(
            "{ID_A} 10.0.0.1:7001@17001 master,fail? - 0 0 3 connected"
        ))
        .unwrap();
        assert!(n.is_suspected() && !n.is_failed());
        let n = parse_node_line(&format!(
            "{ID_A} 10.0.0.1:7001@17001 handshake,noaddr - 0 0 0 connected"
        ))
        .unwrap();
        assert!(n.in_handshake() && n.no_addr());
    }

    #[test]
    fn parses_whole_reply() {
        let text = format!(
            "{ID_A} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n{ID_B} 127.0.0.1:7001@17001 master - 0 1 2 connected 8192-16383\n"
        );
        let nodes = parse_cluster_nodes(&text).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].assigned_slots.len(), 8192);
    }

    /// Lines captured from 3-node labs with a replica, `cluster-announce-hostname`
    /// set on every node and (Valkey) `availability-zone` set: no server prints the
    /// zone or shard id in `CLUSTER NODES` (only `CLUSTER SHARDS`), all say `slave`.
    #[test]
    fn parses_real_lines_of_every_server() {
        let cases = [
            // Redis 7.0.15
            "3911b7b58c79a5dbae1a23178d379e82e7d91c3e 127.0.0.1:24003@34003,replica.lab slave 25833cf55a363c74322a778436cc65b706dbb928 0 1796208181761 1 connected",
            "25833cf55a363c74322a778436cc65b706dbb928 127.0.0.1:24000@34000,node0.lab myself,master - 0 1796208181000 1 connected 0-5461",
            // Redis 8.2.3
            "14ac4dfbcf5aeac4152bfc1a62534ef527a9ce24 127.0.0.1:24013@34013,replica.lab myself,slave e1d81928166262c42371ad60a3ba539ca7adb24d 0 0 1 connected",
            "e1d81928166262c42371ad60a3ba539ca7adb24d 127.0.0.1:24010@34010,node0.lab myself,master - 0 0 1 connected 0-5461",
            // Valkey 8.1.8
            "24a723657cb96d15dddfc809d15015825b40ac98 127.0.0.1:24023@34023,replica.lab slave 951a7de28e265591e0bc8baad5210aed0557631c 0 1796208181000 1 connected",
            "951a7de28e265591e0bc8baad5210aed0557631c 127.0.0.1:24020@34020,node0.lab myself,master - 0 0 1 connected 0-5461",
            // Valkey 9.1.2
            "09d357218e375639c96ffc82d74166682f58c713 127.0.0.1:24033@34033,replica.lab myself,slave e97f784976e558845d8b13a1c3e98d1b4940803a 0 0 1 connected",
            "e97f784976e558845d8b13a1c3e98d1b4940803a 127.0.0.1:24030@34030,node0.lab myself,master - 0 0 1 connected 0-5461",
        ];
        for pair in cases.chunks(2) {
            let r = parse_node_line(pair[0]).unwrap();
            assert_eq!(r.role_in_cluster, Role::Slave, "{}", pair[0]);
            assert_eq!(r.hostname.as_deref(), Some("replica.lab"));
            assert_eq!(r.port + 10000, r.cport.unwrap());
            let m = parse_node_line(pair[1]).unwrap();
            assert!(m.is_master() && m.is_myself());
            assert_eq!(r.master_id.as_deref(), Some(m.node_id.as_str()));
            assert_eq!(m.hostname.as_deref(), Some("node0.lab"));
            assert_eq!(m.assigned_slots.len(), 5462);
        }
        let r = parse_node_line(&format!(
            "{ID_A} 10.0.0.1:7001@17001 replica {ID_B} 0 0 3 connected"
        ))
        .unwrap();
        assert_eq!(r.role_in_cluster, Role::Slave);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse_node_line("abc 127.0.0.1:7000 master").is_err());
        assert!(parse_node_line(&format!(
            "{ID_A} 127.0.0.1:7000 master - 0 0 1 connected 99999"
        ))
        .is_err());
        assert!(parse_node_line(&format!("{ID_A} 127.0.0.1 master - 0 0 1 connected")).is_err());
        assert!(parse_node_line(&format!(
            "{ID_A} 127.0.0.1:7000 master - 0 0 1 connected [5<>x]"
        ))
        .is_err());
    }
}
