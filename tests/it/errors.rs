//! Precondition errors of the classic commands, driven through the binary. Every
//! refusal must exit non-zero with exactly one `error:` line that says what is wrong,
//! and, where there is a cluster, leave every node exactly as it was (same
//! `CLUSTER NODES` in each node's view, same key counts).

use crate::support::*;
use redis_trib::addr::Addr;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

/// Exit code of an error reported by the tool itself.
const TOOL_ERROR: i32 = 1;
/// Exit code of a usage error reported by clap.
const USAGE_ERROR: i32 = 2;

/// A port nothing listens on, and nothing can start listening on while this lives:
/// a socket bound to it without `SO_REUSEADDR` (so no other socket, redis-server's
/// included, can bind the port) that never listens (so a connection is refused).
/// A port bound and released instead could be taken meanwhile by a lab another
/// test thread starts.
struct DeadPort {
    fd: libc::c_int,
    port: u16,
}

impl DeadPort {
    /// `127.0.0.1:PORT`.
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for DeadPort {
    fn drop(&mut self) {
        // SAFETY: `fd` is the socket this value owns; it is closed once, here.
        unsafe { libc::close(self.fd) };
    }
}

/// A [`DeadPort`] the OS picks; checked to refuse connections.
fn dead_port() -> DeadPort {
    let os_error = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: plain socket calls on a socket this function creates and owns, with a
    // `sockaddr_in` of the size given.
    let dead = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "{}", os_error("socket"));
        // Owned from here: closed on any failure below too.
        let mut dead = DeadPort { fd, port: 0 };
        // Not inherited by the processes the tests start.
        assert_eq!(
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC),
            0,
            "{}",
            os_error("fcntl")
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let sa = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
        assert_eq!(
            libc::bind(fd, sa, len),
            0,
            "{}",
            os_error("bind 127.0.0.1:0")
        );
        assert_eq!(
            libc::getsockname(fd, sa, &mut len),
            0,
            "{}",
            os_error("getsockname")
        );
        dead.port = u16::from_be(addr.sin_port);
        dead
    };
    let refused = std::net::TcpStream::connect(("127.0.0.1", dead.port))
        .map_err(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        refused.err(),
        Some(true),
        "a connection to the dead port {} was not refused",
        dead.port
    );
    dead
}

/// A port that was free a moment ago (the OS picks it, we release it): a candidate
/// for a server that checks it got it.
fn candidate_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Asserts exit `code` and exactly one `error:` line containing `needle`.
fn check(run: &Run, args: &[&str], code: i32, needle: &str) {
    // Shown by the test harness if an assertion below fails.
    eprintln!("case: redis-trib {}", args.join(" "));
    assert_eq!(
        run.code,
        code,
        "redis-trib {}: wrong exit code\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run.fails_with(needle);
}

/// Runs the binary with no cluster involved and checks the refusal.
fn refused_alone(args: &[&str], code: i32, needle: &str) {
    let run = Run::from(bin().args(args).output().expect("run redis-trib"));
    check(&run, args, code, needle);
}

/// Runs the binary against a lab, checks the refusal (exit `code`), and checks that
/// no node of the lab changed.
fn refused_with_code(lab: &TestLab, args: &[&str], code: i32, needle: &str) {
    let before = lab.snapshot();
    let run = lab.run(args);
    check(&run, args, code, needle);
    assert_eq!(
        lab.snapshot(),
        before,
        "refused `redis-trib {}` changed the lab's nodes",
        args.join(" ")
    );
}

/// [`refused_with_code`] for errors of the tool itself (exit code 1).
fn refused(lab: &TestLab, args: &[&str], needle: &str) {
    refused_with_code(lab, args, TOOL_ERROR, needle);
}

/// Makes the free node `i` hold `key` while staying free. A free cluster-enabled node
/// refuses a plain SET (CLUSTERDOWN), so it serves every slot just long enough for
/// the SET to be accepted, then gives them all up again.
fn put_key_on_free_node(lab: &TestLab, i: usize, key: &str) {
    lab.cmd(i, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
        .unwrap();
    poll(10, "the node to accept writes", || {
        lab.cmd(i, &["SET", key, "value"]).is_ok()
    });
    lab.cmd(i, &["CLUSTER", "DELSLOTSRANGE", "0", "16383"])
        .unwrap();
    assert_eq!(lab.nodes(i).len(), 1, "node {i} must still be alone");
    assert!(lab.slots_of(i).is_empty(), "node {i} must serve no slot");
}

/// Removes `slot` from every view of nodes `0..k` (a cluster with an uncovered slot)
/// and waits until no view names an owner for it.
fn uncover_slot(lab: &TestLab, k: usize, slot: u16) {
    let s = slot.to_string();
    for i in 0..k {
        lab.cmd(i, &["CLUSTER", "DELSLOTS", &s]).unwrap();
    }
    poll(10, "every node to see the slot uncovered", || {
        (0..k).all(|i| {
            lab.nodes(i)
                .iter()
                .all(|n| !n.assigned_slots.contains(&slot))
        })
    });
}

/// A `redis-server` without cluster support, killed when dropped (test failed or not).
struct PlainRedis {
    child: Child,
    addr: Addr,
    _dir: tempfile::TempDir,
}

impl PlainRedis {
    fn start() -> PlainRedis {
        let server = redis_trib::lab::redis_server_path().expect("redis-server");
        for _ in 0..10 {
            let port = candidate_port();
            let dir = tempfile::tempdir().expect("temp dir");
            let child = Command::new(&server)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let mut plain = PlainRedis {
                child,
                addr: Addr::new("127.0.0.1", port),
                _dir: dir,
            };
            let pid = format!("process_id:{}", plain.child.id());
            let mut exited = false;
            poll(10, "the plain redis-server to answer", || {
                if let Ok(Some(_)) = plain.child.try_wait() {
                    exited = true; // port taken meanwhile: try another
                    return true;
                }
                // Ours, not some other server that took the port.
                raw(&plain.addr, None, &["INFO", "server"])
                    .map(|v| text(v).contains(&pid))
                    .unwrap_or(false)
            });
            if !exited {
                return plain;
            }
        }
        panic!("could not start a plain redis-server on a free port");
    }

    fn at(&self) -> String {
        self.addr.to_string()
    }

    fn cmd(&self, args: &[&str]) -> redis::Value {
        raw(&self.addr, None, args).unwrap()
    }
}

impl Drop for PlainRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Malformed addresses, slot lists and timeouts are refused before any node is
/// contacted: the nodes named are dead ports, so a check that ran late, or not at
/// all, would report a connection error instead.
#[test]
fn malformed_arguments_are_refused_before_connecting() {
    let held = (dead_port(), dead_port());
    let (d1, d2) = (held.0.addr(), held.1.addr());

    // Addresses: parsed by clap (usage error, exit 2), naming the bad value.
    let bad_addrs = [
        ("foo", "invalid address 'foo': expected HOST:PORT"),
        ("host:0", "port 0 is out of range 1..65535"),
        ("host:99999", "port 99999 is out of range 1..65535"),
        ("host:x", "port 'x' is not a number"),
        (":7000", "the host is empty"),
        ("[::1]7000", "invalid address '[::1]7000'"),
    ];
    for (bad, why) in bad_addrs {
        let shapes: Vec<Vec<&str>> = vec![
            vec!["start", bad],
            vec!["start_multi", &d1, bad],
            vec!["join", bad, &d1],
            vec!["join", &d1, bad],
            vec!["join_no_load", &d1, bad],
            vec!["replicate", bad, &d1],
            vec!["replicate", &d1, bad],
            vec!["quit", bad],
            vec!["shutdown", bad],
            vec!["fix", bad],
            vec!["list", bad],
            vec!["migrate_slots", bad, &d1, "0"],
            vec!["migrate_slots", &d1, bad, "0"],
            vec!["rescue", &d1, bad],
        ];
        for args in shapes {
            let run = Run::from(bin().args(&args).output().unwrap());
            check(&run, &args, USAGE_ERROR, &format!("invalid value '{bad}'"));
            run.fails_with(why);
        }
    }

    // Slot lists: checked by the tool before connecting (exit 1).
    let bad_slots: &[(&[&str], &str)] = &[
        (&["16384"], "slot 16384 is out of range 0..16383"),
        (&["0-16384"], "slot 16384 is out of range 0..16383"),
        (&["0", "2", "16384"], "slot 16384 is out of range 0..16383"),
        (&["5-3"], "malformed slot range '5-3': 5 is greater than 3"),
        (&["x"], "malformed slot list item 'x'"),
        (&["0", "x"], "malformed slot list item 'x'"),
        (&["1-"], "malformed slot list item '1-'"),
        (&[""], "empty slot list"),
        (&[","], "empty slot list"),
    ];
    for (slots, why) in bad_slots {
        let mut args = vec!["migrate_slots", &d1, &d2];
        args.extend_from_slice(slots);
        refused_alone(&args, TOOL_ERROR, why);
    }
    // A slot list starting with a dash reads as an unknown option: a usage error.
    refused_alone(&["migrate_slots", &d1, &d2, "-1"], USAGE_ERROR, "'-1'");
    // No slot list at all: clap's usage error.
    refused_alone(
        &["migrate_slots", &d1, &d2],
        USAGE_ERROR,
        "the following required arguments were not provided",
    );

    // Timeouts: zero, negative, not a number, infinite.
    let positive = "--timeout must be a positive number of seconds";
    for flag in [
        "--timeout=0",
        "--timeout=0.0",
        "--timeout=-0",
        "--timeout=-1",
        "--timeout=-0.5",
        "--timeout=nan",
        "--timeout=inf",
    ] {
        refused_alone(&[flag, "list", &d1], TOOL_ERROR, positive);
        refused_alone(&["list", &d1, flag], TOOL_ERROR, positive);
    }
    refused_alone(&["--timeout", "0", "list", &d1], TOOL_ERROR, positive);
    refused_alone(
        &["--timeout", "0", "migrate_slots", &d1, &d2, "0"],
        TOOL_ERROR,
        positive,
    );
    // `--timeout -1` (separate argument) reaches the tool's own check too.
    refused_alone(&["--timeout", "-1", "list", &d1], TOOL_ERROR, positive);
    refused_alone(&["--timeout", "soon", "list", &d1], USAGE_ERROR, "'soon'");

    // --max-slots 0 is refused before the node is contacted.
    refused_alone(
        &["start", &d1, "--max-slots", "0"],
        TOOL_ERROR,
        "--max-slots must be at least 1",
    );
}

/// A node nobody listens on is named, with the reason, by every command.
#[test]
fn unreachable_node_is_named_by_every_command() {
    let held = dead_port();
    let port = held.port;
    for host in ["127.0.0.1", "localhost"] {
        let dead = format!("{host}:{port}");
        let d = dead.as_str();
        let why = format!(
            "cannot connect to {dead}: connection refused (is redis-server running there?)"
        );
        let cases: [&[&str]; 12] = [
            &["start", d],
            &["start_multi", d],
            &["join", d, d],
            &["join_no_load", d, d],
            &["replicate", d, d],
            &["quit", d],
            &["shutdown", d],
            &["fix", d],
            &["list", d],
            &["list", "--json", d],
            &["migrate_slots", d, d, "0"],
            &["rescue", d, d],
        ];
        for args in cases {
            refused_alone(args, TOOL_ERROR, &why);
        }
    }
}

/// A redis-server started without cluster support is refused with that reason, as a
/// node to start, to join, to read, or to act on; the cluster and the plain server
/// keep what they had.
#[test]
fn node_not_cluster_enabled_is_refused() {
    let plain = PlainRedis::start();
    let p = plain.at();
    let _: () = redis::from_redis_value(plain.cmd(&["SET", "plain-key", "plain-value"])).unwrap();

    let lab = lab(2);
    redis_trib::ops::start(&mut lab.backend(), &lab.addr(0), 16384).expect("start");
    let (a0, a1) = (lab.at(0), lab.at(1));
    let why = format!("{p} is not cluster-enabled (start it with cluster-enabled yes)");

    refused(&lab, &["start", &p], &why);
    // The free node given first is left free.
    refused(&lab, &["start_multi", &a1, &p], &why);
    refused(&lab, &["join", &a0, &p], &why);
    refused(&lab, &["join_no_load", &a0, &p], &why);
    refused(&lab, &["replicate", &a0, &p], &why);
    refused(&lab, &["replicate", &p, &a1], &why);
    refused(&lab, &["join", &p, &a1], &why);
    refused(&lab, &["quit", &p], &why);
    refused(&lab, &["shutdown", &p], &why);
    refused(&lab, &["fix", &p], &why);
    refused(&lab, &["list", &p], &why);
    refused(&lab, &["migrate_slots", &p, &a0, "0"], &why);
    refused(&lab, &["migrate_slots", &a0, &p, "0"], &why);
    uncover_slot(&lab, 1, 0);
    refused(&lab, &["rescue", &a0, &p], &why);

    let keys: i64 = redis::from_redis_value(plain.cmd(&["DBSIZE"])).unwrap();
    assert_eq!(keys, 1, "the plain server lost or gained keys");
    let v: String = redis::from_redis_value(plain.cmd(&["GET", "plain-key"])).unwrap();
    assert_eq!(v, "plain-value");
}

/// One cluster (two masters with keys, a replica of the first) and one free node:
/// members are refused where a free node is needed, the free node is refused where a
/// member is needed, and every role, slot and timeout check refuses without a trace.
#[test]
fn cluster_preconditions_leave_the_cluster_untouched() {
    let lab = lab(4);
    lab.cluster(2);
    let kv = lab.write_keys(0, "err", 100);
    redis_trib::ops::replicate(&mut lab.backend(), &lab.addr(0), &lab.addr(2)).expect("replicate");
    poll(30, "the replica to copy its master's keys", || {
        // None while the replica is still loading (or the reply is an error).
        let dbsize = |i| {
            let v = lab.cmd(i, &["DBSIZE"]).ok()?;
            redis::from_redis_value::<i64>(v).ok()
        };
        matches!((dbsize(2), dbsize(0)), (Some(r), Some(m)) if r == m)
    });
    let (a0, a1, a2, a3) = (lab.at(0), lab.at(1), lab.at(2), lab.at(3));
    let port0 = lab.addr(0).port;

    // Members where a free node is needed.
    let member = |a: &str| format!("{a} is already in a cluster (it knows 2 other nodes)");
    refused(&lab, &["start", &a1], &member(&a1));
    refused(&lab, &["start", &a2], &member(&a2));
    // Every node is checked before any is touched: the free node a3 stays free.
    refused(&lab, &["start_multi", &a3, &a1], &member(&a1));
    refused(&lab, &["join", &a0, &a1], &member(&a1));
    refused(&lab, &["join", &a0, &a2], &member(&a2));
    refused(&lab, &["join_no_load", &a0, &a1], &member(&a1));
    refused(&lab, &["replicate", &a0, &a1], &member(&a1));
    refused(&lab, &["replicate", &a1, &a2], &member(&a2));
    refused(&lab, &["replicate", &a0, &a0], &member(&a0));
    // A healthy cluster has nothing to rescue, and the free node stays free.
    refused(
        &lab,
        &["rescue", &a0, &a3],
        &format!("the cluster of {a0} has no failed or uncovered slots; nothing to rescue"),
    );

    // The free node where a member is needed.
    let free = format!("{a3} is not in a cluster (it knows no other node and serves no slot)");
    refused(&lab, &["join", &a3, &a0], &free);
    refused(&lab, &["join_no_load", &a3, &a0], &free);
    refused(&lab, &["replicate", &a3, &a0], &free);
    refused(&lab, &["rescue", &a3, &a0], &free);
    refused(&lab, &["quit", &a3], &free);
    refused(&lab, &["shutdown", &a3], &free);
    refused(&lab, &["fix", &a3], &free);
    refused(&lab, &["list", &a3], &free);
    refused(&lab, &["list", "--json", &a3], &free);
    refused(&lab, &["migrate_slots", &a3, &a0, "0"], &free);
    refused(&lab, &["migrate_slots", &a0, &a3, "0"], &free);

    // A dead node to add.
    let held = dead_port();
    let dead = held.addr();
    let cannot = format!("cannot connect to {dead}: connection refused");
    refused(&lab, &["join", &a0, &dead], &cannot);
    refused(&lab, &["join_no_load", &a0, &dead], &cannot);
    refused(&lab, &["replicate", &a0, &dead], &cannot);
    refused(&lab, &["migrate_slots", &a0, &dead, "0"], &cannot);

    // Shutdown is for the last node only; quit keeps masters with replicas.
    refused(
        &lab,
        &["shutdown", &a1],
        &format!("{a1} is not the last node of its cluster (it knows 2 other nodes)"),
    );
    refused(
        &lab,
        &["shutdown", &a2],
        &format!("{a2} is not the last node of its cluster (it knows 2 other nodes)"),
    );
    refused(
        &lab,
        &["quit", &a0],
        &format!("{a0} is a master that still has replicas ({a2}); quit them first"),
    );

    // migrate_slots: same node (also spelled two ways), slots not held, replicas.
    let id0 = lab.id(0);
    refused(
        &lab,
        &["migrate_slots", &a0, &a0, "0"],
        &format!(
            "source {a0} and destination {a0} are the same node ({})",
            &id0[..8]
        ),
    );
    let local0 = format!("localhost:{port0}");
    refused(
        &lab,
        &["migrate_slots", &local0, &a0, "0-10"],
        &format!(
            "source {local0} and destination {a0} are the same node ({})",
            &id0[..8]
        ),
    );
    refused(
        &lab,
        &["migrate_slots", &a0, &a1, "0", "8192-8193", "9000"],
        &format!("{a0} does not hold slots 8192-8193,9000"),
    );
    refused(
        &lab,
        &["migrate_slots", &a1, &a0, "0-8191"],
        &format!("{a1} does not hold slots 0-8191"),
    );
    refused(
        &lab,
        &["migrate_slots", &a2, &a1, "0"],
        &format!("source {a2} is a replica; slots are served by its master"),
    );
    refused(
        &lab,
        &["migrate_slots", &a1, &a2, "8192"],
        &format!("destination {a2} is a replica; slots can only move to a master"),
    );

    // A bad timeout is refused before anything is done, wherever the flag goes.
    let positive = "--timeout must be a positive number of seconds";
    refused(&lab, &["--timeout", "0", "quit", &a1], positive);
    refused(&lab, &["quit", &a1, "--timeout=-1"], positive);
    refused(&lab, &["--timeout=0", "join", &a0, &a3], positive);
    refused(
        &lab,
        &["migrate_slots", "--timeout", "0", &a0, &a1, "0"],
        positive,
    );
    refused(&lab, &["--timeout", "-1", "quit", &a1], positive);

    // Nothing was lost along the way.
    lab.assert_keys(0, &kv);

    // A cluster with an uncovered slot: rescue still wants a free node, and the
    // health check refuses to add or remove nodes.
    uncover_slot(&lab, 3, 16383);
    refused(&lab, &["rescue", &a0, &a1], &member(&a1));
    refused(&lab, &["rescue", &a0, &a2], &member(&a2));
    refused(&lab, &["rescue", &a2, &a0], &member(&a0));
    refused(
        &lab,
        &["join", &a0, &a3],
        "cannot add a node: slots 16383 are not served by any node; run `redis-trib rescue` first",
    );
    refused(
        &lab,
        &["join_no_load", &a0, &a3],
        "cannot add a node: slots 16383 are not served by any node",
    );
    refused(
        &lab,
        &["quit", &a2],
        &format!("cannot remove {a2}: slots 16383 are not served by any node"),
    );
}

/// Two separate single-node clusters and a free node holding a key: nodes of
/// different clusters cannot trade slots, a last node can only be shut down, and
/// only when it holds no keys, and a node that holds keys or slots cannot join.
#[test]
fn separate_clusters_last_nodes_and_nodes_with_data() {
    let lab = lab(3);
    redis_trib::ops::start(&mut lab.backend(), &lab.addr(0), 16384).expect("start node 0");
    redis_trib::ops::start(&mut lab.backend(), &lab.addr(1), 16384).expect("start node 1");
    let kv = lab.write_keys(0, "last", 20);
    let (a0, a1, a2) = (lab.at(0), lab.at(1), lab.at(2));
    let (id0, id1) = (lab.id(0), lab.id(1));

    // Different clusters, both ways.
    refused(
        &lab,
        &["migrate_slots", &a0, &a1, "0"],
        &format!(
            "{a0} and {a1} are not in the same cluster ({a0} does not know node {})",
            &id1[..8]
        ),
    );
    refused(
        &lab,
        &["migrate_slots", &a1, &a0, "100-200"],
        &format!(
            "{a1} and {a0} are not in the same cluster ({a1} does not know node {})",
            &id0[..8]
        ),
    );

    // A node that serves slots is not free, even alone.
    let serves = format!("{a1} already serves slots 0-16383; use a free node");
    refused(&lab, &["start", &a1], &serves);
    refused(&lab, &["start_multi", &a2, &a1], &serves);
    refused(&lab, &["join", &a0, &a1], &serves);
    refused(&lab, &["join_no_load", &a0, &a1], &serves);
    refused(&lab, &["replicate", &a0, &a1], &serves);

    // The last node: quit refuses, shutdown refuses while it holds keys.
    refused(
        &lab,
        &["quit", &a0],
        &format!("{a0} is the last node of its cluster; use `shutdown` to dissolve the cluster"),
    );
    refused(
        &lab,
        &["shutdown", &a0],
        &format!("{a0} still holds 20 keys; delete them first (shutdown never drops data)"),
    );
    lab.assert_keys(0, &kv);
    assert_eq!(lab.slots_of(0).len(), 16384);

    // A free node holding a key cannot become part of a cluster.
    put_key_on_free_node(&lab, 2, "lonely");
    let holds = format!("{a2} holds 1 keys; a node must be empty to join a cluster");
    refused(&lab, &["start", &a2], &holds);
    refused(&lab, &["start_multi", &a2], &holds);
    refused(&lab, &["join", &a0, &a2], &holds);
    refused(&lab, &["join_no_load", &a0, &a2], &holds);
    refused(&lab, &["replicate", &a0, &a2], &holds);
    uncover_slot(&lab, 1, 0);
    refused(&lab, &["rescue", &a0, &a2], &holds);
    refused(&lab, &["rescue", &a0, &a1], &serves);
    let keys: i64 = redis::from_redis_value(lab.cmd(2, &["DBSIZE"]).unwrap()).unwrap();
    assert_eq!(keys, 1, "the free node's key is gone");
}

/// Options after the slot list are options, as after any other positional argument
/// (the usage line is `migrate_slots [OPTIONS] <SRC> <DST> <SLOTS>...`). The nodes are
/// dead ports: an accepted option leads to the connection error or its own check.
#[test]
fn options_after_the_slot_list_are_options() {
    let held = (dead_port(), dead_port());
    let (d1, d2) = (held.0.addr(), held.1.addr());
    refused_alone(
        &["migrate_slots", &d1, &d2, "0", "--timeout", "0"],
        TOOL_ERROR,
        "--timeout must be a positive number of seconds",
    );
    let cannot = format!("cannot connect to {d1}: connection refused");
    refused_alone(
        &["migrate_slots", &d1, &d2, "0-5", "--replace"],
        TOOL_ERROR,
        &cannot,
    );
    refused_alone(
        &["migrate_slots", &d1, &d2, "0", "--quiet"],
        TOOL_ERROR,
        &cannot,
    );
}

/// Numbers and files that used to panic end in one `error:` line naming what is
/// wrong, and a closed stdout ends a run quietly with exit 0 (as `| head -1` does).
#[test]
fn bad_input_is_refused_in_one_line_never_a_panic() {
    let held = [0; 3].map(|_| dead_port());
    let [d1, d2, d3] = held.each_ref().map(DeadPort::addr);
    refused_alone(
        &["--timeout", "1e30", "list", &d1],
        TOOL_ERROR,
        "--timeout must be a positive number of seconds, at most 1e9 (got 1e30)",
    );
    refused_alone(
        &[
            "create",
            &d1,
            &d2,
            &d3,
            "--replicas",
            &usize::MAX.to_string(),
        ],
        TOOL_ERROR,
        "make 0 masters; a cluster needs at least 3 masters",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let lab_dir = dir.path().join("lab");
    let lab_dir_arg = lab_dir.to_str().expect("utf-8 path");
    refused_alone(
        &["lab", "up", "3", "--base-port", "60000", "--dir", lab_dir_arg],
        TOOL_ERROR,
        "--base-port 60000: node 3 would need port 60002, but ports (and their bus ports, +10000) end at 65535; choose a base port of at most 55533",
    );
    assert!(!lab_dir.exists(), "a refused lab up created {lab_dir:?}");

    // Topology snapshots (`run --topology`): every bad field is named, with the file.
    let id = |c: char| c.to_string().repeat(40);
    let node = |c: char, port: u16, slots: &str| {
        serde_json::json!({
            "node_id": id(c), "host": "127.0.0.1", "port": port, "cport": null,
            "hostname": null, "flags": ["master"], "role_in_cluster": "master",
            "master_id": null, "ping_sent": 0, "pong_recv": 0, "config_epoch": 1,
            "connected": true, "assigned_slots": [slots], "slots_migrating": [],
            "slots_importing": []
        })
    };
    let good = serde_json::json!({
        "entry_id": id('a'),
        "nodes": [node('a', 7000, "0-5460"), node('b', 7001, "5461-10922"), node('c', 7002, "10923-16383")],
        "keys": {}, "states": {}, "unreachable": {}
    });
    let script = dir.path().join("check.rhai");
    std::fs::write(&script, "print(`healthy=${check(ARGS[0]).healthy}`);").expect("write script");
    let file = dir.path().join("topology.json");
    let run_on = |doc: &serde_json::Value| {
        std::fs::write(&file, doc.to_string()).expect("write topology");
        let args = [
            "run",
            script.to_str().expect("utf-8 path"),
            "127.0.0.1:7000",
            "--topology",
            file.to_str().expect("utf-8 path"),
        ];
        (
            Run::from(bin().args(args).output().expect("run")),
            args.map(String::from),
        )
    };
    let (run, _) = run_on(&good);
    assert!(run.ok().contains("healthy=true"), "{}", run.stderr);
    let bad: Vec<(&str, serde_json::Value, &str)> = vec![
        ("/nodes/1/node_id", "aé".repeat(20).into(), "topology.json: nodes[1].node_id: node id \"aéaé"),
        ("/nodes/1/node_id", "b".into(), "topology.json: nodes[1].node_id: node id \"b\" is not 40 lowercase hexadecimal characters"),
        (
            "/nodes/2/slots_migrating",
            serde_json::json!([[65535, id('a')]]),
            "topology.json: nodes[2].slots_migrating[0]: slot 65535 is out of range 0..16383",
        ),
        ("/nodes/2/port", 7001.into(), "topology.json: nodes[2]: address 127.0.0.1:7001 is also nodes[1]'s"),
        ("/nodes/0/assigned_slots", serde_json::json!(["0-16384"]), "topology.json: nodes[0].assigned_slots[0]: slot 16384 is out of range 0..16383"),
    ];
    for (pointer, value, why) in bad {
        let mut doc = good.clone();
        *doc.pointer_mut(pointer).expect("field") = value;
        let (run, args) = run_on(&doc);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check(&run, &args, TOOL_ERROR, why);
    }

    // A reader that went away: data printing ends quietly (exit 0), no panic.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = bin().arg("doc").stdout(writer).output().expect("run doc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "doc into a closed pipe: {stderr}"
    );
    assert!(stderr.is_empty(), "doc into a closed pipe: {stderr}");
}

/// Reading many views at once (concurrently, live) keeps one result per node in
/// order: a node nobody listens on is an error naming it, the others read fine, and
/// reading again reuses what worked.
#[test]
fn views_read_together_report_each_node() {
    use redis_trib::backend::Backend;
    let held = dead_port();
    let lab = lab(3);
    let dead: redis_trib::addr::Addr = format!("127.0.0.1:{}", held.port).parse().unwrap();
    let addrs = vec![lab.addr(0), dead.clone(), lab.addr(1), lab.addr(2)];
    let mut b = lab.backend();
    for _ in 0..2 {
        let read = b.views(&addrs);
        assert_eq!(read.len(), 4);
        for (i, r) in read.iter().enumerate() {
            match (i, r) {
                (1, Err(e)) => assert!(format!("{e:#}").contains(&dead.to_string()), "{e:#}"),
                (1, Ok(_)) => panic!("the dead node was read"),
                (_, Ok(v)) => assert_eq!(v.addr, addrs[i]),
                (_, Err(e)) => panic!("{} not read: {e:#}", addrs[i]),
            }
        }
        let pinged = b.execute_many(&addrs, &[b"PING".to_vec()]);
        assert_eq!(pinged.len(), 4);
        assert!(pinged[1].is_err());
        for i in [0, 2, 3] {
            assert!(pinged[i].is_ok(), "{}: {:?}", addrs[i], pinged[i]);
        }
    }
}
