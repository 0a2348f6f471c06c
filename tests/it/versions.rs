//! Every server of the matrix (`./dev test` runs these on each): `list --json` and
//! `info` name each node's server and version, and a backup's manifest names, per
//! RDB, the server that wrote it and the RDB format version in its header.

use crate::support::*;

/// `redis 7.0.15` / `valkey 9.1.2`: what the leg's server binary says of itself
/// (`Valkey server v=9.1.2 sha=...`).
fn expected_server() -> String {
    let bin = redis_trib::lab::redis_server_path().expect("server binary");
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .expect("server --version");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let name = text
        .split_whitespace()
        .next()
        .expect("a name")
        .to_lowercase();
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .expect("v=version");
    format!("{name} {version}")
}

/// The RDB format version each server writes over SYNC.
fn expected_rdb_version(server: &str) -> u64 {
    match server {
        s if s.starts_with("redis 7.0") => 10,
        s if s.starts_with("redis 7.") => 11,
        s if s.starts_with("redis 8") => 12,
        s if s.starts_with("valkey") => 11,
        s => panic!("no known RDB version for {s}"),
    }
}

#[test]
fn list_and_info_name_each_nodes_server_and_version() {
    let lab = lab(4);
    let entry = lab.cluster(3);
    lab.run(&["replicate", &lab.at(0), &lab.at(3)]).ok();
    let want = expected_server();

    let run = lab.run(&["list", &entry.to_string(), "--json"]);
    let topo: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    let servers = topo["servers"].as_object().expect("servers map");
    assert_eq!(servers.len(), 4, "{servers:?}");
    for n in topo["nodes"].as_array().unwrap() {
        let id = n["node_id"].as_str().unwrap();
        assert_eq!(servers[id], want.as_str(), "node {id}");
    }
    // A snapshot without the map (written before it existed) still loads.
    let mut old = topo.clone();
    old.as_object_mut().unwrap().remove("servers");
    let _: redis_trib::topology::Topology = serde_json::from_value(old).unwrap();

    let text = lab.run(&["list", &entry.to_string()]);
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains(&want)), "{lines:?}");

    let info = lab.run(&["info", &entry.to_string(), "--json"]);
    let info: serde_json::Value = serde_json::from_str(info.ok()).unwrap();
    for m in info["masters"].as_array().unwrap() {
        assert_eq!(m["server"], want.as_str(), "{m}");
    }
    assert_eq!(info["servers"][&want], 4, "{info}");
    let text = lab.run(&["info", &entry.to_string()]);
    assert!(
        text.ok().contains(&format!("servers: {want} (4 node(s))")),
        "{}",
        text.stdout
    );
}

#[test]
fn backup_manifest_names_server_and_rdb_version_of_each_file() {
    let lab = lab(3);
    let entry = lab.cluster(3);
    lab.write_keys(0, "ver", 300);
    let want = expected_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    let run = lab.run(&[
        "backup",
        &entry.to_string(),
        out.to_str().unwrap(),
        "--json",
    ]);
    let manifest: serde_json::Value = serde_json::from_str(run.ok()).unwrap();
    let masters = manifest["masters"].as_array().unwrap();
    assert_eq!(masters.len(), 3);
    for m in masters {
        assert_eq!(m["server"], want.as_str(), "{m}");
        assert_eq!(m["rdb_magic"], "REDIS", "{m}");
        assert_eq!(m["rdb_version"], expected_rdb_version(&want), "{m}");
        // The manifest says what the file's header says.
        let rdb = std::fs::read(out.join(m["rdb"].as_str().unwrap())).unwrap();
        assert_eq!(
            redis_trib::engine::rdb::rdb_header(&rdb[..9]),
            Some(("REDIS".to_string(), expected_rdb_version(&want) as u32))
        );
    }
    // The file on disk carries the same fields.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(on_disk["masters"], manifest["masters"]);
    // The text report says it too.
    let out2 = dir.path().join("backup2");
    let text = lab.run(&["backup", &entry.to_string(), out2.to_str().unwrap()]);
    let v = expected_rdb_version(&want);
    assert_eq!(
        text.ok().matches(&format!("RDB v{v} by {want}")).count(),
        3,
        "{}",
        text.stdout
    );
}
