//! The cluster as one keyspace: `ClusterClient`, `cluster(addr)` in scripts,
//! `redis-trib exec` and the shell's `>` lines, on real clusters (including the ASK
//! path of a slot caught half-way through a migration).

use crate::support::*;
use redis::Value;
use redis_trib::keyspace::{ClusterClient, Reply};
use redis_trib::slots::slot_of;

fn args(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

fn one(reply: Reply) -> Value {
    match reply {
        Reply::One(v) => v,
        other => panic!("expected one reply, got {other:?}"),
    }
}

fn per_node(reply: Reply) -> Vec<(String, Value)> {
    match reply {
        Reply::PerNode(p) => p
            .into_iter()
            .map(|(a, r)| (a.clone(), r.unwrap_or_else(|e| panic!("{a} failed: {e}"))))
            .collect(),
        other => panic!("expected a reply per node, got {other:?}"),
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn key_commands_reach_every_slot_and_fan_out_answers_per_node() {
    let lab = lab(3);
    let entry = lab.cluster(3);
    let mut c = ClusterClient::open(&entry, &lab.conn_opts()).unwrap();

    // One key in every slot, written with MSET split by slot, read back with MGET in
    // the caller's order.
    let keys: Vec<String> = (0..16384u16)
        .map(|s| format!("{{{}}}k", tag_for_slot_fast(s)))
        .collect();
    let mut mset = vec!["MSET".to_string()];
    for (i, k) in keys.iter().enumerate() {
        mset.push(k.clone());
        mset.push(format!("v{i}"));
    }
    let mset: Vec<Vec<u8>> = mset.into_iter().map(String::into_bytes).collect();
    assert_eq!(one(c.execute(&mset).unwrap()), Value::Okay);
    for i in 0..3 {
        let owned = lab.slots_of(i).len() as i64;
        let keys: i64 = redis::from_redis_value(lab.cmd(i, &["DBSIZE"]).unwrap()).unwrap();
        assert_eq!(keys, owned, "node {i} holds one key per slot it owns");
    }
    let mut mget = vec!["MGET".as_bytes().to_vec()];
    mget.extend(keys.iter().rev().map(|k| k.as_bytes().to_vec()));
    mget.push(b"missing".to_vec());
    let Value::Array(values) = one(c.execute(&mget).unwrap()) else {
        panic!("MGET gives an array")
    };
    assert_eq!(values.len(), 16385);
    for (j, v) in values[..16384].iter().enumerate() {
        assert_eq!(*v, bulk(&format!("v{}", 16383 - j)), "MGET position {j}");
    }
    assert_eq!(values[16384], Value::Nil);

    // Routed single-key commands, on keys of every node.
    for (i, k) in keys.iter().enumerate().step_by(997) {
        let len = one(c.execute(&args(&["APPEND", k, "!"])).unwrap());
        assert_eq!(len, Value::Int(format!("v{i}!").len() as i64), "{k}");
        let got = one(c.execute(&args(&["GET", k])).unwrap());
        assert_eq!(got, bulk(&format!("v{i}!")));
    }

    // Fan-out: DBSIZE per master (summing to every key), PING and INFO per node.
    let sizes = per_node(c.execute(&args(&["DBSIZE"])).unwrap());
    assert_eq!(sizes.len(), 3);
    let total: i64 = sizes
        .iter()
        .map(|(_, v)| redis::from_redis_value::<i64>(v.clone()).unwrap())
        .sum();
    assert_eq!(total, 16384);
    let mut addrs: Vec<String> = sizes.iter().map(|(a, _)| a.clone()).collect();
    addrs.sort();
    let mut want: Vec<String> = (0..3).map(|i| lab.at(i)).collect();
    want.sort();
    assert_eq!(addrs, want);
    let pings = per_node(c.execute(&args(&["PING"])).unwrap());
    assert!(
        pings
            .iter()
            .all(|(_, v)| *v == Value::SimpleString("PONG".into())),
        "{pings:?}"
    );
    let info = per_node(c.execute(&args(&["INFO", "server"])).unwrap());
    for (addr, v) in &info {
        let text: String = redis::from_redis_value(v.clone()).unwrap();
        let port = addr.rsplit(':').next().unwrap();
        assert!(text.contains(&format!("tcp_port:{port}")), "{addr}: {text}");
    }
    let cfg = per_node(
        c.execute(&args(&["CONFIG", "GET", "cluster-node-timeout"]))
            .unwrap(),
    );
    assert_eq!(cfg.len(), 3);

    // One node's failure is its own entry: the others still answer. Here node 2's
    // default user may not run INFO; exec prints every reply, then fails naming why.
    lab.cmd(2, &["ACL", "SETUSER", "default", "-info"]).unwrap();
    let Reply::PerNode(mixed) = c.execute(&args(&["INFO", "server"])).unwrap() else {
        panic!("INFO answers per node")
    };
    let failed: Vec<&String> = mixed
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(a, _)| a)
        .collect();
    assert_eq!(failed, vec![&lab.at(2)], "{mixed:?}");
    assert!(format!("{mixed:?}").contains("no permissions"), "{mixed:?}");
    let out = lab.run(&["exec", &lab.at(0), "INFO", "server"]);
    out.fails_with("1 node(s) answered with an error");
    assert_eq!(
        out.stdout.matches("redis_version:").count(),
        2,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("{}: (error) ", lab.at(2))),
        "{}",
        out.stdout
    );
    lab.cmd(2, &["ACL", "SETUSER", "default", "+info"]).unwrap();

    // Counting multi-key commands add up across slots; SCAN walks every master.
    let some: Vec<&str> = keys.iter().step_by(1000).map(String::as_str).collect();
    let mut exists = vec!["EXISTS"];
    exists.extend(&some);
    exists.push("missing");
    assert_eq!(
        one(c.execute(&args(&exists)).unwrap()),
        Value::Int(some.len() as i64)
    );
    // SCAN pages through every master with a cluster cursor, as redis-cli --scan loops.
    let mut cursor = "0".to_string();
    let mut found = std::collections::HashSet::new();
    let mut calls = 0;
    loop {
        let reply = one(c
            .execute(&args(&["SCAN", &cursor, "COUNT", "1000"]))
            .unwrap());
        let (next, page): (String, Vec<String>) = redis::from_redis_value(reply).unwrap();
        assert!(
            page.len() < 16384,
            "a page holds one master's page, not everything"
        );
        found.extend(page);
        calls += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert_eq!(found.len(), 16384);
    assert!(calls > 3, "{calls} calls");
    let bad = c.execute(&args(&["SCAN", "17"])).unwrap_err().to_string();
    assert!(bad.contains("not one a cluster SCAN returned"), "{bad}");
    let mut del = vec!["DEL"];
    del.extend(&some);
    assert_eq!(
        one(c.execute(&args(&del)).unwrap()),
        Value::Int(some.len() as i64)
    );
    assert_eq!(lab.total_keys(0), 16384 - some.len() as i64);

    // SCRIPT LOAD reaches every master (EVALSHA works on any slot).
    let sha = one(c
        .execute(&args(&[
            "SCRIPT",
            "LOAD",
            "return redis.call('GET', KEYS[1])",
        ]))
        .unwrap());
    let sha: String = redis::from_redis_value(sha).unwrap();
    for k in keys.iter().skip(1).step_by(4001) {
        let v = one(c.execute(&args(&["EVALSHA", &sha, "1", k])).unwrap());
        assert!(matches!(v, Value::BulkString(_)), "{k}: {v:?}");
    }

    // Refused commands say why and change nothing.
    for (cmd, why) in [
        (vec!["SHUTDOWN", "NOSAVE"], "stop nodes"),
        (vec!["REPLICAOF", "127.0.0.1", "1"], "CLUSTER REPLICATE"),
        (vec!["SELECT", "1"], "only database 0"),
        (vec!["MOVE", keys[1].as_str(), "1"], "only database 0"),
        (vec!["MULTI"], "transaction"),
    ] {
        let e = c.execute(&args(&cmd)).unwrap_err().to_string();
        assert!(e.contains(why), "{cmd:?}: {e}");
    }
    assert_eq!(
        one(c.execute(&args(&["SELECT", "0"])).unwrap()),
        Value::Okay
    );
    for i in 0..3 {
        assert_eq!(
            text(lab.cmd(i, &["PING"]).unwrap()),
            "PONG",
            "node {i} still runs"
        );
        let replication = text(lab.cmd(i, &["INFO", "replication"]).unwrap());
        assert!(
            replication.contains("role:master"),
            "node {i}: {replication}"
        );
    }
    lab.assert_redis_cli_check(0);
}

/// A hash tag per slot, computed once for all slots (the support helper searches
/// from scratch for each).
fn tag_for_slot_fast(slot: u16) -> String {
    use std::sync::OnceLock;
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); 16384];
        let mut missing = 16384;
        for i in 0.. {
            let t = format!("t{i}");
            let s = slot_of(t.as_bytes()) as usize;
            if tags[s].is_empty() {
                tags[s] = t;
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        tags
    })[slot as usize]
        .clone()
}

#[test]
fn ask_and_moved_are_followed_while_a_slot_is_half_migrated() {
    let lab = lab(2);
    let entry = lab.cluster(2);
    let slot = lab.slots_of(0)[100];
    let tag = tag_for_slot_fast(slot);
    let keys: Vec<String> = (0..20).map(|i| format!("{{{tag}}}:{i}")).collect();
    let mut c = ClusterClient::open(&entry, &lab.conn_opts()).unwrap();
    for k in &keys {
        assert_eq!(
            one(c.execute(&args(&["SET", k, &format!("val-{k}")])).unwrap()),
            Value::Okay
        );
    }
    // Leave the slot half-way: node 1 importing, node 0 migrating, 10 keys moved.
    let s = slot.to_string();
    lab.cmd(1, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &lab.id(0)])
        .unwrap();
    lab.cmd(0, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &lab.id(1)])
        .unwrap();
    let port = lab.addr(1).port.to_string();
    let mut migrate = vec![
        "MIGRATE",
        "127.0.0.1",
        port.as_str(),
        "",
        "0",
        "5000",
        "KEYS",
    ];
    migrate.extend(keys[..10].iter().map(String::as_str));
    lab.cmd(0, &migrate).unwrap();
    let on = |i: usize| -> i64 {
        redis::from_redis_value(lab.cmd(i, &["CLUSTER", "COUNTKEYSINSLOT", &s]).unwrap()).unwrap()
    };
    assert_eq!(
        (on(0), on(1)),
        (10, 10),
        "the slot is split between the two nodes"
    );

    // Every key reads back: the moved ones through ASK to node 1.
    for k in &keys {
        let v = one(c.execute(&args(&["GET", k])).unwrap());
        assert_eq!(v, bulk(&format!("val-{k}")), "{k}");
    }
    // A new key of the slot is created where the slot is going (ASK), not on node 0.
    let fresh = format!("{{{tag}}}:new");
    assert_eq!(
        one(c.execute(&args(&["SET", &fresh, "x"])).unwrap()),
        Value::Okay
    );
    assert_eq!((on(0), on(1)), (10, 11));
    // A multi-key read on one side of the split is served; across the split Redis
    // answers TRYAGAIN, retried a bounded number of times, then reported.
    let moved = one(c
        .execute(&args(&["MGET", &keys[0], &keys[1], &fresh]))
        .unwrap());
    assert_eq!(
        moved,
        Value::Array(vec![
            bulk(&format!("val-{}", keys[0])),
            bulk(&format!("val-{}", keys[1])),
            bulk("x")
        ])
    );
    let stayed = one(c.execute(&args(&["MGET", &keys[10], &keys[19]])).unwrap());
    assert_eq!(
        stayed,
        Value::Array(vec![
            bulk(&format!("val-{}", keys[10])),
            bulk(&format!("val-{}", keys[19]))
        ])
    );
    let across = c
        .execute(&args(&["MGET", &keys[0], &keys[19]]))
        .unwrap_err()
        .to_string();
    assert!(
        across.contains(&format!("MGET failed for slot {slot}")),
        "{across}"
    );
    assert!(
        across.contains("rehashing") && across.contains("finish it with `fix`"),
        "{across}"
    );

    // `fix` finishes the migration; the same handle (its slot map now stale) follows
    // MOVED to the new owner.
    lab.run(&["fix", &lab.at(0)]).ok();
    assert_eq!((on(0), on(1)), (0, 21));
    for k in keys.iter().chain([&fresh]) {
        let v = one(c.execute(&args(&["EXISTS", k])).unwrap());
        assert_eq!(v, Value::Int(1), "{k}");
    }
    let all: Vec<&str> = std::iter::once("MGET")
        .chain(keys.iter().map(String::as_str))
        .collect();
    let Value::Array(values) = one(c.execute(&args(&all)).unwrap()) else {
        panic!("array")
    };
    for (k, v) in keys.iter().zip(values) {
        assert_eq!(v, bulk(&format!("val-{k}")));
    }
    lab.assert_redis_cli_check(0);
}

#[test]
fn exec_scripts_and_the_shell_speak_to_the_whole_cluster() {
    let lab = lab(3);
    lab.cluster(3);
    let node = lab.at(1);

    // exec: routed writes and reads, fan-out as text and JSON, refusals.
    lab.run(&["exec", &node, "SET", "user:1", "ada"]).ok();
    lab.run(&["exec", &node, "MSET", "a", "1", "b", "2", "c", "3"])
        .ok();
    assert_eq!(
        lab.run(&["exec", &node, "GET", "user:1"]).ok().trim(),
        "\"ada\""
    );
    assert_eq!(
        lab.run(&["exec", &node, "MGET", "c", "nope", "a"])
            .ok()
            .trim(),
        "1) \"3\"\n2) (nil)\n3) \"1\""
    );
    let sizes: serde_json::Value =
        serde_json::from_str(lab.run(&["exec", &node, "DBSIZE", "--json"]).ok()).unwrap();
    let sizes = sizes.as_object().unwrap();
    assert_eq!(sizes.len(), 3);
    assert_eq!(sizes.values().map(|v| v.as_i64().unwrap()).sum::<i64>(), 4);
    let pings = lab.run(&["exec", &node, "PING"]).ok().to_string();
    assert_eq!(
        pings.lines().filter(|l| l.ends_with(": PONG")).count(),
        3,
        "{pings}"
    );
    lab.run(&["exec", &node, "SHUTDOWN"])
        .fails_with("SHUTDOWN is refused through a cluster handle");
    lab.run(&["exec", &node, "SELECT", "2"])
        .fails_with("only database 0");
    lab.run(&["exec", &node, "SET", "d", "4", "--dry-run"])
        .fails_with("dry run: SET was not sent");
    lab.run(&["exec", &node, "GET", "user:1", "--dry-run"]).ok();
    lab.run(&["exec", "127.0.0.1:1", "GET", "a"])
        .fails_with("cannot connect to 127.0.0.1:1");
    assert_eq!(
        lab.total_keys(0),
        4,
        "refused and dry-run commands wrote nothing"
    );

    // A script: cluster(addr).execute(...), with the same routing.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("k.rhai");
    std::fs::write(
        &script,
        r#"
let c = cluster(ARGS[0]);
for i in 0..50 { c.execute("SET", `s:${i}`, i * 2); }
let got = c.execute("MGET", "s:7", "s:0", "a", "missing");
print(got);
let per = c.execute("DBSIZE");
let total = 0;
for n in per.keys() { total += per[n]; }
print(total);
print(c.execute("EXISTS", "s:1", "s:2", "missing"));
try { c.execute("FLUSHALL", "ASYNC"); c.execute("REPLICAOF", "no", "one"); } catch (e) { print(e); }
"#,
    )
    .unwrap();
    let out = lab
        .run(&["run", script.to_str().unwrap(), &node])
        .ok()
        .to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], r#"["14", "0", "1", ()]"#, "{out}");
    assert_eq!(lines[1], "54");
    assert_eq!(lines[2], "2");
    assert!(lines[3].contains("REPLICAOF is refused"), "{out}");
    assert_eq!(lab.total_keys(0), 0, "FLUSHALL reached every master");

    // The shell: `>` lines go to the cluster `cluster` names.
    let run = crate::repl::repl(
        &[&node],
        "> SET \"greeting key\" \"hello world\"\n> GET \"greeting key\"\nlet n = 2;\n> DBSIZE\n> SELECT 1\n",
    );
    assert_ne!(run.code, 0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "OK", "{}", run.stdout);
    assert_eq!(lines[1], "\"hello world\"");
    assert_eq!(
        lines[2..]
            .iter()
            .filter(|l| l.contains(": (integer) "))
            .count(),
        3,
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("<stdin>:5: SELECT is refused"),
        "{}",
        run.stderr
    );
}
