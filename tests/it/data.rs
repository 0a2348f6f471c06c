//! `import` (a standalone Redis into the cluster) and `backup` (RDBs + manifest),
//! round trips with every key checked: backup, then restore by loading each RDB into
//! a standalone redis-server and importing it into a fresh cluster.

use crate::support::*;
use redis_trib::addr::Addr;
use sha2::{Digest, Sha256};

/// Writes `n` string keys (some with a TTL), a hash and a list into database 0 of
/// the standalone node, and two keys into database 1; returns the string keys.
fn fill_standalone(s: &TestLab, n: usize) -> Vec<(String, String)> {
    let mut conn = redis::Client::open(format!("redis://{}/", s.at(0)))
        .unwrap()
        .get_connection()
        .unwrap();
    let kv: Vec<(String, String)> = (0..n)
        .map(|i| (format!("imp:{i}"), format!("value-{i}")))
        .collect();
    let mut pipe = redis::pipe();
    for (i, (k, v)) in kv.iter().enumerate() {
        if i % 100 == 0 {
            pipe.cmd("SET").arg(k).arg(v).arg("EX").arg(3600).ignore();
        } else {
            pipe.cmd("SET").arg(k).arg(v).ignore();
        }
    }
    pipe.cmd("HSET").arg("h").arg("f").arg("1").ignore();
    pipe.cmd("RPUSH").arg("l").arg("a").arg("b").ignore();
    pipe.cmd("SELECT").arg(1).ignore();
    pipe.cmd("SET").arg("db1:a").arg("1").ignore();
    pipe.cmd("SET").arg("db1:b").arg("2").ignore();
    let _: () = pipe.query(&mut conn).unwrap();
    kv
}

fn dbsize(lab: &TestLab, i: usize) -> i64 {
    redis::from_redis_value(lab.cmd(i, &["DBSIZE"]).unwrap()).unwrap()
}

#[test]
fn import_copies_then_moves_a_standalone_redis_and_refuses_bad_sources() {
    let lab = lab(4);
    let entry = lab.cluster(3);
    let source = standalone(None);
    let kv = fill_standalone(&source, 3000);
    let from = source.at(0);

    // Refused before anything moves: a node of this cluster, a cluster-enabled node,
    // an unreachable one; a dry run plans only.
    lab.run(&["import", &entry.to_string(), "--from", &lab.at(1)])
        .fails_with("is a node of this cluster");
    lab.run(&["import", &entry.to_string(), "--from", &lab.at(3)])
        .fails_with("is a cluster node (cluster_enabled:1)");
    lab.run(&["import", &entry.to_string(), "--from", "127.0.0.1:1"])
        .fails_with("cannot connect to 127.0.0.1:1");
    let plan = lab.run(&["import", &entry.to_string(), "--from", &from, "--dry-run"]);
    assert!(plan.ok().contains("move its 3002 keys"), "{}", plan.stdout);
    assert_eq!(lab.total_keys(0), 0);
    assert_eq!(dbsize(&source, 0), 3002);

    // --copy: every key in the cluster, the source untouched.
    let run = lab.run(&["import", &entry.to_string(), "--from", &from, "--copy"]);
    run.ok();
    assert!(
        run.stderr.contains("holds 2 keys in database 1"),
        "{}",
        run.stderr
    );
    lab.assert_keys(0, &kv);
    assert_eq!(lab.total_keys(0), 3002);
    assert_eq!(dbsize(&source, 0), 3002);

    // A move onto existing keys stops at the first one, naming it; nothing is lost.
    lab.run(&["import", &entry.to_string(), "--from", &from])
        .fails_with("already exists in the cluster");
    lab.assert_keys(0, &kv);

    // --replace moves everything: the source's database 0 is empty, TTLs survive,
    // database 1 stays where it was.
    let run = lab.run(&[
        "import",
        &entry.to_string(),
        "--from",
        &from,
        "--replace",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(doc["keys"], 3002);
    assert_eq!(dbsize(&source, 0), 0);
    lab.assert_keys(0, &kv);
    assert_eq!(lab.total_keys(0), 3002);
    let ttl: i64 = redis::from_redis_value(
        redis_trib::keyspace::ClusterClient::open(&entry, &lab.conn_opts())
            .unwrap()
            .execute(&[b"TTL".to_vec(), b"imp:100".to_vec()])
            .unwrap()
            .into_value(),
    )
    .unwrap();
    assert!((3000..=3600).contains(&ttl), "TTL kept: {ttl}");
    let keyspace = text(source.cmd(0, &["INFO", "keyspace"]).unwrap());
    assert!(
        keyspace.contains("db1:keys=2"),
        "database 1 stays on the source: {keyspace}"
    );
    lab.assert_redis_cli_check(0);
}

#[test]
fn backup_then_restore_through_import_keeps_every_key() {
    let lab = lab(6);
    let entry = lab.cluster(3);
    let kv = lab.write_keys(0, "bk", 5000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");

    // A dry run writes nothing.
    lab.run(&[
        "backup",
        &entry.to_string(),
        out.to_str().unwrap(),
        "--dry-run",
    ])
    .ok();
    assert!(!out.exists());

    let run = lab.run(&[
        "backup",
        &entry.to_string(),
        out.to_str().unwrap(),
        "--json",
    ]);
    let manifest: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(manifest["format"], "redis-trib-backup/1");
    let masters = manifest["masters"].as_array().unwrap();
    assert_eq!(masters.len(), 3);
    assert_eq!(
        masters
            .iter()
            .map(|m| m["keys"].as_u64().unwrap())
            .sum::<u64>(),
        5000
    );
    assert_eq!(
        masters
            .iter()
            .map(|m| m["slot_count"].as_u64().unwrap())
            .sum::<u64>(),
        16384
    );
    assert_eq!(manifest["nodes"].as_array().unwrap().len(), 3);
    for n in manifest["nodes"].as_array().unwrap() {
        let text = std::fs::read_to_string(out.join(n["nodes_file"].as_str().unwrap())).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("myself"));
    }
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(on_disk, manifest);
    for m in masters {
        let bytes = std::fs::read(out.join(m["rdb"].as_str().unwrap())).unwrap();
        assert!(bytes.starts_with(b"REDIS"), "an RDB file");
        assert_eq!(bytes.len() as u64, m["bytes"].as_u64().unwrap());
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sha, m["sha256"].as_str().unwrap());
    }
    lab.run(&["backup", &entry.to_string(), out.to_str().unwrap()])
        .fails_with("is not empty");

    // Restore: each RDB into a standalone server, imported into a fresh cluster
    // (the first through the script function, the others through the command).
    let fresh: Vec<Addr> = (3..6).map(|i| lab.addr(i)).collect();
    redis_trib::ops::start_multi(&mut lab.backend(), &fresh, 16384).unwrap();
    let target = lab.at(3);
    let mut restored = 0;
    for (i, m) in masters.iter().enumerate() {
        let server = standalone(Some(&out.join(m["rdb"].as_str().unwrap())));
        assert_eq!(dbsize(&server, 0) as u64, m["keys"].as_u64().unwrap());
        if i == 0 {
            let script = dir.path().join("restore.rhai");
            std::fs::write(
                &script,
                "print(import_keys(ARGS[0], ARGS[1], #{ copy: true }));",
            )
            .unwrap();
            let out = lab.run(&["run", script.to_str().unwrap(), &target, &server.at(0)]);
            assert_eq!(out.ok().trim(), m["keys"].to_string());
        } else {
            lab.run(&["import", &target, "--from", &server.at(0)]).ok();
        }
        restored += m["keys"].as_u64().unwrap();
    }
    assert_eq!(restored, 5000);
    lab.assert_keys(3, &kv);
    assert_eq!(lab.total_keys(3), 5000);
    lab.assert_redis_cli_check(3);
}
