//! Where a command sent through a cluster handle goes: to one slot's owner, split by
//! slot, to every node or master, or nowhere (refused, with the reason). Pure: no
//! network, so every rule has a unit test.

use crate::slots::slot_of;
use std::collections::BTreeMap;

/// How a command is carried out through a cluster handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the owner of its key's slot (or any node when it has no key), following
    /// MOVED and ASK, retrying TRYAGAIN and CLUSTERDOWN.
    Routed,
    /// A multi-key command split into one command per slot; the replies merged.
    Split(Merge),
    /// Every reachable node answers: a map of node address → reply.
    AllNodes,
    /// Every master answers: a map of master address → reply.
    AllMasters,
    /// Every master runs it and must give the same reply (`SCRIPT LOAD`): that reply.
    MastersAgree,
    /// `SCAN cursor ...` over every master in turn, with a cluster cursor.
    Scan,
    /// Answered without the network (`SELECT 0`: the only database a cluster has).
    Ok,
    /// Refused: the reason.
    Refused(String),
}

/// How the per-slot replies of a split command become one reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// `MGET`: values in the caller's key order.
    Values,
    /// `MSET`: `OK` when every part said `OK`.
    AllOk,
    /// `DEL`, `EXISTS`, `UNLINK`, `TOUCH`: the sum of the counts.
    Sum,
}

/// One per-slot part of a split command: the command to send and, for each of its
/// keys, the key's position in the caller's command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The slot every key of this part hashes to.
    pub slot: u16,
    /// The command for this slot (name first).
    pub args: Vec<Vec<u8>>,
    /// For each key of the part, its index among the caller's keys.
    pub positions: Vec<usize>,
}

fn upper(arg: Option<&Vec<u8>>) -> String {
    arg.map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
        .unwrap_or_default()
}

/// Decides where `args` (command name first) goes.
pub fn route(args: &[Vec<u8>]) -> Route {
    let cmd = upper(args.first());
    let sub = upper(args.get(1));
    let refuse =
        |why: &str| Route::Refused(format!("{cmd} is refused through a cluster handle: {why}"));
    let one_node = "run it on one node with execute(addr, ...) (or `redis-trib call`)";
    match cmd.as_str() {
        "" => Route::Refused("empty command".into()),
        "MGET" => Route::Split(Merge::Values),
        "MSET" => Route::Split(Merge::AllOk),
        "DEL" | "EXISTS" | "UNLINK" | "TOUCH" => Route::Split(Merge::Sum),
        "MSETNX" => match same_slot(&pair_keys(args)) {
            true => Route::Routed,
            false => refuse("its keys hash to different slots, and setting none-or-all across slots cannot be atomic (put them under one {hash tag})"),
        },
        "SCAN" => Route::Scan,
        "INFO" | "PING" | "CONFIG" | "SLOWLOG" | "LATENCY" | "LASTSAVE" | "SAVE" | "BGSAVE"
        | "BGREWRITEAOF" | "ROLE" | "TIME" | "ACL" => Route::AllNodes,
        "CLIENT" if matches!(sub.as_str(), "LIST" | "KILL" | "NO-EVICT") => Route::AllNodes,
        "MEMORY" if sub != "USAGE" => Route::AllNodes,
        "DBSIZE" | "KEYS" | "FLUSHALL" | "FLUSHDB" => Route::AllMasters,
        "SCRIPT" | "FUNCTION" => match sub.as_str() {
            "LOAD" => Route::MastersAgree,
            "FLUSH" | "KILL" | "DELETE" | "RESTORE" => Route::AllMasters,
            "EXISTS" | "LIST" | "STATS" | "DUMP" => Route::AllMasters,
            _ => Route::Routed,
        },
        "SELECT" => match args.get(1).map(|a| a.as_slice()) {
            Some(b"0") => Route::Ok,
            _ => refuse("Redis Cluster has only database 0"),
        },
        "MOVE" | "SWAPDB" => refuse("Redis Cluster has only database 0"),
        "COPY" if has_db_option(args) => refuse("Redis Cluster has only database 0"),
        "SHUTDOWN" => refuse(&format!(
            "it would stop nodes; use `redis-trib shutdown`, or {one_node}"
        )),
        "REPLICAOF" | "SLAVEOF" => {
            refuse("cluster replicas are attached with `replicate` (CLUSTER REPLICATE), not REPLICAOF")
        }
        "FAILOVER" => refuse(&format!("it is a standalone-mode failover; {one_node}")),
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => refuse(&format!(
            "a transaction needs one connection to one node; {one_node}"
        )),
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
        | "SUNSUBSCRIBE" | "MONITOR" | "SYNC" | "PSYNC" => {
            refuse("it streams replies without end; use redis-cli for it")
        }
        "DEBUG" => refuse(&format!("it can stall or crash a node; {one_node}")),
        "MIGRATE" | "RESTORE-ASKING" | "ASKING" | "READONLY" | "READWRITE" => {
            refuse("the handle manages slot redirections itself; move slots with migrate_slots")
        }
        "AUTH" | "HELLO" | "RESET" | "QUIT" => {
            refuse("the handle's connections are set up from --password / --user")
        }
        "CLUSTER" => match sub.as_str() {
            "INFO" | "NODES" | "MYID" | "MYSHARDID" | "COUNT-FAILURE-REPORTS" => Route::AllNodes,
            "SLOTS" | "SHARDS" | "KEYSLOT" | "COUNTKEYSINSLOT" | "GETKEYSINSLOT" | "REPLICAS"
            | "SLAVES" | "LINKS" => Route::Routed,
            _ => refuse(&format!(
                "CLUSTER {sub} changes one node's view of the cluster; use the redis-trib operations (migrate_slots, join_cluster, fix_migrating, ...) or {one_node}"
            )),
        },
        _ => Route::Routed,
    }
}

fn has_db_option(args: &[Vec<u8>]) -> bool {
    args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"DB"))
}

fn pair_keys(args: &[Vec<u8>]) -> Vec<&[u8]> {
    args.iter()
        .skip(1)
        .step_by(2)
        .map(|a| a.as_slice())
        .collect()
}

fn same_slot(keys: &[&[u8]]) -> bool {
    keys.windows(2).all(|w| slot_of(w[0]) == slot_of(w[1]))
}

/// Splits a multi-key command into one command per slot, slots in the order their
/// first key appears. `MSET` takes key-value pairs; the others take keys only.
pub fn split(args: &[Vec<u8>]) -> Result<Vec<Part>, String> {
    let cmd = upper(args.first());
    let step = if cmd == "MSET" { 2 } else { 1 };
    let items = &args[1..];
    if items.is_empty() || !items.len().is_multiple_of(step) {
        return Err(format!(
            "wrong number of arguments for '{}' command",
            cmd.to_ascii_lowercase()
        ));
    }
    let mut order: Vec<u16> = Vec::new();
    let mut parts: BTreeMap<u16, Part> = BTreeMap::new();
    for (i, chunk) in items.chunks(step).enumerate() {
        let slot = slot_of(&chunk[0]);
        let part = parts.entry(slot).or_insert_with(|| {
            order.push(slot);
            Part {
                slot,
                args: vec![args[0].clone()],
                positions: Vec::new(),
            }
        });
        part.args.extend(chunk.iter().cloned());
        part.positions.push(i);
    }
    Ok(order
        .into_iter()
        .map(|s| parts.remove(&s).expect("a part per slot"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Vec<u8>> {
        line.split_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn commands_are_routed_by_kind() {
        let cases = [
            ("GET foo", Route::Routed),
            ("set foo bar", Route::Routed),
            ("EVAL x 1 k", Route::Routed),
            ("MGET a b", Route::Split(Merge::Values)),
            ("mset a 1 b 2", Route::Split(Merge::AllOk)),
            ("DEL a b", Route::Split(Merge::Sum)),
            ("EXISTS a", Route::Split(Merge::Sum)),
            ("UNLINK a", Route::Split(Merge::Sum)),
            ("INFO memory", Route::AllNodes),
            ("PING", Route::AllNodes),
            ("CONFIG GET maxmemory", Route::AllNodes),
            ("CLIENT LIST", Route::AllNodes),
            ("SLOWLOG GET", Route::AllNodes),
            ("CLUSTER INFO", Route::AllNodes),
            ("DBSIZE", Route::AllMasters),
            ("KEYS *", Route::AllMasters),
            ("FLUSHALL", Route::AllMasters),
            ("FLUSHDB", Route::AllMasters),
            ("SCRIPT LOAD x", Route::MastersAgree),
            ("SCAN 0", Route::Scan),
            ("MEMORY USAGE k", Route::Routed),
            ("CLUSTER COUNTKEYSINSLOT 5", Route::Routed),
            ("SELECT 0", Route::Ok),
            ("COPY a b", Route::Routed),
        ];
        for (line, want) in cases {
            assert_eq!(route(&args(line)), want, "{line}");
        }
    }

    #[test]
    fn dangerous_or_meaningless_commands_are_refused_with_a_reason() {
        let cases = [
            ("SHUTDOWN", "stop nodes"),
            ("shutdown nosave", "stop nodes"),
            ("REPLICAOF 127.0.0.1 7000", "CLUSTER REPLICATE"),
            ("SLAVEOF no one", "CLUSTER REPLICATE"),
            ("MOVE k 1", "only database 0"),
            ("SELECT 1", "only database 0"),
            ("SWAPDB 0 1", "only database 0"),
            ("COPY a b DB 1", "only database 0"),
            ("MULTI", "transaction"),
            ("SUBSCRIBE ch", "without end"),
            ("MONITOR", "without end"),
            ("CLUSTER SETSLOT 5 STABLE", "CLUSTER SETSLOT changes"),
            ("CLUSTER RESET", "CLUSTER RESET changes"),
            ("DEBUG SLEEP 1", "stall"),
            ("MIGRATE h 1 k 0 10", "migrate_slots"),
            ("AUTH x", "--password"),
        ];
        for (line, why) in cases {
            match route(&args(line)) {
                Route::Refused(reason) => assert!(reason.contains(why), "{line}: {reason}"),
                other => panic!("{line} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn msetnx_is_routed_only_within_one_slot() {
        assert_eq!(route(&args("MSETNX {u}a 1 {u}b 2")), Route::Routed);
        assert!(
            matches!(route(&args("MSETNX a 1 b 2")), Route::Refused(r) if r.contains("hash tag"))
        );
    }

    #[test]
    fn multi_key_commands_split_by_slot_keeping_positions() {
        // a and c hash to different slots; {a}x shares a's slot.
        let parts = split(&args("MGET a c {a}x")).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].slot, slot_of(b"a"));
        assert_eq!(parts[0].args, args("MGET a {a}x"));
        assert_eq!(parts[0].positions, vec![0, 2]);
        assert_eq!(parts[1].args, args("MGET c"));
        assert_eq!(parts[1].positions, vec![1]);

        let parts = split(&args("MSET a 1 c 2 {a}x 3")).unwrap();
        assert_eq!(parts[0].args, args("MSET a 1 {a}x 3"));
        assert_eq!(parts[1].args, args("MSET c 2"));
        assert_eq!(parts[1].positions, vec![1]);

        assert!(split(&args("MSET a 1 c"))
            .unwrap_err()
            .contains("wrong number"));
        assert!(split(&args("MGET")).unwrap_err().contains("wrong number"));
    }
}
