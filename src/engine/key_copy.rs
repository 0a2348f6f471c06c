//! Importing a standalone Redis into a cluster: the source's database 0 is walked
//! with `SCAN`, and each batch of keys goes straight from the source to the masters
//! that own their slots with `MIGRATE ... KEYS` (one per destination, pipelined on
//! the source connection). Keys are moved (deleted from the source once the
//! destination has them) or, with `copy`, copied. Memory stays flat: one batch at a
//! time.

use crate::addr::Addr;
use crate::conn::reply::{refusal, Refusal};
use crate::conn::{parse_info, server_error, ConnOpts, NodeConn};
use crate::engine::keys::{migrate_cmd, single, MigrateFlags};
use crate::interrupt;
use crate::slots::slot_of;
use anyhow::{anyhow, bail, Result};
use redis::Value;
use std::collections::BTreeMap;

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOpts {
    /// Keep the keys on the source (`MIGRATE ... COPY`).
    pub copy: bool,
    /// Overwrite keys that already exist in the cluster (`MIGRATE ... REPLACE`).
    pub replace: bool,
    /// How to reach the source (its own password and user, if any).
    pub source: ConnOpts,
    /// Keys per `SCAN` (and at most per `MIGRATE`).
    pub batch: usize,
    /// Milliseconds one `MIGRATE` may take.
    pub migrate_timeout_ms: u64,
}

impl ImportOpts {
    /// Moving import with default batches, reaching the source with `source`.
    pub fn new(source: ConnOpts) -> ImportOpts {
        ImportOpts {
            copy: false,
            replace: false,
            source,
            batch: 1000,
            migrate_timeout_ms: 10_000,
        }
    }
}

/// What an import source holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// Keys in database 0 (the ones imported).
    pub keys: u64,
    /// Other databases with keys: (index, keys). A cluster has only database 0.
    pub other_dbs: Vec<(u32, u64)>,
    /// Whether the source is itself a cluster node.
    pub cluster_enabled: bool,
}

/// Reads what `source` holds (`INFO keyspace`, `INFO cluster`).
pub fn inspect(source: &Addr, opts: &ConnOpts) -> Result<SourceInfo> {
    let mut conn = NodeConn::open(source, opts)?;
    let info: String = conn.query(&redis::cmd("INFO").arg("everything").to_owned())?;
    Ok(parse_source_info(&info))
}

/// Reads `INFO` text: keys per database and `cluster_enabled`.
pub fn parse_source_info(info: &str) -> SourceInfo {
    let fields = parse_info(info);
    let mut keys = 0;
    let mut other_dbs = Vec::new();
    for (name, value) in &fields {
        let Some(index) = name.strip_prefix("db").and_then(|i| i.parse::<u32>().ok()) else {
            continue;
        };
        let count = value
            .split(',')
            .find_map(|kv| kv.strip_prefix("keys="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if index == 0 {
            keys = count;
        } else if count > 0 {
            other_dbs.push((index, count));
        }
    }
    other_dbs.sort();
    SourceInfo {
        keys,
        other_dbs,
        cluster_enabled: fields.get("cluster_enabled").is_some_and(|v| v == "1"),
    }
}

/// Imports every key of database 0 of `source` into the masters `owners` names per
/// slot (16384 entries). `target` holds the cluster's credentials (for `MIGRATE
/// AUTH`). `progress` hears the running count. Returns how many keys went over.
pub fn run(
    source: &Addr,
    owners: &[Addr],
    opts: &ImportOpts,
    target: &ConnOpts,
    progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    if owners.len() != crate::slots::SLOT_COUNT as usize {
        bail!(
            "import: a slot map of {} entries (16384 expected)",
            owners.len()
        );
    }
    let mut conn = NodeConn::open(source, &opts.source)?;
    let flags = MigrateFlags {
        timeout_ms: opts.migrate_timeout_ms,
        copy: opts.copy,
        replace: opts.replace,
    };
    let mut cursor = b"0".to_vec();
    let mut done = 0u64;
    loop {
        if interrupt::requested() {
            return Err(crate::error::error(crate::error::Kind::Interrupted(format!(
                "interrupted (Ctrl-C) after {done} keys; the rest are still on {source}, run the import again to finish"
            ))));
        }
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor.as_slice())
            .arg("COUNT")
            .arg(opts.batch.max(1));
        let (next, keys): (Vec<u8>, Vec<Vec<u8>>) = conn.query(&scan)?;
        let mut by_owner: BTreeMap<&Addr, Vec<Vec<u8>>> = BTreeMap::new();
        for k in keys {
            by_owner
                .entry(&owners[slot_of(&k) as usize])
                .or_default()
                .push(k);
        }
        let mut pipe = redis::pipe();
        let mut batches = Vec::new();
        for (dst, keys) in &by_owner {
            for chunk in keys.chunks(opts.batch.max(1)) {
                pipe.add_command(migrate_cmd(dst, chunk, &flags, target));
                batches.push((*dst, chunk));
            }
        }
        let replies = conn.pipeline(&pipe)?;
        for ((dst, keys), reply) in batches.into_iter().zip(replies) {
            match &reply {
                // NOKEY: every key of the batch expired or went away since the SCAN.
                Value::Okay | Value::SimpleString(_) => done += keys.len() as u64,
                Value::ServerError(_) => {
                    let err = server_error(&reply).unwrap_or_default();
                    return Err(import_error(
                        &mut conn, dst, keys, &err, &flags, target, done,
                    ));
                }
                other => bail!("{source}: unexpected MIGRATE reply {other:?}"),
            }
        }
        progress(done);
        if next == b"0" {
            return Ok(done);
        }
        cursor = next;
    }
}

/// Names the key a `BUSYKEY` is about (moving the batch's keys one at a time: those
/// that can go, do), or reports the failed `MIGRATE`.
fn import_error(
    conn: &mut NodeConn,
    dst: &Addr,
    keys: &[Vec<u8>],
    err: &str,
    flags: &MigrateFlags,
    target: &ConnOpts,
    done: u64,
) -> anyhow::Error {
    let source = conn.addr().clone();
    let stopped = format!("{done} keys were imported before; the rest are still on {source}");
    if refusal(err) == Refusal::BusyKey {
        for key in keys {
            let one = single(migrate_cmd(dst, std::slice::from_ref(key), flags, target));
            let busy = conn
                .pipeline(&one)
                .ok()
                .and_then(|r| r.first().and_then(server_error))
                .is_some_and(|e| refusal(&e) == Refusal::BusyKey);
            if busy {
                return anyhow!(
                    "key '{}' already exists in the cluster (on {dst}); use --replace to overwrite it ({stopped})",
                    String::from_utf8_lossy(key)
                );
            }
        }
    }
    anyhow!(
        "MIGRATE of {} keys (first '{}') from {source} to {dst} failed: {err} ({stopped})",
        keys.len(),
        String::from_utf8_lossy(&keys[0])
    )
    .context("import stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_per_database_and_cluster_mode() {
        let info = "# Cluster\r\ncluster_enabled:0\r\n# Keyspace\r\ndb0:keys=120,expires=3,avg_ttl=0\r\ndb3:keys=7,expires=0,avg_ttl=0\r\n";
        assert_eq!(
            parse_source_info(info),
            SourceInfo {
                keys: 120,
                other_dbs: vec![(3, 7)],
                cluster_enabled: false
            }
        );
        let empty = parse_source_info("# Cluster\r\ncluster_enabled:1\r\n# Keyspace\r\n");
        assert_eq!(empty.keys, 0);
        assert!(empty.cluster_enabled);
    }
}
