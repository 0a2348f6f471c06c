//! The atomic slot-migration engine (`CLUSTER MIGRATESLOTS`, Valkey 9.0+). These tests
//! pick their server themselves, whatever leg runs them: Valkey 9.1 from the servers
//! cache (`./dev servers` fetches it; missing, they fail saying so), and Redis 7.0
//! (`redis-server` from `PATH`) for the refusal of `--engine atomic`. Their nodes are
//! started with `redis-trib lab up` (the server given to that process only) and
//! stopped with `lab down` when the test ends.

use crate::support::{bin, poll, raw, redis_cli, text, Run, ServerLab};
use redis::cluster::ClusterClientBuilder;
use redis::Commands;
use redis_trib::engine::atomic::{parse_jobs, SlotJob};
use redis_trib::topology::parse_cluster_nodes;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Valkey 9.1's server in the cache `./dev servers` fills.
fn valkey91() -> PathBuf {
    crate::support::cached_server("valkey-9.1.2/valkey-server", "the atomic migration tests")
}

/// `redis-server` from `PATH` (Redis 7.0 on the test machines).
fn redis_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .expect("redis-server in PATH: `./dev setup`")
}

impl ServerLab {
    fn cmd(&self, i: usize, args: &[&str]) -> redis::RedisResult<redis::Value> {
        raw(&self.addr(i), None, args)
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(bin().args(args).output().expect("run redis-trib"))
    }

    /// Makes nodes `0..k` one cluster.
    fn cluster(&self, k: usize) {
        let nodes: Vec<String> = (0..k).map(|i| self.at(i)).collect();
        let mut args = vec!["start_multi"];
        args.extend(nodes.iter().map(String::as_str));
        self.run(&args).ok();
    }

    /// Slots node `i` owns.
    fn slots_of(&self, i: usize) -> Vec<u16> {
        let nodes =
            parse_cluster_nodes(&text(self.cmd(i, &["CLUSTER", "NODES"]).unwrap())).unwrap();
        nodes
            .into_iter()
            .find(|n| n.is_myself())
            .map(|n| n.assigned_slots)
            .unwrap_or_default()
    }

    /// Whether any node marks a slot migrating or importing.
    fn any_open_slot(&self) -> bool {
        (0..self.ports.len()).any(|i| {
            self.cmd(i, &["CLUSTER", "NODES"])
                .map(|v| {
                    let t = text(v);
                    t.contains("->-") || t.contains("-<-")
                })
                .unwrap_or(false)
        })
    }

    /// The jobs node `i` lists.
    fn jobs(&self, i: usize) -> Vec<SlotJob> {
        parse_jobs(
            &self
                .cmd(i, &["CLUSTER", "GETSLOTMIGRATIONS"])
                .expect("GETSLOTMIGRATIONS"),
        )
    }

    fn cluster_conn(&self) -> redis::cluster::ClusterConnection {
        ClusterClientBuilder::new(vec![format!("redis://{}/", self.at(0))])
            .build()
            .unwrap()
            .get_connection()
            .expect("cluster connection")
    }

    /// Writes `n` keys through the cluster; returns them.
    fn write_keys(&self, prefix: &str, n: usize) -> Vec<(String, String)> {
        let mut conn = self.cluster_conn();
        let kv: Vec<(String, String)> = (0..n)
            .map(|i| (format!("{prefix}:{i}"), format!("value-{i}")))
            .collect();
        for (k, v) in &kv {
            let _: () = conn.set(k, v).unwrap();
        }
        kv
    }

    fn assert_keys(&self, kv: &[(String, String)]) {
        let mut conn = self.cluster_conn();
        for (k, v) in kv {
            let got: Option<String> = conn.get(k).unwrap();
            assert_eq!(got.as_deref(), Some(v.as_str()), "key {k} lost or changed");
        }
    }

    /// `redis-cli --cluster check` (Redis 7.0's, which judges Valkey 9.1 too) is happy.
    fn assert_cli_check(&self) {
        let out = redis_cli()
            .args(["--cluster", "check", &self.at(0)])
            .output()
            .expect("redis-cli");
        let t = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "redis-cli --cluster check failed:\n{t}"
        );
        assert!(t.contains("[OK] All 16384 slots covered."), "{t}");
        assert!(!t.contains("[ERR]") && !t.contains("[WARNING]"), "{t}");
    }
}

/// A Valkey 9.1 lab of `n` nodes, the first `k` one cluster; fails when the server
/// has no atomic migration.
fn valkey(n: usize, k: usize) -> ServerLab {
    let lab = ServerLab::up(n, &valkey91());
    let info = lab
        .cmd(0, &["COMMAND", "INFO", "CLUSTER|MIGRATESLOTS"])
        .expect("COMMAND INFO");
    assert!(
        matches!(&info, redis::Value::Array(v) if v.first().is_some_and(|e| *e != redis::Value::Nil)),
        "{} has no CLUSTER MIGRATESLOTS: the atomic tests need Valkey 9.0+",
        lab.at(0)
    );
    lab.cluster(k);
    lab
}

fn combined(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

#[test]
fn auto_rebalances_atomically_on_valkey_9_1() {
    let lab = valkey(4, 3);
    let kv = lab.write_keys("auto", 2000);
    lab.run(&["join_no_load", &lab.at(0), &lab.at(3)]).ok();
    let plan = lab.run(&["rebalance", &lab.at(0), "--use-empty-masters", "--dry-run"]);
    let planned = plan.ok().to_string();
    assert!(planned.contains("engine atomic"), "{planned}");
    let r = lab.run(&["rebalance", &lab.at(0), "--use-empty-masters"]);
    r.ok();
    let out = combined(&r);
    assert_eq!(out.matches("engine atomic").count(), 3, "{out}");
    assert!(!out.contains("key by key"), "{out}");
    let imports: Vec<SlotJob> = lab
        .jobs(3)
        .into_iter()
        .filter(|j| j.operation == "IMPORT")
        .collect();
    assert_eq!(imports.len(), 3, "{imports:?}");
    assert!(imports.iter().all(|j| j.state == "success"), "{imports:?}");
    assert_eq!(lab.slots_of(3).len(), 4096);
    lab.assert_keys(&kv);
    assert!(!lab.any_open_slot());
    lab.assert_cli_check();
    lab.run(&["check", &lab.at(0)]).ok();
}

#[test]
fn engine_keys_forces_the_key_by_key_engine() {
    let lab = valkey(3, 3);
    let kv = lab.write_keys("keys", 500);
    let plan = lab.run(&[
        "migrate_slots",
        &lab.at(0),
        &lab.at(1),
        "0-999",
        "--engine",
        "keys",
        "--dry-run",
    ]);
    assert!(plan.ok().contains("engine keys"), "{}", plan.stdout);
    let r = lab.run(&[
        "migrate_slots",
        &lab.at(0),
        &lab.at(1),
        "0-999",
        "--engine",
        "keys",
    ]);
    r.ok();
    assert!(!combined(&r).contains("engine atomic"), "{}", combined(&r));
    assert!(lab.jobs(0).is_empty(), "{:?}", lab.jobs(0));
    assert!(lab.slots_of(1).contains(&0) && lab.slots_of(1).contains(&999));
    lab.assert_keys(&kv);
    lab.assert_cli_check();
}

#[test]
fn a_failed_atomic_job_falls_back_to_keys_with_a_warning() {
    let lab = valkey(3, 3);
    // Keys only on node 2: node 0 is flushed below.
    let kv: Vec<(String, String)> = lab
        .write_keys("failed", 600)
        .into_iter()
        .filter(|(k, _)| {
            lab.slots_of(2)
                .contains(&redis_trib::slots::slot_of(k.as_bytes()))
        })
        .collect();
    // The job waits on the destination; FLUSHALL on the source fails it ("Data was
    // flushed"); the move goes on key by key once the destination takes writes again.
    hold_writes(&lab, 1);
    let child = bin()
        .args(["migrate_slots", &lab.at(0), &lab.at(1), "0-199"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    poll(20, "the atomic job to start", || active_export(&lab, 0));
    lab.cmd(0, &["FLUSHALL"]).unwrap();
    poll(20, "the atomic job to fail", || {
        lab.jobs(0).iter().any(|j| j.state == "failed")
    });
    lab.cmd(1, &["CLIENT", "UNPAUSE"]).unwrap();
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("failed") && text.contains("Data was flushed") && text.contains("key by key"),
        "{text}"
    );
    assert!(lab.slots_of(1).contains(&0) && lab.slots_of(1).contains(&199));
    assert!(!lab.any_open_slot());
    lab.assert_keys(&kv);
    lab.assert_cli_check();
    // check does not report the failed job: its slots moved since.
    lab.run(&["check", &lab.at(0)]).ok();
}

/// Holds the destination's writes (`CLIENT PAUSE ... WRITE`): an atomic job toward it
/// stays in its handshake, while reads (GETSLOTMIGRATIONS, COMMAND INFO) still answer.
fn hold_writes(lab: &ServerLab, i: usize) {
    lab.cmd(i, &["CLIENT", "PAUSE", "60000", "WRITE"]).unwrap();
}

fn active_export(lab: &ServerLab, i: usize) -> bool {
    lab.jobs(i)
        .iter()
        .any(|j| j.operation == "EXPORT" && !j.is_terminal())
}

#[test]
fn ctrl_c_cancels_the_atomic_job_and_check_and_fix_settle_it() {
    let lab = valkey(3, 3);
    let kv = lab.write_keys("ctrlc", 3000);
    hold_writes(&lab, 1);
    let child = bin()
        .args(["migrate_slots", &lab.at(0), &lab.at(1), "0-2999"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    poll(20, "the atomic job to start", || active_export(&lab, 0));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    lab.cmd(1, &["CLIENT", "UNPAUSE"]).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("nothing of it was moved"),
        "{stderr}"
    );
    let jobs = lab.jobs(0);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, "cancelled", "{jobs:?}");
    assert!(lab.slots_of(0).contains(&0) && lab.slots_of(0).contains(&2999));
    assert!(!lab.any_open_slot());
    lab.assert_keys(&kv);
    // check reports the cancelled job (job, state); fix resumes it.
    let r = lab.run(&["check", &lab.at(0)]);
    assert_eq!(r.code, 3, "{}", combined(&r));
    let short: String = jobs[0].name.chars().take(8).collect();
    assert!(
        combined(&r).contains(&short) && combined(&r).contains("cancelled"),
        "{}",
        combined(&r)
    );
    let r = lab.run(&["fix", &lab.at(0)]);
    r.ok();
    assert!(combined(&r).contains("resuming"), "{}", combined(&r));
    assert!(lab.slots_of(1).contains(&0) && lab.slots_of(1).contains(&2999));
    lab.run(&["check", &lab.at(0)]).ok();
    lab.assert_keys(&kv);
    lab.assert_cli_check();
}

#[test]
fn timeout_cancels_a_stalled_atomic_job_naming_the_destination() {
    let lab = valkey(3, 3);
    let kv = lab.write_keys("stall", 1000);
    hold_writes(&lab, 1);
    let r = lab.run(&[
        "migrate_slots",
        &lab.at(0),
        &lab.at(1),
        "0-999",
        "--timeout",
        "2",
    ]);
    lab.cmd(1, &["CLIENT", "UNPAUSE"]).unwrap();
    r.fails_with(&format!("{} timed out", lab.at(1)));
    assert!(r.stderr.contains("cancelled"), "{}", r.stderr);
    let jobs = lab.jobs(0);
    assert!(jobs.iter().all(|j| j.state == "cancelled"), "{jobs:?}");
    assert!(lab.slots_of(0).contains(&0));
    assert!(!lab.any_open_slot());
    lab.assert_keys(&kv);
}

#[test]
fn redis_7_refuses_engine_atomic_naming_node_and_version() {
    let server = redis_path();
    let version = String::from_utf8_lossy(
        &Command::new(&server)
            .arg("--version")
            .output()
            .expect("redis-server --version")
            .stdout,
    )
    .into_owned();
    assert!(
        version.contains("v=7."),
        "expected Redis 7 in PATH: {version}"
    );
    let lab = ServerLab::up(2, &server);
    lab.cluster(2);
    let r = lab.run(&[
        "migrate_slots",
        &lab.at(0),
        &lab.at(1),
        "0-9",
        "--engine",
        "atomic",
    ]);
    r.fails_with(&format!("{} runs redis 7.", lab.at(0)));
    assert!(r.stderr.contains("no CLUSTER MIGRATESLOTS"), "{}", r.stderr);
    // auto quietly uses the key engine there.
    let r = lab.run(&["migrate_slots", &lab.at(0), &lab.at(1), "0-9"]);
    r.ok();
    assert!(!combined(&r).contains("engine atomic"), "{}", combined(&r));
}
