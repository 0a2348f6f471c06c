//! Zones: `--zones FILE` and Valkey's `availability-zone`; `create` spreads replicas
//! across zones, `check` reports a master whose only replica shares its zone, and
//! the stdlib's `zones::fix_replicas` re-points replicas so it is clean again.
//! The Valkey test picks Valkey 8.1 from the servers cache (`./dev servers` fetches
//! it; missing, it fails saying so), whatever server the leg runs.

use crate::support::{bin, lab, raw, Run, ServerLab};
use redis_trib::addr::Addr;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// node "host:port" -> (zone, master "host:port" for a replica), from `list --json`.
type Layout = BTreeMap<String, (Option<String>, Option<String>)>;

fn layout(run: &Run) -> Layout {
    let doc: serde_json::Value = serde_json::from_str(run.ok()).expect("list --json is JSON");
    let nodes = doc["nodes"].as_array().expect("nodes");
    let addr_of = |n: &serde_json::Value| {
        format!(
            "{}:{}",
            n["host"].as_str().unwrap_or(""),
            n["port"].as_u64().unwrap_or(0)
        )
    };
    let by_id: BTreeMap<String, String> = nodes
        .iter()
        .map(|n| (n["node_id"].as_str().unwrap_or("").to_string(), addr_of(n)))
        .collect();
    nodes
        .iter()
        .map(|n| {
            let zone = n.get("zone").and_then(|z| z.as_str()).map(String::from);
            let master = n["master_id"].as_str().and_then(|m| by_id.get(m)).cloned();
            (addr_of(n), (zone, master))
        })
        .collect()
}

/// Every replica's zone differs from its master's; every node has a zone; the
/// masters are in as many zones as there are.
fn assert_spread(l: &Layout) {
    let zones: std::collections::BTreeSet<&String> =
        l.values().filter_map(|(z, _)| z.as_ref()).collect();
    let master_zones: std::collections::BTreeSet<&String> = l
        .values()
        .filter(|(_, m)| m.is_none())
        .filter_map(|(z, _)| z.as_ref())
        .collect();
    assert_eq!(
        master_zones, zones,
        "masters not spread over every zone: {l:?}"
    );
    for (node, (zone, master)) in l {
        assert!(zone.is_some(), "{node} has no zone: {l:?}");
        if let Some(m) = master {
            assert_ne!(
                zone, &l[m].0,
                "replica {node} shares its zone with master {m}: {l:?}"
            );
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn create_spreads_check_reports_and_fix_replicas_repairs() {
    let lab = lab(6);
    let dir = tempfile::tempdir().expect("temp dir");
    // Nodes 0-3 by address (zones a a b b); 4 and 5 by their host alone (zone c).
    let zones = write(
        dir.path(),
        "zones.txt",
        &format!(
            "# racks\n{} a\n{} a\n{} b\n{} b\n127.0.0.1 c  # the rest of this host\n",
            lab.at(0),
            lab.at(1),
            lab.at(2),
            lab.at(3)
        ),
    );
    let z = zones.to_str().expect("utf-8 path");
    let nodes: Vec<String> = (0..6).map(|i| lab.at(i)).collect();
    let mut args = vec!["--zones", z, "create", "--replicas", "1"];
    args.extend(nodes.iter().map(String::as_str));
    let out = lab.run(&args);
    out.ok();
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("zones: a, b, c;") && said.contains("replica(s) per master"),
        "{said}"
    );
    let l = layout(&lab.run(&["--zones", z, "list", &nodes[0], "--json"]));
    assert_spread(&l);
    let check = lab.run(&["--zones", z, "check", &nodes[0]]);
    assert!(!check.ok().contains("zone"), "{}", check.stdout);

    // Break it: master A's only replica becomes one of A's own zone. r (zone of A)
    // moves to A, A's replica x moves to r's old master Y (a third zone, so Y
    // stays fine).
    let (a, (za, _)) = l
        .iter()
        .find(|(_, (_, m))| m.is_none())
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("a master");
    let x = l
        .iter()
        .find(|(_, (_, m))| m.as_deref() == Some(a.as_str()))
        .map(|(k, _)| k.clone())
        .expect("A's replica");
    let (r, y) = l
        .iter()
        .find(|(_, (zr, m))| m.is_some() && *zr == za)
        .map(|(k, (_, m))| (k.clone(), m.clone().unwrap_or_default()))
        .expect("a replica in A's zone");
    lab.run(&["move-replica", &r, &a]).ok();
    lab.run(&["move-replica", &x, &y]).ok();
    let za = za.expect("A's zone");
    let check = lab.run(&["--zones", z, "check", &nodes[0]]);
    assert_ne!(
        check.code, 0,
        "a same-zone pair must fail check:\n{}",
        check.stdout
    );
    let report = format!("{}{}", check.stdout, check.stderr);
    assert!(
        report.contains(&format!("are all in zone {za}")) && report.contains(&r),
        "{report}"
    );
    // Without zones known, the same cluster is healthy.
    lab.run(&["check", &nodes[0]]).ok();

    let script = write(
        dir.path(),
        "fix.rhai",
        "import \"zones\" as zones;\n\
         for n in list_nodes(ARGS[0]) { if n.zone == () { throw `no zone for ${n.addr}`; } }\n\
         let bad = zones::same_zone_masters(ARGS[0]);\n\
         print(`bad: ${bad.len()} ${bad[0].master.addr}`);\n\
         let moves = zones::fix_replicas(ARGS[0]);\n\
         print(`moves: ${moves.len()}`);\n",
    );
    let s = script.to_str().expect("utf-8 path");
    // A dry run plans the moves and changes nothing.
    let dry = lab.run(&["--zones", z, "--dry-run", "run", s, &nodes[0]]);
    assert!(dry.ok().contains(&format!("bad: 1 {a}")), "{}", dry.stdout);
    assert!(dry.stdout.contains("moves: 2"), "{}", dry.stdout);
    assert_ne!(
        lab.run(&["--zones", z, "check", &nodes[0]]).code,
        0,
        "the dry run changed the cluster"
    );
    let live = lab.run(&["--zones", z, "run", s, &nodes[0]]);
    assert!(live.ok().contains("moves: 2"), "{}", live.stdout);
    let check = lab.run(&["--zones", z, "check", &nodes[0]]);
    assert!(!check.ok().contains("zone"), "{}", check.stdout);
    assert_spread(&layout(
        &lab.run(&["--zones", z, "list", &nodes[0], "--json"]),
    ));
    // Nothing left to do.
    let again = write(
        dir.path(),
        "again.rhai",
        "import \"zones\" as zones;\nprint(`moves: ${zones::plan_replicas(ARGS[0]).len()}`);\n",
    );
    let again = lab.run(&[
        "--zones",
        z,
        "run",
        again.to_str().expect("utf-8"),
        &nodes[0],
    ]);
    assert!(again.ok().contains("moves: 0"), "{}", again.stdout);
}

#[test]
fn a_bad_zones_file_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = write(
        dir.path(),
        "zones.txt",
        "127.0.0.1:7000 a\n127.0.0.1:7001\n",
    );
    let out = Run::from(
        bin()
            .args([
                "--zones",
                f.to_str().expect("utf-8"),
                "check",
                "127.0.0.1:1",
            ])
            .output()
            .expect("run"),
    );
    out.fails_with("zones.txt:2: expected `HOST:PORT ZONE` or `HOST ZONE`");
    let out = Run::from(
        bin()
            .args(["--zones", "/nonexistent/zones.txt", "check", "127.0.0.1:1"])
            .output()
            .expect("run"),
    );
    out.fails_with("--zones /nonexistent/zones.txt: cannot read it");
}

/// Valkey 8.1's server in the cache `./dev servers` fills.
fn valkey81() -> PathBuf {
    crate::support::cached_server("valkey-8.1.8/valkey-server", "the availability-zone test")
}

#[test]
fn valkey_availability_zone_is_read_and_the_file_wins() {
    let lab = ServerLab::up(6, &valkey81());
    let nodes: Vec<String> = (0..6).map(|i| lab.at(i)).collect();
    for (i, n) in nodes.iter().enumerate() {
        let zone = format!("az{}", i / 2 + 1);
        let a: Addr = n.parse().expect("addr");
        raw(&a, None, &["CONFIG", "SET", "availability-zone", &zone])
            .expect("CONFIG SET availability-zone");
    }
    let run = |args: &[&str]| Run::from(bin().args(args).output().expect("run redis-trib"));
    let mut args = vec!["create", "--replicas", "1"];
    args.extend(nodes.iter().map(String::as_str));
    let out = run(&args);
    out.ok();
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("zones: az1, az2, az3;"), "{said}");
    let l = layout(&run(&["list", &nodes[0], "--json"]));
    assert_spread(&l);
    assert_eq!(l[&nodes[5]].0.as_deref(), Some("az3"), "{l:?}");
    let check = run(&["check", &nodes[0]]);
    assert!(!check.ok().contains("zone"), "{}", check.stdout);
    // A --zones file names node 5: its zone there wins over the server's.
    let dir = tempfile::tempdir().expect("temp dir");
    let f = write(
        dir.path(),
        "z.json",
        &format!("{{\"{}\": \"rack9\"}}", nodes[5]),
    );
    let l = layout(&run(&[
        "--zones",
        f.to_str().expect("utf-8"),
        "list",
        &nodes[0],
        "--json",
    ]));
    assert_eq!(l[&nodes[5]].0.as_deref(), Some("rack9"), "{l:?}");
    assert_eq!(l[&nodes[4]].0.as_deref(), Some("az3"), "{l:?}");
}
