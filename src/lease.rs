//! The operation lease: at most one operation that changes a cluster runs at a time,
//! across processes and hosts.
//!
//! A lease is not a key (nothing is written into the user's keyspace): it is a set of
//! open connections, one to each live node of the cluster, each named with
//! `CLIENT SETNAME redis-trib-lease:<state>:<operation>:<host>:<pid>:<since>:<token>`
//! (the token tells one contender's connections from another's). So it
//! disappears with its holder: when the process dies, even by SIGKILL, the kernel
//! closes its sockets and the nodes free the named clients at once. A holder whose
//! host vanished without closing them (a partition, a powered-off machine) stops
//! sending its heartbeat `PING`s, and a contender treats a lease client idle for
//! more than [`STALE_AFTER`] as dead and kills it (its holder, should it wake, finds
//! its lease gone and stops at its next batch).
//!
//! Taking it: name a connection on every live node `try`, then list each node's
//! clients. A contender wins only if no node shows another lease client. Each node
//! runs one command at a time, so of two contenders registered on a common node, the
//! one that listed that node first saw only itself, and the other one saw it: they
//! cannot both win (if both see each other, both back off for a random while and try
//! again). Registering on every answering node, and needing more than half of them,
//! keeps that common node for any two contenders on one cluster.

use crate::addr::Addr;
use crate::conn::{ConnOpts, NodeConn};
use crate::error::{error, Kind};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of every lease client's name.
pub const PREFIX: &str = "redis-trib-lease";
/// A lease client idle for longer than this has lost its holder.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// How long a contender tries again before refusing because of a held lease (the
/// nodes free the clients of a holder that just exited within milliseconds).
pub const EXIT_GRACE: Duration = Duration::from_millis(300);
/// How long contenders that keep seeing each other (none holding yet) go on trying.
pub const CONTENTION: Duration = Duration::from_secs(5);
/// How often a holder pings its lease connections.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Who holds (or tries to take) a lease, as its client name says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// `held` once won, `try` while contending.
    pub state: String,
    /// The operation (`join`, `migrate_slots`, `run script.rhai`).
    pub op: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// Unix time (seconds) the holder started contending.
    pub since: u64,
    /// A random number of this contender: its own connections (two addresses of one
    /// node, say) are not rivals.
    pub token: u32,
}

impl Holder {
    /// This process, about to contend for `op`.
    pub fn me(op: &str) -> Holder {
        Holder {
            state: "try".into(),
            op: op.into(),
            host: hostname(),
            pid: std::process::id(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            token: fastrand::u32(..),
        }
    }

    /// The client name (`CLIENT SETNAME` allows no spaces: every part is sanitized).
    pub fn client_name(&self) -> String {
        format!(
            "{PREFIX}:{}:{}:{}:{}:{}:{}",
            self.state,
            sanitize(&self.op),
            sanitize(&self.host),
            self.pid,
            self.since,
            self.token
        )
    }

    /// Reads a client name written by [`Holder::client_name`].
    pub fn parse(name: &str) -> Option<Holder> {
        let rest = name.strip_prefix(PREFIX)?.strip_prefix(':')?;
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        let [state, op, host, pid, since, token] = parts.as_slice() else {
            return None;
        };
        Some(Holder {
            state: state.to_string(),
            op: op.to_string(),
            host: host.to_string(),
            pid: pid.parse().ok()?,
            since: since.parse().ok()?,
            token: token.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.since));
        write!(
            f,
            "`{}` on {} (pid {}), since {when}",
            self.op, self.host, self.pid
        )?;
        if self.state != "held" {
            f.write_str(", still taking it")?;
        }
        Ok(())
    }
}

fn sanitize(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "_".into()
    } else {
        clean
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// One client of a node's `CLIENT LIST`, as far as leases care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// `id=`.
    pub id: u64,
    /// `name=` (empty when unnamed).
    pub name: String,
    /// `idle=` seconds.
    pub idle: u64,
}

/// Parses `CLIENT LIST` output (lines of `field=value` pairs).
pub fn parse_client_list(text: &str) -> Vec<Client> {
    text.lines()
        .filter_map(|line| {
            let mut id = None;
            let mut name = String::new();
            let mut idle = 0;
            for field in line.split(' ') {
                match field.split_once('=') {
                    Some(("id", v)) => id = v.parse().ok(),
                    Some(("name", v)) => name = v.to_string(),
                    Some(("idle", v)) => idle = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            Some(Client {
                id: id?,
                name,
                idle,
            })
        })
        .collect()
}

/// Lease clients of other processes found on one node.
#[derive(Debug, Default)]
struct Seen {
    live: Vec<Holder>,
    stale: Vec<(u64, Holder)>,
}

fn others(clients: &[Client], me: Option<&Holder>) -> Seen {
    let mut seen = Seen::default();
    for c in clients {
        let Some(h) = Holder::parse(&c.name) else {
            continue;
        };
        if me.is_some_and(|me| me.token == h.token && me.pid == h.pid) {
            continue;
        }
        if Duration::from_secs(c.idle) > STALE_AFTER {
            seen.stale.push((c.id, h));
        } else {
            seen.live.push(h);
        }
    }
    seen
}

/// Who holds the lease of the cluster these nodes belong to, if anyone (read-only:
/// used to explain an open slot).
pub fn holder(opts: &ConnOpts, nodes: &[Addr]) -> Option<Holder> {
    nodes.iter().find_map(|a| {
        let mut c = NodeConn::open(a, opts).ok()?;
        let text: String = c.query(redis::cmd("CLIENT").arg("LIST")).ok()?;
        let mut live = others(&parse_client_list(&text), None).live;
        live.sort_by_key(|h| h.state != "held");
        live.into_iter().next()
    })
}

/// A held lease. Dropping it releases it (its connections close).
pub struct Lease {
    addrs: BTreeSet<Addr>,
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
    /// Who we are, as the nodes see it.
    pub holder: Holder,
}

impl Lease {
    /// Takes the lease on the cluster whose live nodes are `nodes`, for `op`. Another
    /// holder makes it fail at once (naming the holder) or, with a non-zero `wait`,
    /// try again until `wait` has passed.
    pub fn acquire(opts: &ConnOpts, op: &str, nodes: &[Addr], wait: Duration) -> Result<Lease> {
        let start = Instant::now();
        let mut me = Holder::me(op);
        let mut retries = 0u32;
        loop {
            match attempt(opts, &me, nodes)? {
                Attempt::Won(conns) => {
                    me.state = "held".into();
                    return Ok(Lease::start(me, conns));
                }
                Attempt::Lost(other) => {
                    let waited = start.elapsed();
                    // Two contenders that saw each other both back off and try
                    // again; only a lease already held is a reason to give up.
                    // A holder that just ended without releasing (its process
                    // exited) stays listed until the nodes free its clients: a
                    // moment's grace before refusing.
                    let patience = if other.state == "held" {
                        wait.max(EXIT_GRACE)
                    } else {
                        wait.max(CONTENTION)
                    };
                    if waited >= patience || crate::interrupt::requested() {
                        let message = if wait.is_zero() {
                            format!("the cluster is busy: {other} holds its lease; wait for it to finish, or use --wait-lease SECONDS")
                        } else {
                            format!("the cluster is still busy after waiting {:.0?}: {other} holds its lease", wait)
                        };
                        return Err(error(Kind::LeaseHeld {
                            holder: other.to_string(),
                            message,
                        }));
                    }
                    // Both may have seen each other: back off for a random while,
                    // longer each time (on a loaded machine an attempt itself takes
                    // long, and equal pauses would keep the two in step).
                    retries += 1;
                    let ceiling = 50u64 << retries.min(5);
                    let pause = Duration::from_millis(fastrand::u64(10..ceiling));
                    std::thread::sleep(pause.min(patience.saturating_sub(waited)));
                }
            }
        }
    }

    fn start(holder: Holder, conns: Vec<NodeConn>) -> Lease {
        let addrs = conns.iter().map(|c| c.addr().clone()).collect();
        let lost = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let flag = lost.clone();
        let name = holder.client_name();
        let heartbeat = std::thread::spawn(move || heartbeat(conns, &name, &rx, &flag));
        Lease {
            addrs,
            lost,
            stop: Some(tx),
            heartbeat: Some(heartbeat),
            holder,
        }
    }

    /// Whether the lease covers one of these nodes (a script's later operations on the
    /// same cluster reuse its lease).
    pub fn covers(&self, nodes: &[Addr]) -> bool {
        nodes.iter().any(|a| self.addrs.contains(a))
    }

    /// Whether the lease was lost while held (its connections were closed or killed
    /// on most nodes).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// A flag that turns true when the lease is lost (the engine checks it between
    /// batches).
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

/// Pings every lease connection each [`HEARTBEAT`] until told to stop; flags the
/// lease lost once at most half the connections still answer as ours.
fn heartbeat(mut conns: Vec<NodeConn>, name: &str, stop: &mpsc::Receiver<()>, lost: &AtomicBool) {
    let total = conns.len();
    // One stalled node must not hold up the pings of the others (their clients
    // would look idle, and stale, to a contender): it gets a short bound and, when
    // it does not answer in time, drops out of the lease.
    conns.retain_mut(|c| c.set_timeout(HEARTBEAT * 2).is_ok());
    let mut ping = redis::cmd("CLIENT");
    ping.arg("GETNAME");
    loop {
        match stop.recv_timeout(HEARTBEAT) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => {
                // Released: unname the connections before closing them, so the next
                // operation does not see this lease while the nodes are still
                // freeing the closed clients.
                let mut unname = redis::cmd("CLIENT");
                unname.arg("SETNAME").arg("");
                for c in &mut conns {
                    let _ = c.run(&unname);
                }
                return;
            }
        }
        // A killed client answers nothing (the connection is closed); a reconnect
        // would not be ours, so a failed connection is dropped for good.
        conns.retain_mut(|c| matches!(c.query::<Option<String>>(&ping), Ok(Some(n)) if n == name));
        if conns.len() * 2 <= total {
            lost.store(true, Ordering::SeqCst);
        }
    }
}

enum Attempt {
    Won(Vec<NodeConn>),
    Lost(Holder),
}

/// Nodes registered at once while taking a lease (one thread each).
const REGISTER_IN_PARALLEL: usize = 32;

/// One node's part of an attempt: our named connection and the other lease clients
/// it showed.
struct Registered {
    conn: NodeConn,
    seen: Seen,
}

/// Names a connection on `node` and lists the node's clients, in one round trip:
/// the node runs the pipeline in order, so the list comes after our name, which is
/// all the exclusion argument needs (see the module doc). Stale lease clients are
/// killed.
fn register(opts: &ConnOpts, node: &Addr, me: &Holder) -> Result<Registered> {
    let name = me.client_name();
    let mut conn = NodeConn::open(node, opts)?;
    let mut pipe = redis::pipe();
    pipe.cmd("CLIENT").arg("SETNAME").arg(&name);
    pipe.cmd("CLIENT").arg("LIST").arg("TYPE").arg("normal");
    let replies = conn.pipeline(&pipe)?;
    if let Some(e) = replies.iter().find_map(crate::conn::server_error) {
        bail!("{node}: cannot take the lease ({e}); the user needs CLIENT SETNAME, CLIENT LIST and CLIENT KILL");
    }
    let list: String = redis::from_redis_value_ref(&replies[1])
        .map_err(|e| anyhow!("{node}: unexpected CLIENT LIST reply: {e}"))?;
    let seen = others(&parse_client_list(&list), Some(me));
    for (stale, _) in &seen.stale {
        // Its holder stopped its heartbeat long ago: dead, or frozen. Kill the client
        // so a frozen holder, should it wake, finds its lease gone.
        let _ = conn.run(redis::cmd("CLIENT").arg("KILL").arg("ID").arg(*stale));
    }
    Ok(Registered { conn, seen })
}

fn attempt(opts: &ConnOpts, me: &Holder, nodes: &[Addr]) -> Result<Attempt> {
    let mut results: Vec<Result<Registered>> = Vec::with_capacity(nodes.len());
    for chunk in nodes.chunks(REGISTER_IN_PARALLEL) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|node| scope.spawn(|| register(opts, node, me)))
                .collect();
            for h in handles {
                results.push(
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a lease thread panicked"))),
                );
            }
        });
    }
    let mut conns = Vec::new();
    let mut failures = Vec::new();
    let mut found: Option<Holder> = None;
    for r in results {
        match r {
            Ok(Registered { conn, seen }) => {
                conns.push(conn);
                if let Some(h) = seen.live.into_iter().min_by_key(|h| h.state != "held") {
                    if found.as_ref().is_none_or(|f| f.state != "held") {
                        found = Some(h);
                    }
                }
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if let Some(other) = found {
        // Closing our connections withdraws our candidacy.
        return Ok(Attempt::Lost(other));
    }
    if conns.len() * 2 <= nodes.len() {
        bail!(
            "cannot take the cluster's lease: only {} of {} nodes answered ({})",
            conns.len(),
            nodes.len(),
            failures.join("; ")
        );
    }
    let held = Holder {
        state: "held".into(),
        ..me.clone()
    }
    .client_name();
    for c in &mut conns {
        c.run(redis::cmd("CLIENT").arg("SETNAME").arg(&held))?;
    }
    Ok(Attempt::Won(conns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_round_trips_through_its_client_name() {
        let h = Holder {
            state: "held".into(),
            op: "run my script.rhai".into(),
            host: "db ops:1".into(),
            pid: 4242,
            since: 1_764_000_000,
            token: 17,
        };
        let name = h.client_name();
        assert!(!name.contains(' '), "{name}");
        let back = Holder::parse(&name).expect("parses");
        assert_eq!(back.op, "run_my_script.rhai");
        assert_eq!(back.host, "db_ops_1");
        assert_eq!((back.pid, back.since), (4242, 1_764_000_000));
        assert_eq!(back.token, 17);
        assert!(Holder::parse("redis-trib-lease:held:x").is_none());
        assert!(Holder::parse("someone-else").is_none());
        assert!(back.to_string().contains("pid 4242"));
    }

    #[test]
    fn other_lease_clients_are_found_and_stale_ones_set_apart() {
        let me = Holder::me("join");
        let mine = me.client_name();
        // Our own connections (two addresses of one node) are not rivals; another
        // contender of the same process (another token) is.
        let sibling = Holder {
            token: me.token.wrapping_add(1),
            ..me.clone()
        }
        .client_name();
        let text = format!(
            "id=3 addr=127.0.0.1:1 name={mine} age=1 idle=0 flags=N\n\
             id=7 addr=127.0.0.1:5 name={mine} age=1 idle=0 flags=N\n\
             id=4 addr=127.0.0.1:2 name= age=9 idle=0 flags=N\n\
             id=5 addr=127.0.0.1:3 name=redis-trib-lease:held:fix:h:7:1:9 age=50 idle=40\n\
             id=6 addr=127.0.0.1:4 name=redis-trib-lease:try:quit:h:8:2:9 age=1 idle=1\n\
             id=8 addr=127.0.0.1:6 name={sibling} age=1 idle=0\n"
        );
        let clients = parse_client_list(&text);
        assert_eq!(clients.len(), 6);
        let seen = others(&clients, Some(&me));
        assert_eq!(seen.live.len(), 2);
        assert_eq!(seen.live[1].token, me.token.wrapping_add(1));
        let seen = others(&clients[..5], Some(&me));
        assert_eq!(seen.live.len(), 1);
        assert_eq!(seen.live[0].op, "quit");
        assert_eq!(seen.stale.len(), 1);
        assert_eq!(seen.stale[0].0, 5);
    }
}
