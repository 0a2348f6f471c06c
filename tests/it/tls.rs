//! TLS: a lab of TLS-only nodes (clients, cluster bus and replication) managed end to
//! end with --tls --cacert --cert --key: create, the keyspace handle, a reshard with
//! keys (MIGRATE over the servers' TLS), backup over TLS, redis-cli's check; and the
//! errors that say what is missing.

use crate::support::*;
use redis_trib::lab::LabOpts;

#[test]
fn a_tls_only_cluster_is_managed_end_to_end_and_missing_options_are_named() {
    let lab = lab_with(
        6,
        LabOpts {
            tls: true,
            ..LabOpts::default()
        },
    );
    let nodes: Vec<String> = (0..6).map(|i| lab.at(i)).collect();
    let mut create = vec!["create", "--replicas", "1"];
    create.extend(nodes.iter().map(String::as_str));
    lab.run(&create).ok();

    // Keys through the cluster handle, split by slot over TLS connections.
    let mut mset = vec!["exec".to_string(), lab.at(0), "MSET".to_string()];
    for i in 0..300 {
        mset.push(format!("tls:{i}"));
        mset.push(format!("v{i}"));
    }
    let mset: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(lab.run(&mset).ok().trim(), "OK");

    // Slots and keys move between TLS nodes.
    lab.run(&[
        "reshard",
        &lab.at(0),
        "--from",
        &lab.at(0),
        "--to",
        &lab.at(1),
        "--slots",
        "3000",
    ])
    .ok();
    let mut mget = vec!["exec".to_string(), lab.at(2), "MGET".to_string()];
    mget.extend((0..300).map(|i| format!("tls:{i}")));
    let mget: Vec<&str> = mget.iter().map(String::as_str).collect();
    let values = lab.run(&mget).ok().to_string();
    for i in [0, 150, 299] {
        assert!(values.contains(&format!("\"v{i}\"")), "{values}");
    }
    assert!(!values.contains("(nil)"), "{values}");
    let sizes = lab
        .run(&["exec", &lab.at(0), "DBSIZE", "--json"])
        .ok()
        .to_string();
    let sizes: serde_json::Value = serde_json::from_str(&sizes).unwrap();
    let total: i64 = sizes
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(total, 300, "{sizes}");

    // A backup over TLS holds every key.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("b");
    let out = lab.run(&["backup", &lab.at(0), target.to_str().unwrap(), "--json"]);
    let manifest: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    let keys: u64 = manifest["masters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["keys"].as_u64().unwrap())
        .sum();
    assert_eq!(keys, 300, "{manifest}");
    lab.assert_redis_cli_check(3);

    // Scripts reach TLS nodes with the same options: the API and the cluster handle.
    let dir2 = tempfile::tempdir().unwrap();
    let path = dir2.path().join("tls.rhai");
    std::fs::write(
        &path,
        r#"
        let c = ARGS[0];
        let sizes = cluster(c).execute("DBSIZE");
        let total = 0;
        for k in sizes.keys() { total += sizes[k]; }
        print(`masters=${list_masters(c).len()} keys=${total}`);
        "#,
    )
    .unwrap();
    let out = lab.run(&["run", path.to_str().unwrap(), &lab.at(0)]);
    assert!(out.ok().contains("masters=3 keys=300"), "{}", out.stdout);

    // Without TLS, or without what TLS needs, the error names what is missing.
    let certs = lab.lab.tls.clone().unwrap();
    let plain = Run::from(bin().args(["list", &lab.at(0)]).output().unwrap());
    plain.fails_with("if the node only speaks TLS, add --tls");
    let no_ca = Run::from(bin().args(["--tls", "list", &lab.at(0)]).output().unwrap());
    no_ca.fails_with("give --cacert");
    let ca = certs.ca.to_str().unwrap();
    let no_cert = Run::from(
        bin()
            .args(["--tls", "--cacert", ca, "list", &lab.at(0)])
            .output()
            .unwrap(),
    );
    no_cert.fails_with("give --cert and --key");
}
