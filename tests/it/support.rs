//! Test support: lab clusters of real redis-server processes (torn down by pid when
//! the test ends, passes or fails), key writers/readers that go through the cluster,
//! the binary, and `redis-cli --cluster check` as an independent judge.

#![allow(dead_code)]

use redis::cluster::ClusterClientBuilder;
use redis::Commands;
use redis_trib::addr::Addr;
use redis_trib::backend::live::Live;
use redis_trib::conn::{parse_info, ConnOpts};
use redis_trib::lab::{Lab, LabOpts};
use redis_trib::topology::{parse_cluster_nodes, Node};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// One node's `CLUSTER NODES`, with the lab's addresses to look lines up by index.
pub struct Table {
    /// The lines.
    pub nodes: Vec<Node>,
    addrs: Vec<Addr>,
}

impl Table {
    /// The line of lab node `i`.
    pub fn of(&self, i: usize) -> Node {
        let addr = &self.addrs[i];
        self.nodes
            .iter()
            .find(|n| &n.addr() == addr)
            .unwrap_or_else(|| panic!("{addr} is not in the table"))
            .clone()
    }

    /// The masters' lines.
    pub fn masters(&self) -> Vec<Node> {
        self.nodes
            .iter()
            .filter(|n| n.is_master())
            .cloned()
            .collect()
    }
}

/// A lab of free nodes in a temporary directory.
pub struct TestLab {
    pub lab: Lab,
    pub password: Option<String>,
    _dir: tempfile::TempDir,
    /// Another directory the nodes use (a standalone node's data), removed with the lab.
    extra_dir: Option<tempfile::TempDir>,
}

impl Drop for TestLab {
    /// A failing test's lab shows, on stderr (which the test harness prints for a
    /// failed test), what each node saw at the end: its `CLUSTER NODES`, its epochs
    /// and the last lines of its log. A flake in CI then says what happened.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for node in &self.lab.nodes {
            let addr = node.addr();
            eprintln!("--- {addr} at the end of the failed test ---");
            let ask = |args: &[&str]| {
                let reply = raw_within(
                    &addr,
                    self.password.as_deref(),
                    args,
                    Duration::from_secs(2),
                );
                match reply.map(redis::from_redis_value::<String>) {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => format!("({} replied oddly: {e})\n", args.join(" ")),
                    Err(e) => format!("({} failed: {e})\n", args.join(" ")),
                }
            };
            let info = ask(&["CLUSTER", "INFO"]);
            let epochs: Vec<&str> = info
                .lines()
                .filter(|l| l.contains("epoch") || l.starts_with("cluster_state"))
                .collect();
            eprintln!("{}", epochs.join(" "));
            eprint!("{}", ask(&["CLUSTER", "NODES"]));
            let log = std::fs::read_to_string(node.dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            for line in tail.iter().rev() {
                eprintln!("  log| {line}");
            }
        }
    }
}

/// Starts `n` free nodes.
pub fn lab(n: usize) -> TestLab {
    lab_with(n, LabOpts::default())
}

/// Starts `n` free nodes with options.
pub fn lab_with(n: usize, opts: LabOpts) -> TestLab {
    let dir = tempfile::tempdir().expect("temp dir");
    let password = opts.password.clone();
    let lab = Lab::start(dir.path(), n, opts).unwrap_or_else(|e| {
        panic!("cannot start lab nodes: {e:#}\nThe tests need redis-server: `./dev setup` or `sudo apt-get install -y redis-server`")
    });
    TestLab {
        lab,
        password,
        _dir: dir,
        extra_dir: None,
    }
}

/// Starts one standalone (not cluster-enabled) redis-server; with `rdb`, it loads
/// that file at start.
pub fn standalone(rdb: Option<&std::path::Path>) -> TestLab {
    let mut extra_args = vec!["--cluster-enabled".to_string(), "no".to_string()];
    let data = tempfile::tempdir().expect("temp dir");
    if let Some(rdb) = rdb {
        std::fs::copy(rdb, data.path().join("dump.rdb")).expect("copy the RDB");
        extra_args.extend([
            "--dir".to_string(),
            data.path().display().to_string(),
            "--dbfilename".to_string(),
            "dump.rdb".to_string(),
        ]);
    }
    let mut lab = lab_with(
        1,
        LabOpts {
            extra_args,
            ..LabOpts::default()
        },
    );
    lab.extra_dir = Some(data);
    lab
}

impl TestLab {
    /// Address of node `i`.
    pub fn addr(&self, i: usize) -> Addr {
        self.lab.nodes[i].addr()
    }

    /// `host:port` of node `i`.
    pub fn at(&self, i: usize) -> String {
        self.addr(i).to_string()
    }

    /// Connection options for this lab.
    pub fn conn_opts(&self) -> ConnOpts {
        let tls = self.lab.tls.as_ref().map(|c| {
            redis_trib::conn::TlsOpts::from_files(Some(&c.ca), Some(&c.cert), Some(&c.key))
                .expect("the lab's certificates")
        });
        ConnOpts {
            password: self.password.clone(),
            user: None,
            timeout: Duration::from_secs(30),
            tls,
        }
    }

    /// A quiet live backend.
    pub fn backend(&self) -> Live {
        Live::quiet(self.conn_opts())
    }

    /// Makes nodes `0..k` one cluster (through the library).
    pub fn cluster(&self, k: usize) -> Addr {
        let addrs: Vec<Addr> = (0..k).map(|i| self.addr(i)).collect();
        redis_trib::ops::start_multi(&mut self.backend(), &addrs, 16384).expect("start_multi");
        self.addr(0)
    }

    /// Runs one command on node `i`.
    pub fn cmd(&self, i: usize, args: &[&str]) -> redis::RedisResult<redis::Value> {
        raw(&self.addr(i), self.password.as_deref(), args)
    }

    /// Node `i`'s value of the setting `name` (`CONFIG GET`).
    pub fn config_get(&self, i: usize, name: &str) -> String {
        let pair: Vec<String> =
            redis::from_redis_value(self.cmd(i, &["CONFIG", "GET", name]).unwrap()).unwrap();
        pair[1].clone()
    }

    /// The node ids of node `i` (its own id).
    pub fn id(&self, i: usize) -> String {
        let v: String =
            redis::from_redis_value(self.cmd(i, &["CLUSTER", "MYID"]).unwrap()).unwrap();
        v
    }

    /// CLUSTER NODES of node `i`, parsed.
    pub fn nodes(&self, i: usize) -> Vec<Node> {
        parse_cluster_nodes(&text(self.cmd(i, &["CLUSTER", "NODES"]).unwrap())).unwrap()
    }

    /// Node 0's table with the line of each lab node looked up by index: what the
    /// engine is handed as a job's ends (`lines.of(i)`), and its masters.
    pub fn table(&self) -> Table {
        Table {
            nodes: self.nodes(0),
            addrs: (0..self.lab.nodes.len()).map(|i| self.addr(i)).collect(),
        }
    }

    /// CLUSTER INFO of node `i`.
    pub fn info(&self, i: usize) -> HashMap<String, String> {
        parse_info(&text(self.cmd(i, &["CLUSTER", "INFO"]).unwrap()))
    }

    /// The slots node `i` serves, in its own view.
    pub fn slots_of(&self, i: usize) -> Vec<u16> {
        self.nodes(i)
            .into_iter()
            .find(|n| n.is_myself())
            .unwrap()
            .assigned_slots
    }

    /// CLUSTER NODES of node `i` with the fields that change on their own (ping and
    /// pong times, link state) removed: equal before and after means untouched.
    pub fn stable_nodes(&self, i: usize) -> String {
        let mut lines: Vec<String> = text(self.cmd(i, &["CLUSTER", "NODES"]).unwrap())
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let mut keep = vec![f[0], f[1], f[2], f[3], f[6]];
                keep.extend(&f[8..]);
                keep.join(" ")
            })
            .collect();
        lines.sort();
        lines.join("\n")
    }

    /// Snapshot of every node's stable CLUSTER NODES and key count.
    pub fn snapshot(&self) -> Vec<(String, i64)> {
        (0..self.lab.nodes.len())
            .map(|i| {
                let keys: i64 = redis::from_redis_value(self.cmd(i, &["DBSIZE"]).unwrap()).unwrap();
                (self.stable_nodes(i), keys)
            })
            .collect()
    }

    /// Writes `n` keys through the cluster (`prefix:i` = `value-i`); returns them.
    pub fn write_keys(&self, entry: usize, prefix: &str, n: usize) -> Vec<(String, String)> {
        let mut conn = self.cluster_conn(entry);
        let kv: Vec<(String, String)> = (0..n)
            .map(|i| (format!("{prefix}:{i}"), format!("value-{i}")))
            .collect();
        for (k, v) in &kv {
            let _: () = conn.set(k, v).unwrap();
        }
        kv
    }

    /// Asserts every key reads back its value through the cluster.
    pub fn assert_keys(&self, entry: usize, kv: &[(String, String)]) {
        let mut conn = self.cluster_conn(entry);
        for (k, v) in kv {
            let got: Option<String> = conn.get(k).unwrap();
            assert_eq!(got.as_deref(), Some(v.as_str()), "key {k} lost or changed");
        }
    }

    /// Total keys over the masters of the cluster node `entry` belongs to.
    pub fn total_keys(&self, entry: usize) -> i64 {
        let masters: Vec<Node> = self
            .nodes(entry)
            .into_iter()
            .filter(|n| n.is_master() && !n.is_failed())
            .collect();
        masters
            .iter()
            .map(|m| {
                redis::from_redis_value::<i64>(
                    raw(&m.addr(), self.password.as_deref(), &["DBSIZE"]).unwrap(),
                )
                .unwrap()
            })
            .sum()
    }

    /// A cluster connection (the redis crate's: MOVED and ASK followed) entered at node `entry`.
    pub fn cluster_conn(&self, entry: usize) -> redis::cluster::ClusterConnection {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@{}/", self.at(entry)),
            None => format!("redis://{}/", self.at(entry)),
        };
        ClusterClientBuilder::new(vec![url])
            .build()
            .unwrap()
            .get_connection()
            .expect("cluster connection")
    }

    /// Writes `key` on node `i` although `i` does not own its slot (as a half-done
    /// import would leave it): the slot is briefly marked importing from its owner
    /// so that ASKING + SET is accepted, then made stable again.
    pub fn plant_on(&self, i: usize, key: &str, value: &str) {
        let slot = redis_trib::slots::slot_of(key.as_bytes()).to_string();
        let owner = (0..self.lab.nodes.len())
            .find(|&j| self.slots_of(j).contains(&slot.parse().unwrap()))
            .expect("an owner");
        let owner_id = self.id(owner);
        self.cmd(i, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &owner_id])
            .unwrap();
        self.asking_set(i, key, value);
        self.cmd(i, &["CLUSTER", "SETSLOT", &slot, "STABLE"])
            .unwrap();
    }

    /// The options that reach this lab's nodes over TLS (none for a plain lab).
    /// `ASKING` + `SET` on node `i` (the key's slot must be importing there).
    pub fn asking_set(&self, i: usize, key: &str, value: &str) {
        let url = format!("redis://{}/", self.at(i));
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: () = redis::pipe()
            .cmd("ASKING")
            .ignore()
            .cmd("SET")
            .arg(key)
            .arg(value)
            .ignore()
            .query(&mut c)
            .unwrap();
    }

    pub fn tls_flags(&self) -> Vec<String> {
        self.lab
            .tls
            .as_ref()
            .map(|c| c.client_flags())
            .unwrap_or_default()
    }

    /// Runs `redis-cli --cluster check` on node `i` and asserts it is fully happy.
    pub fn assert_redis_cli_check(&self, i: usize) {
        let mut cmd = redis_cli();
        cmd.args(self.tls_flags());
        cmd.args(["--cluster", "check", &self.at(i)]);
        if let Some(p) = &self.password {
            cmd.env("REDISCLI_AUTH", p);
        }
        let out = cmd
            .output()
            .expect("redis-cli (from the redis-tools package) must be installed");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "redis-cli --cluster check failed:\n{text}"
        );
        assert!(
            text.contains("[OK] All nodes agree about slots configuration."),
            "{text}"
        );
        assert!(text.contains("[OK] All 16384 slots covered."), "{text}");
        assert!(
            !text.contains("[ERR]") && !text.contains("[WARNING]"),
            "{text}"
        );
    }

    /// Runs the binary with this lab's password in the environment (and its TLS
    /// options, for a TLS lab).
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = bin();
        cmd.args(args).args(self.tls_flags());
        if let Some(p) = &self.password {
            cmd.env("REDISCLI_AUTH", p);
        }
        Run::from(cmd.output().expect("run redis-trib"))
    }
}

/// The judge's command line tool: `$REDIS_TRIB_CLI` (the cli matching the server
/// under test, see `./dev servers`), else `redis-cli` from `PATH`.
pub fn redis_cli() -> Command {
    Command::new(
        std::env::var_os("REDIS_TRIB_CLI")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "redis-cli".into()),
    )
}

/// One command on one node.
pub fn raw(addr: &Addr, password: Option<&str>, args: &[&str]) -> redis::RedisResult<redis::Value> {
    query(addr, password, args, Duration::from_secs(10), None)
}

/// One command on one node, its reply awaited at most `timeout` (a stopped node
/// must not hang a failed test's report).
pub fn raw_within(
    addr: &Addr,
    password: Option<&str>,
    args: &[&str],
    timeout: Duration,
) -> redis::RedisResult<redis::Value> {
    query(addr, password, args, timeout, Some(timeout))
}

fn query(
    addr: &Addr,
    password: Option<&str>,
    args: &[&str],
    connect: Duration,
    read: Option<Duration>,
) -> redis::RedisResult<redis::Value> {
    let url = match password {
        Some(p) => format!("redis://:{p}@{addr}/"),
        None => format!("redis://{addr}/"),
    };
    let mut conn = redis::Client::open(url)?.get_connection_with_timeout(connect)?;
    conn.set_read_timeout(read)?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
}

/// A reply as text.
pub fn text(v: redis::Value) -> String {
    redis::from_redis_value(v).unwrap()
}

/// The binary under test, with colours off.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_redis-trib"));
    c.env("NO_COLOR", "1").env_remove("REDISCLI_AUTH");
    c
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with exactly one `error:` line containing `needle`.
    pub fn fails_with(&self, needle: &str) {
        assert_ne!(
            self.code, 0,
            "expected failure\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(
            errors.len(),
            1,
            "expected one error line, got:\n{}",
            self.stderr
        );
        assert!(
            errors[0].contains(needle),
            "error line {:?} does not contain {needle:?}",
            errors[0]
        );
    }
}

/// Polls `check` every 50 ms until it holds, failing the test after `secs` seconds.
pub fn poll(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A hash tag whose keys all land in `slot`.
pub fn tag_for_slot(slot: u16) -> String {
    (0..1_000_000)
        .map(|i| format!("t{i}"))
        .find(|t| redis_trib::slots::slot_of(t.as_bytes()) == slot)
        .expect("a tag for every slot exists")
}

/// A server binary of the matrix from the cache `./dev servers` fills
/// (`$REDIS_TRIB_SERVERS`, else `$XDG_CACHE_HOME` or `~/.cache`, then
/// `redis-trib/servers/NAME`); a missing one fails the test saying how to get it.
pub fn cached_server(name: &str, needed_for: &str) -> std::path::PathBuf {
    use std::path::PathBuf;
    let base = std::env::var_os("REDIS_TRIB_SERVERS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("redis-trib/servers")
        });
    let server = base.join(name);
    assert!(
        server.is_file(),
        "{needed_for} needs {name} at {}: run `./dev servers`",
        server.display()
    );
    server
}

/// Nodes of one server program (a server of the matrix, whatever leg runs the
/// test), started by `redis-trib lab up` and stopped by `lab down` when dropped.
pub struct ServerLab {
    dir: tempfile::TempDir,
    /// The lab directory `lab down` is given.
    pub lab: PathBuf,
    /// The nodes' ports.
    pub ports: Vec<u16>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl ServerLab {
    /// Starts `n` free nodes of `server` (ports 23000-28999, retried elsewhere when
    /// taken).
    pub fn up(n: usize, server: &Path) -> ServerLab {
        let dir = tempfile::tempdir().expect("temp dir");
        let seed = std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0));
        let mut last = String::new();
        for attempt in 0..30 {
            let k = NEXT.fetch_add(1, Ordering::SeqCst);
            // Ports 23000-28999 (bus ports 33000-38999), 8 apart per attempt.
            let base = 23000 + ((seed.wrapping_add(k * 7919) % 750) * 8) as u16;
            let lab = dir.path().join(format!("lab{attempt}"));
            let out = bin()
                .args([
                    "lab",
                    "up",
                    &n.to_string(),
                    "--base-port",
                    &base.to_string(),
                ])
                .arg("--dir")
                .arg(&lab)
                .env("REDIS_TRIB_SERVER", server)
                .output()
                .expect("run redis-trib lab up");
            if out.status.success() {
                return ServerLab {
                    dir,
                    lab,
                    ports: (0..n as u16).map(|i| base + i).collect(),
                };
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("cannot start {n} nodes of {}: {last}", server.display());
    }

    /// `127.0.0.1:PORT` of node `i`.
    pub fn at(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// The address of node `i`.
    pub fn addr(&self, i: usize) -> Addr {
        Addr::new("127.0.0.1", self.ports[i])
    }
}

impl Drop for ServerLab {
    fn drop(&mut self) {
        let _ = bin()
            .args(["lab", "down", "--quiet", "--dir"])
            .arg(&self.lab)
            .output();
        let _ = &self.dir;
    }
}
