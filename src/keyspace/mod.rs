//! The cluster as one keyspace: a handle that sends each command where it belongs.
//!
//! Key commands go to their slot's owner through the `redis` crate's cluster
//! connection, which follows MOVED (refreshing its slot map) and ASK (sending
//! ASKING) and retries TRYAGAIN and CLUSTERDOWN with a bounded backoff. What the
//! crate does not do the way an operator expects is done here ([`route()`] decides):
//! multi-key commands are split per slot (every part with the same redirections and
//! retries) and merged in the caller's order; fan-out commands answer per node;
//! `SCAN` walks every master with a cluster cursor; dangerous or meaningless
//! commands are refused.

pub mod route;

use crate::addr::Addr;
use crate::conn::reply::{refusal, Refusal};
use crate::conn::{connection_addr, ConnOpts, NodeConn};
use crate::topology::{parse_cluster_nodes, Node};
use anyhow::{anyhow, bail, Context, Result};
use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::cluster_routing::{Route as SlotRoute, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionLike, IntoConnectionInfo, Value};
use route::{route, split, Merge, Route};

/// Retries of one command on TRYAGAIN, CLUSTERDOWN, MOVED or ASK.
const RETRIES: u32 = 8;
/// The shortest and longest pause between two retries, in milliseconds.
const RETRY_WAIT_MS: (u64, u64) = (20, 1000);

/// One node's part of a fan-out: its reply, or why it gave none (unreachable, or it
/// answered with an error). One node's failure does not hide the others' replies.
pub type NodeReply = std::result::Result<Value, String>;

/// What a command sent through a [`ClusterClient`] answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// One reply (routed, split and merged, or agreed on by every master).
    One(Value),
    /// One reply per node, in the cluster's order (masters first), by address.
    PerNode(Vec<(String, NodeReply)>),
}

impl Reply {
    /// The reply as one Redis value; per-node replies become a map address → reply,
    /// a node's failure the string `error: ...` (as scripts see error replies).
    pub fn into_value(self) -> Value {
        match self {
            Reply::One(v) => v,
            Reply::PerNode(pairs) => Value::Map(
                pairs
                    .into_iter()
                    .map(|(addr, r)| {
                        let v = r.unwrap_or_else(|e| Value::SimpleString(format!("error: {e}")));
                        (Value::BulkString(addr.into_bytes()), v)
                    })
                    .collect(),
            ),
        }
    }
}

/// A connection to a whole cluster, entered through any one of its nodes.
pub struct ClusterClient {
    entry: Addr,
    known: Vec<Addr>,
    conn: ClusterConnection,
}

impl ClusterClient {
    /// Connects to the cluster `entry` belongs to. Fails with a clear message when the
    /// node is unreachable, refuses the credentials or is not cluster-enabled.
    pub fn open(entry: &Addr, opts: &ConnOpts) -> Result<ClusterClient> {
        let view = NodeConn::open(entry, opts)?.view()?;
        let known: Vec<Addr> = view
            .nodes
            .iter()
            .filter(|n| usable(n))
            .map(Node::addr)
            .collect();
        let infos = known
            .iter()
            .map(|a| connection_addr(a, opts).into_connection_info())
            .collect::<redis::RedisResult<Vec<_>>>()?;
        let mut builder = ClusterClientBuilder::new(infos)
            .connection_timeout(opts.timeout)
            .response_timeout(opts.timeout)
            .retries(RETRIES)
            .min_retry_wait(RETRY_WAIT_MS.0)
            .max_retry_wait(RETRY_WAIT_MS.1);
        if let Some(p) = &opts.password {
            builder = builder.password(p);
        }
        if let Some(u) = &opts.user {
            builder = builder.username(u);
        }
        if let Some(tls) = &opts.tls {
            crate::conn::install_tls_provider();
            builder = builder
                .tls(redis::TlsMode::Secure)
                .certs(tls.certificates());
        }
        let conn = builder
            .build()
            .and_then(|c| c.get_connection())
            .map_err(|e| anyhow!("cannot open the cluster of {entry}: {e}"))?;
        Ok(ClusterClient {
            entry: entry.clone(),
            known,
            conn,
        })
    }

    /// The node this handle entered the cluster through.
    pub fn entry(&self) -> &Addr {
        &self.entry
    }

    /// Runs one command (name first) where it belongs; see [`route::route`].
    pub fn execute(&mut self, args: &[Vec<u8>]) -> Result<Reply> {
        let name = command_name(args);
        match route(args) {
            Route::Refused(why) => bail!(why),
            Route::Ok => Ok(Reply::One(Value::Okay)),
            Route::Routed => self
                .conn
                .req_command(&to_cmd(args))
                .map(Reply::One)
                .map_err(|e| anyhow!("{name} failed: {e}")),
            Route::Split(merge) => self.split(args, merge).map(Reply::One),
            Route::AllNodes => self.fan_out(args, false).map(Reply::PerNode),
            Route::AllMasters => self.fan_out(args, true).map(Reply::PerNode),
            Route::MastersAgree => {
                let mut replies = Vec::new();
                for (addr, r) in self.fan_out(args, true)? {
                    match r {
                        Ok(v) => replies.push((addr, v)),
                        Err(e) => bail!("{name} failed on {addr}: {e}"),
                    }
                }
                let first = replies
                    .first()
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Nil);
                match replies.iter().find(|(_, v)| *v != first) {
                    Some((addr, v)) => bail!(
                        "{name}: the masters disagree ({} answered {first:?}, {addr} answered {v:?})",
                        replies[0].0
                    ),
                    None => Ok(Reply::One(first)),
                }
            }
            Route::Scan => self.scan(args).map(Reply::One),
        }
    }

    /// The nodes a fan-out reaches: every node not flagged failed, without address or
    /// in handshake (masters only when asked), masters first.
    pub fn nodes(&mut self, masters_only: bool) -> Result<Vec<Addr>> {
        let mut last_error = None;
        let candidates: Vec<Addr> = std::iter::once(self.entry.clone())
            .chain(self.known.iter().filter(|a| **a != self.entry).cloned())
            .collect();
        for at in candidates {
            let text = match self.on(&at, &cluster_nodes_cmd()) {
                Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
                Ok(Value::VerbatimString { text, .. }) => text,
                Ok(other) => bail!("{at}: unexpected CLUSTER NODES reply {other:?}"),
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            let mut nodes: Vec<Node> = parse_cluster_nodes(&text)
                .with_context(|| format!("{at}: cannot read CLUSTER NODES"))?
                .into_iter()
                .map(|n| {
                    if n.is_myself() {
                        n.with_host(&at.host)
                    } else {
                        n
                    }
                })
                .filter(|n| usable(n) && (!masters_only || n.is_master()))
                .collect();
            nodes.sort_by_key(|n| (!n.is_master(), n.host.clone(), n.port));
            return Ok(nodes.iter().map(Node::addr).collect());
        }
        Err(last_error.unwrap_or_else(|| anyhow!("no node of the cluster answers")))
    }

    /// Runs `cmd` on the node at `addr`; the error names the node.
    fn on(&mut self, addr: &Addr, cmd: &redis::Cmd) -> Result<Value> {
        self.on_raw(addr, cmd).map_err(|e| anyhow!("{addr}: {e}"))
    }

    fn on_raw(&mut self, addr: &Addr, cmd: &redis::Cmd) -> redis::RedisResult<Value> {
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: addr.host.clone(),
            port: addr.port,
        });
        self.conn.route_command(cmd, routing)
    }

    /// Runs the command on every node (every master); each node's failure is kept
    /// with its address, next to the others' replies.
    fn fan_out(
        &mut self,
        args: &[Vec<u8>],
        masters_only: bool,
    ) -> Result<Vec<(String, NodeReply)>> {
        let cmd = to_cmd(args);
        let nodes = self.nodes(masters_only)?;
        Ok(nodes
            .iter()
            .map(|a| {
                // The address is the key: errors need not repeat it.
                let reply = match self.on_raw(a, &cmd) {
                    Ok(Value::ServerError(e)) => Err(e.to_string()),
                    Ok(v) => Ok(v),
                    Err(e) => Err(e.to_string()),
                };
                (a.to_string(), reply)
            })
            .collect())
    }

    fn split(&mut self, args: &[Vec<u8>], merge: Merge) -> Result<Value> {
        let name = command_name(args);
        let parts = split(args).map_err(|e| anyhow!("{name}: {e}"))?;
        let keys: usize = parts.iter().map(|p| p.positions.len()).sum();
        let mut values = vec![Value::Nil; keys];
        let mut sum = 0i64;
        for part in &parts {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                SlotRoute::new(part.slot, SlotAddr::Master),
            ));
            let reply = self
                .conn
                .route_command(&to_cmd(&part.args), routing)
                .map_err(|e| split_error(&name, part.slot, &e))?;
            match (merge, reply) {
                (Merge::Values, Value::Array(items)) if items.len() == part.positions.len() => {
                    for (pos, v) in part.positions.iter().zip(items) {
                        values[*pos] = v;
                    }
                }
                (Merge::AllOk, Value::Okay) => {}
                (Merge::AllOk, Value::SimpleString(s)) if s == "OK" => {}
                (Merge::Sum, Value::Int(n)) => sum += n,
                (_, other) => bail!("{name}: unexpected reply {other:?} for slot {}", part.slot),
            }
        }
        Ok(match merge {
            Merge::Values => Value::Array(values),
            Merge::AllOk => Value::Okay,
            Merge::Sum => Value::Int(sum),
        })
    }

    /// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]` over every master in turn, with
    /// Redis's contract: start at `0`, pass back the cursor each reply gives, stop
    /// when it is `0` again. A cluster cursor is `master:cursor` (the master's index
    /// among the masters sorted by address, and that master's own cursor). A reply
    /// holds one master's page, or several when pages come back empty, so memory
    /// stays flat however many keys there are. Keys moved by a migration during the
    /// scan may be missed or seen twice, as with a rehashing SCAN.
    fn scan(&mut self, args: &[Vec<u8>]) -> Result<Value> {
        let cursor = args
            .get(1)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        let (mut index, mut node_cursor) = parse_scan_cursor(&cursor)?;
        let options = &args[2..];
        let masters = self.nodes(true)?;
        let mut keys = Vec::new();
        for _ in 0..SCAN_ROUNDS_PER_CALL {
            let Some(master) = masters.get(index) else {
                // Past the last master (the cluster shrank meanwhile): done.
                return Ok(scan_reply("0", keys));
            };
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(node_cursor.as_str());
            for o in options {
                cmd.arg(o.as_slice());
            }
            let reply = self.on(master, &cmd).context("SCAN failed")?;
            let (next, page): (String, Vec<Vec<u8>>) = redis::from_redis_value(reply)
                .map_err(|e| anyhow!("{master}: unexpected SCAN reply: {e}"))?;
            keys.extend(page.into_iter().map(Value::BulkString));
            if next == "0" {
                index += 1;
                if index == masters.len() {
                    return Ok(scan_reply("0", keys));
                }
            }
            node_cursor = next;
            if !keys.is_empty() {
                break;
            }
        }
        Ok(scan_reply(&format!("{index}:{node_cursor}"), keys))
    }
}

/// SCAN round trips one call may make while pages come back empty.
const SCAN_ROUNDS_PER_CALL: usize = 16;

/// Reads a cluster SCAN cursor: `0`, or `master:cursor` as a reply gave it.
fn parse_scan_cursor(cursor: &str) -> Result<(usize, String)> {
    if cursor == "0" {
        return Ok((0, "0".into()));
    }
    let parsed = cursor.split_once(':').and_then(|(i, c)| {
        let index = i.parse::<usize>().ok()?;
        c.parse::<u64>().ok()?;
        Some((index, c.to_string()))
    });
    parsed.ok_or_else(|| {
        anyhow!("SCAN cursor {cursor:?} is not one a cluster SCAN returned: start at 0 and pass back each reply's cursor (it looks like 2:1536)")
    })
}

fn scan_reply(cursor: &str, keys: Vec<Value>) -> Value {
    Value::Array(vec![
        Value::BulkString(cursor.as_bytes().to_vec()),
        Value::Array(keys),
    ])
}

/// In a dry run only commands that read go through a cluster handle: the error for
/// one that may write (the same for `exec`, scripts and the shell).
pub fn refuse_writes(args: &[Vec<u8>]) -> Result<()> {
    if crate::commands::is_read_only(args) {
        return Ok(());
    }
    bail!(
        "dry run: {} was not sent (it may write; a dry run sends only commands that read)",
        command_name(args)
    )
}

fn split_error(name: &str, slot: u16, e: &redis::RedisError) -> anyhow::Error {
    let text = e.to_string();
    if e.code() == Some("TRYAGAIN") || refusal(&text) == Refusal::TryAgain {
        anyhow!(
            "{name} failed for slot {slot}: {text} (the slot is being migrated and these keys are on both sides; retry once the migration ends, or finish it with `fix`)"
        )
    } else {
        anyhow!("{name} failed for slot {slot}: {text}")
    }
}

fn usable(n: &Node) -> bool {
    !(n.is_failed() || n.no_addr() || n.in_handshake())
}

fn cluster_nodes_cmd() -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("NODES");
    cmd
}

fn to_cmd(args: &[Vec<u8>]) -> redis::Cmd {
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(a.as_slice());
    }
    cmd
}

fn command_name(args: &[Vec<u8>]) -> String {
    args.first()
        .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_cursors_are_zero_or_master_and_cursor() {
        assert_eq!(parse_scan_cursor("0").unwrap(), (0, "0".to_string()));
        assert_eq!(
            parse_scan_cursor("2:1536").unwrap(),
            (2, "1536".to_string())
        );
        for bad in ["17", "a:1", "1:x", "", "1:"] {
            let e = parse_scan_cursor(bad).unwrap_err().to_string();
            assert!(e.contains("not one a cluster SCAN returned"), "{bad}: {e}");
        }
    }
}
