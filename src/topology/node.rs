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
    // One line per node: sized once, no regrowth.
    let lines: usize = text.bytes().map(|b| usize::from(b == b'\n')).sum();
    let mut nodes = Vec::with_capacity(lines + 1);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        nodes.push(parse_node_line(line)?);
    }
    let mut ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
    ids.sort_unstable();
    if let Some(twice) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "malformed CLUSTER NODES reply: node {} appears twice",
            twice[0]
        );
    }
    if nodes.iter().filter(|n| n.is_myself()).count() > 1 {
        bail!("malformed CLUSTER NODES reply: more than one line is flagged myself");
    }
    Ok(nodes)
}

/// The node's own line (flagged `myself`) of a `CLUSTER NODES` reply, parsed; the
/// other lines are only looked at for their flags field (as redis-cli reads a node
/// it already knows from another's reply). Errors: no `myself` line, more than one,
/// or a malformed `myself` line.
pub fn parse_own_line(text: &str) -> Result<Node> {
    let mut own = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let flags = line.split_whitespace().nth(2).unwrap_or("");
        if flags.split(',').any(|f| f == "myself") {
            if own.is_some() {
                bail!("malformed CLUSTER NODES reply: more than one line is flagged myself");
            }
            own = Some(line);
        }
    }
    match own {
        Some(line) => parse_node_line(line),
        None => bail!("CLUSTER NODES has no 'myself' line"),
    }
}

/// The fields of a `CLUSTER NODES` line, borrowed from it, split where
/// [`str::split_whitespace`] splits (Redis separates them with one space): an
/// ASCII line byte by byte, any other by `split_whitespace` itself.
enum Fields<'a> {
    /// A line of ASCII text, from byte `pos` on.
    Ascii { line: &'a str, pos: usize },
    /// Any other line.
    Any(std::str::SplitWhitespace<'a>),
}

impl<'a> Fields<'a> {
    fn of(line: &'a str) -> Fields<'a> {
        if line.is_ascii() {
            Fields::Ascii { line, pos: 0 }
        } else {
            Fields::Any(line.split_whitespace())
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match self {
            Fields::Ascii { line, pos } => {
                // What `char::is_whitespace` takes among ASCII characters (tab to
                // carriage return, vertical tab included, and space); most bytes
                // are above the space: one comparison rules them out.
                let space = |b: &u8| *b <= b' ' && (*b == b' ' || (b'\t'..=b'\r').contains(b));
                let bytes = line.as_bytes();
                let mut start = *pos;
                while bytes.get(start).is_some_and(space) {
                    start += 1;
                }
                let mut end = start;
                while bytes.get(end).is_some_and(|b| !space(b)) {
                    end += 1;
                }
                *pos = end;
                // An ASCII line: every byte is a character boundary.
                line.get(start..end).filter(|f| !f.is_empty())
            }
            Fields::Any(f) => f.next(),
        }
    }
}

/// Where byte `b` first occurs in `s` (a plain loop: the fields are short, where a
/// `memchr` call costs more than it saves).
fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// `s` cut at ASCII byte `at` (found by [`find_byte`]): before and after it.
fn cut(s: &str, at: usize) -> Option<(&str, &str)> {
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// A decimal number as [`str::parse`] reads it; plain digits (what servers print)
/// are read in a loop of their own, anything else by `parse`, which also words the
/// error.
fn number<T: TryFrom<u64> + std::str::FromStr>(s: &str) -> Result<T, T::Err> {
    // Up to 19 digits cannot overflow a u64.
    if !s.is_empty() && s.len() <= 19 {
        let mut n = 0u64;
        for d in s.bytes() {
            let digit = d.wrapping_sub(b'0');
            if digit > 9 {
                return s.parse();
            }
            n = n * 10 + u64::from(digit);
        }
        if let Ok(v) = T::try_from(n) {
            return Ok(v);
        }
    }
    s.parse()
}

/// Parses one line of `CLUSTER NODES`.
///
/// The fields are read in one pass without an intermediate list, and only what the
/// [`Node`] keeps is copied out of the line.
pub fn parse_node_line(line: &str) -> Result<Node> {
    let mut fields = Fields::of(line);
    let mut head = [""; 8];
    for slot in &mut head {
        match fields.next() {
            Some(f) => *slot = f,
            None => bail!("malformed CLUSTER NODES line (expected at least 8 fields): {line}"),
        }
    }
    let [id, address, flag_field, master, ping_sent, pong_recv, config_epoch, link] = head;
    let ctx = || format!("malformed CLUSTER NODES line: {line}");
    check_node_id(id).with_context(ctx)?;
    if master != "-" {
        check_node_id(master)
            .context("bad master id")
            .with_context(ctx)?;
    }
    let (host, port, cport, hostname) = parse_address_field(address).with_context(ctx)?;
    let flags = parse_flags(flag_field);
    // Every server of the matrix (Redis 7.0, 8.2, Valkey 8.1, 9.1) still prints
    // `slave`; `replica` is taken too should a server print the newer word.
    let role_in_cluster = if flags.iter().any(|f| f == "slave" || f == "replica") {
        Role::Slave
    } else {
        Role::Master
    };
    let mut node = Node {
        node_id: id.to_string(),
        host: host.to_string(),
        port,
        cport,
        hostname: hostname.map(str::to_string),
        flags,
        role_in_cluster,
        master_id: (master != "-").then(|| master.to_string()),
        ping_sent: number(ping_sent).with_context(ctx)?,
        pong_recv: number(pong_recv).with_context(ctx)?,
        config_epoch: number(config_epoch).with_context(ctx)?,
        connected: link == "connected",
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
    for item in fields {
        in_order &= parse_slot_item(item, &mut node).with_context(ctx)?;
    }
    if !in_order {
        crate::slots::sort_slots(&mut node.assigned_slots);
    }
    Ok(node)
}

/// The comma-separated flags, without empty ones and `noflags`.
fn parse_flags(field: &str) -> Vec<String> {
    let mut flags = Vec::with_capacity(field.bytes().filter(|&b| b == b',').count() + 1);
    let mut rest = field;
    loop {
        let (flag, more) = match find_byte(rest, b',').and_then(|at| cut(rest, at)) {
            Some((flag, more)) => (flag, Some(more)),
            None => (rest, None),
        };
        if !flag.is_empty() && flag != "noflags" {
            flags.push(flag.to_string());
        }
        match more {
            Some(more) => rest = more,
            None => return flags,
        }
    }
}

/// `ip:port`, `ip:port@cport` or `ip:port@cport,hostname`; IPv6 ip unbracketed.
/// The host and hostname are borrowed from `field` (an empty hostname is none).
fn parse_address_field(field: &str) -> Result<(&str, u16, Option<u16>, Option<&str>)> {
    let (addr, hostname) = match find_byte(field, b',').and_then(|at| cut(field, at)) {
        Some((a, h)) => (a, (!h.is_empty()).then_some(h)),
        None => (field, None),
    };
    let (addr, cport) = match find_byte(addr, b'@').and_then(|at| cut(addr, at)) {
        Some((a, c)) => (a, Some(number::<u16>(c).context("bad cluster bus port")?)),
        None => (addr, None),
    };
    let (host, port) = addr
        .bytes()
        .rposition(|b| b == b':')
        .and_then(|at| cut(addr, at))
        .context("address has no port")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host, number(port).context("bad port")?, cport, hostname))
}

/// `5`, `0-5460`, `[5461->-id]` (migrating) or `[5461-<-id]` (importing); false
/// when the slots do not come after those already listed.
fn parse_slot_item(item: &str, node: &mut Node) -> Result<bool> {
    if let Some(inner) = item.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if let Some((slot, id)) = inner.split_once("->-") {
            check_node_id(id)?;
            node.slots_migrating
                .push((check_slot(number(slot)?)?, id.to_string()));
        } else if let Some((slot, id)) = inner.split_once("-<-") {
            check_node_id(id)?;
            node.slots_importing
                .push((check_slot(number(slot)?)?, id.to_string()));
        } else {
            bail!("unknown slot marker '{item}'");
        }
        return Ok(true);
    }
    let (first, last) = match find_byte(item, b'-').and_then(|at| cut(item, at)) {
        Some((a, b)) => (number::<i64>(a)?, number::<i64>(b)?),
        None => {
            let s = number::<i64>(item)?;
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
    fn own_line_is_the_myself_line_and_the_others_are_not_parsed() {
        let mine =
            format!("{ID_B} 127.0.0.1:30002@40002 myself,master - 0 0 2 connected 5461-10922");
        let other = format!("{ID_A} 127.0.0.1:30001@40001 master - 0 1 1 connected 0-5460");
        let text = format!("{other}\n{mine}\n");
        let n = parse_own_line(&text).unwrap();
        assert_eq!(n, parse_node_line(&mine).unwrap());
        assert_eq!(n.assigned_slots.len(), 5462);
        // A malformed line of another node is not the own line's business.
        let text = format!("{ID_A} 127.0.0.1:30001 master - zero 1 1 connected\n{mine}\n");
        assert_eq!(parse_own_line(&text).unwrap().node_id, ID_B);
        // No myself line, two of them, or a malformed one: errors.
        let none = parse_own_line(&format!("{other}\n")).unwrap_err();
        assert!(none.to_string().contains("no 'myself' line"), "{none}");
        let two = format!("{mine}\n{}\n", mine.replace(ID_B, ID_A));
        let two = parse_own_line(&two).unwrap_err();
        assert!(two.to_string().contains("more than one line"), "{two}");
        assert!(parse_own_line(&mine.replace(" 2 connected", " x connected")).is_err());
    }

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

    /// The parser as it was before it was made to allocate less (one `Vec` of
    /// fields, a `String` per field copied): what the new one must agree with.
    mod reference {
        use crate::slots::check_slot;
        use crate::topology::node::{check_node_id, Node, Role};
        use anyhow::{bail, Context, Result};

        pub(super) fn parse_node_line(line: &str) -> Result<Node> {
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
    }

    /// Real lines of every form, then odd ones: the new parser accepts what the
    /// reference accepts, with the same node, and refuses what it refuses.
    fn odd_lines() -> Vec<String> {
        let id = ID_A;
        let m = ID_B;
        let mut lines = vec![
            format!("{id} 127.0.0.1:30004 slave {m} 0 1426238317239 4 connected"),
            format!("{id} 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922 11000"),
            format!("{id} 127.0.0.1:7000@17000,node-a.example myself,master - 0 0 1 connected 0-2 [3->-{m}] [4-<-{m}]"),
            format!("{id} :7000@17000, myself,master - 0 0 0 connected"),
            format!("{id} ::1:7001@17001 master,fail,nofailover - 1426238316232 0 3 disconnected"),
            format!("{id} [::1]:7001@17001 master - 0 0 3 connected 16383"),
            format!("{id} fe80::1%eth0:7001@17001,h6 slave,fail? {m} 0 0 3 connected"),
            format!("{id} 10.0.0.1:7001@17001 handshake,noaddr - 0 0 0 connected"),
            format!("{id} 10.0.0.1:7001@17001 noflags - 0 0 0 connected"),
            format!("{id} 10.0.0.1:7001@17001 ,master,,myself, - 0 0 0 connected"),
            format!("{id} 10.0.0.1:7001@17001 replica {m} 0 0 3 connected"),
            format!("{id}  10.0.0.1:7001\t\tmaster - 0 0 3   connected  10-20 \t 0-5 "),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected 5 3 4 4"),
            format!("{id} 10.0.0.1:7001 master - +0 +12 +3 connected +5-+7"),
            format!("{id} 10.0.0.1:7001 master - 0 18446744073709551615 3 connected"),
            format!("{id} 10.0.0.1:7001 master - 0 18446744073709551616 3 connected"),
            format!("{id} 10.0.0.1:7001 master - 0 99999999999999999999 3 connected"),
            format!("{id} 10.0.0.1:7001 master - 0 -1 3 connected"),
            format!("{id} 10.0.0.1:65536 master - 0 0 3 connected"),
            format!("{id} 10.0.0.1:7001@65536 master - 0 0 3 connected"),
            format!("{id} 10.0.0.1:7001@ master - 0 0 3 connected"),
            format!("{id} 10.0.0.1: master - 0 0 3 connected"),
            format!("{id} 10.0.0.1 master - 0 0 3 connected"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected 16384"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected 7-5"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected -5"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected 5-"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected 1-2-3"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected [5->-{m}"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected [5<>{m}]"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected [99999->-{m}]"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected [5->-abc]"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected [-5-<-{m}]"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3"),
            format!("{id} 10.0.0.1:7001 master {} 0 0 3 connected", &m[..39]),
            format!("{} 10.0.0.1:7001 master - 0 0 3 connected", id.to_uppercase()),
            format!("{id} 10.0.0.1:7001,h\u{a0}x master - 0 0 3 connected"),
            format!("{id}\u{a0}10.0.0.1:7001 master - 0 0 3 connected x"),
            format!("{id} 10.0.0.1:7001\u{2003}master - 0 0 3 connected 1 2"),
            format!("{id} 10.0.0.1:7001,hôte master - 0 0 3 connected 1"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected 1\u{85}2"),
            format!("{id} 10.0.0.1:7001 master - 0 0 3 connected ١"),
            format!("{id} 10.0.0.1:7001 master\x0b - 0 0 3 connected"),
            format!("{id} 10.0.0.1:7001 master\x01 - 0 0 3 connected"),
            String::new(),
            "   ".into(),
        ];
        // Random edits of a real line: bytes replaced, dropped or doubled.
        let base = format!(
            "{id} 127.0.0.1:7000@17000,node-a.example myself,master - 0 1426238316232 1 connected 0-2 5 [3->-{m}] [4-<-{m}]"
        );
        let alphabet = b" \t-:@,[]<>0123456789abcdefx";
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..3000 {
            let mut bytes = base.clone().into_bytes();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..bytes.len());
                match rng.u8(..3) {
                    0 => bytes[at] = alphabet[rng.usize(..alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, bytes[at]),
                }
            }
            lines.push(String::from_utf8(bytes).unwrap());
        }
        lines
    }

    #[test]
    fn agrees_with_the_reference_parser_on_odd_and_mutated_lines() {
        let mut accepted = 0;
        for line in odd_lines() {
            let new = parse_node_line(&line);
            let old = reference::parse_node_line(&line);
            match (&new, &old) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{line:?}");
                    accepted += 1;
                }
                (Err(a), Err(b)) => {
                    assert_eq!(format!("{a:#}"), format!("{b:#}"), "{line:?}")
                }
                _ => panic!("{line:?}: new {new:?}, reference {old:?}"),
            }
        }
        // The comparison is not vacuous: many of them parse.
        assert!(accepted > 100, "{accepted}");
    }

    #[test]
    fn whole_replies_refuse_duplicates_and_two_myself_lines() {
        let a = format!("{ID_A} 127.0.0.1:7000 myself,master - 0 0 1 connected");
        let b = format!("{ID_B} 127.0.0.1:7001 master - 0 0 2 connected");
        let b_myself = format!("{ID_B} 127.0.0.1:7001 myself,master - 0 0 2 connected");
        assert_eq!(
            parse_cluster_nodes(&format!("\r\n{a}\r\n\r\n  {b}  \r\n"))
                .unwrap()
                .len(),
            2
        );
        let twice = parse_cluster_nodes(&format!("{a}\n{b}\n{a}\n")).unwrap_err();
        assert!(
            format!("{twice:#}").contains(&format!("node {ID_A} appears twice")),
            "{twice:#}"
        );
        let two = parse_cluster_nodes(&format!("{a}\n{b_myself}")).unwrap_err();
        assert!(format!("{two:#}").contains("more than one line is flagged myself"));
        let bad = parse_cluster_nodes(&format!("{a}\n{ID_B} 127.0.0.1 master")).unwrap_err();
        assert!(format!("{bad:#}").contains("expected at least 8 fields"));
        assert!(parse_cluster_nodes("").unwrap().is_empty());
    }

    #[test]
    fn numbers_read_as_parse_reads_them() {
        for s in [
            "0",
            "7",
            "65535",
            "65536",
            "+5",
            "-5",
            "",
            "1_0",
            "00012",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "x",
        ] {
            assert_eq!(number::<u64>(s).ok(), s.parse::<u64>().ok(), "{s}");
            assert_eq!(number::<u16>(s).ok(), s.parse::<u16>().ok(), "{s}");
            assert_eq!(number::<i64>(s).ok(), s.parse::<i64>().ok(), "{s}");
            if let (Err(a), Err(b)) = (number::<u16>(s), s.parse::<u16>()) {
                assert_eq!(a, b, "{s}");
            }
        }
    }
}
