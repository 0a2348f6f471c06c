//! The sandbox's bounds beyond Rhai's own limits: the memory a script holds (counted
//! by [`super::memory`], wherever its values live), wall-clock time, the directories
//! scripts may write under, and the nodes they may reach.
//!
//! Time: a watchdog thread per run raises the process's stop flag at the deadline, so
//! whatever runs stops at its next safe point (an operation between slot batches, a
//! wait loop, `sleep`, the next script operation) and the error says which limit.
//!
//! Network: scripts reach the nodes named on the command line (the script's arguments
//! that are addresses, the shell's cluster), every node those know (looked up again
//! when an address is not known yet), and the hosts allowed with `--allow-host`.

use crate::addr::Addr;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A host (and maybe one port) scripts may reach: `--allow-host HOST[:PORT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    /// The host name or IP, as the script writes it (compared without case).
    pub host: String,
    /// Only this port; `None`: any port.
    pub port: Option<u16>,
}

impl HostRule {
    /// Parses `HOST` or `HOST:PORT` (IPv6 in brackets with a port: `[::1]:7000`).
    pub fn parse(text: &str) -> Result<HostRule, String> {
        let text = text.trim();
        if let Ok(a) = Addr::parse(text) {
            if text.contains(':') && (!a.host.contains(':') || text.starts_with('[')) {
                return Ok(HostRule {
                    host: a.host,
                    port: Some(a.port),
                });
            }
        }
        let host = text.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(format!(
                "--allow-host {text}: expected HOST or HOST:PORT, e.g. 10.0.0.5 or 10.0.0.5:7000"
            ));
        }
        Ok(HostRule {
            host: host.to_string(),
            port: None,
        })
    }

    /// Whether `addr` matches.
    pub fn allows(&self, addr: &Addr) -> bool {
        self.host.eq_ignore_ascii_case(&addr.host) && self.port.is_none_or(|p| p == addr.port)
    }
}

/// What the sandbox enforces, and its running state (one per engine).
pub struct Sandbox {
    max_memory: usize,
    baseline: AtomicUsize,
    max_seconds: Option<u64>,
    expired: Arc<AtomicBool>,
    over_memory: AtomicBool,
    writable: Vec<PathBuf>,
    hosts: Vec<HostRule>,
    seeds: Mutex<Vec<Addr>>,
    known: Mutex<HashSet<(String, u16)>>,
}

/// Stops the watchdog of a run when dropped (see [`Sandbox::start`]).
pub struct Watch {
    _stop: Option<Sender<()>>,
}

impl Sandbox {
    /// A sandbox: `max_memory` bytes the process may grow by while a script runs,
    /// `max_seconds` per run, the directories scripts may write under and the hosts
    /// they may reach besides the clusters they are given.
    pub fn new(
        max_memory: usize,
        max_seconds: Option<u64>,
        writable: &[PathBuf],
        hosts: Vec<HostRule>,
    ) -> Sandbox {
        Sandbox {
            max_memory,
            baseline: AtomicUsize::new(super::memory::allocated()),
            max_seconds,
            expired: Arc::new(AtomicBool::new(false)),
            over_memory: AtomicBool::new(false),
            // A directory that does not exist (yet) is kept as given, made absolute.
            writable: writable
                .iter()
                .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| absolute(d)))
                .collect(),
            hosts,
            seeds: Mutex::new(Vec::new()),
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Starts a run: memory is counted from now, and with a time limit a watchdog
    /// raises the stop flag at the deadline (until the returned guard is dropped).
    pub fn start(&self) -> Watch {
        self.baseline
            .store(super::memory::allocated(), Ordering::Relaxed);
        self.start_timer()
    }

    /// Starts a run's time limit only (a shell input: what the session already holds
    /// keeps counting against the memory budget).
    pub fn start_timer(&self) -> Watch {
        self.expired.store(false, Ordering::SeqCst);
        self.over_memory.store(false, Ordering::SeqCst);
        let Some(secs) = self.max_seconds else {
            return Watch { _stop: None };
        };
        let (tx, rx) = channel::<()>();
        let expired = self.expired.clone();
        let spawned = std::thread::Builder::new()
            .name("script-deadline".into())
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(secs)) {
                    expired.store(true, Ordering::SeqCst);
                    crate::interrupt::request();
                }
            });
        Watch {
            _stop: spawned.ok().map(|_| tx),
        }
    }

    /// The error of a script stopped by a limit now: memory or time; `None` while
    /// within bounds (the engine's progress hook asks before every operation).
    pub fn exceeded(&self) -> Option<String> {
        if self.timed_out() {
            return Some(self.time_message());
        }
        let used = super::memory::allocated().saturating_sub(self.baseline.load(Ordering::Relaxed));
        (used > self.max_memory).then(|| {
            self.over_memory.store(true, Ordering::SeqCst);
            format!(
                "the script was stopped: it holds more than --max-memory {} MiB (values kept in variables, closures and arrays count)",
                self.max_memory >> 20
            )
        })
    }

    /// Whether this run was stopped for holding more than its memory budget.
    pub fn memory_exceeded(&self) -> bool {
        self.over_memory.load(Ordering::SeqCst)
    }

    /// Whether this run passed its time limit.
    pub fn timed_out(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    /// What a script stopped by its time limit is told.
    pub fn time_message(&self) -> String {
        format!(
            "the script was stopped: it ran longer than --max-seconds {}",
            self.max_seconds.unwrap_or(0)
        )
    }

    /// Where a script may write `dir`: the directory itself (resolved through any
    /// symbolic link of the part that exists) when it lies under an `--allow-write`
    /// directory, else the error saying so.
    pub fn writable(&self, what: &str, dir: &str) -> Result<PathBuf, String> {
        let refuse = || {
            let allowed = if self.writable.is_empty() {
                "none given".to_string()
            } else {
                self.writable
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{what}: writing to {dir} is not allowed: scripts write only under directories given with --allow-write DIR ({allowed})"
            )
        };
        let resolved = resolve(Path::new(dir)).ok_or_else(refuse)?;
        if self.writable.iter().any(|w| resolved.starts_with(w)) {
            Ok(resolved)
        } else {
            Err(refuse())
        }
    }

    /// Adds nodes named on the command line (and what they know) to what scripts reach.
    pub fn allow_cluster(&self, addrs: &[Addr]) {
        if let Ok(mut seeds) = self.seeds.lock() {
            seeds.extend(addrs.iter().cloned());
        }
    }

    /// The nodes named on the command line.
    pub fn seeds(&self) -> Vec<Addr> {
        self.seeds.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether `addr` may be reached without looking anything up: a node named on the
    /// command line, one already discovered, or an allowed host.
    pub fn reachable(&self, addr: &Addr) -> bool {
        let key = (addr.host.to_ascii_lowercase(), addr.port);
        self.hosts.iter().any(|h| h.allows(addr))
            || self.seeds.lock().is_ok_and(|s| {
                s.iter()
                    .any(|a| (a.host.to_ascii_lowercase(), a.port) == key)
            })
            || self.known.lock().is_ok_and(|k| k.contains(&key))
    }

    /// Records nodes a cluster named on the command line knows.
    pub fn learn(&self, nodes: impl IntoIterator<Item = Addr>) {
        if let Ok(mut known) = self.known.lock() {
            known.extend(
                nodes
                    .into_iter()
                    .map(|a| (a.host.to_ascii_lowercase(), a.port)),
            );
        }
    }

    /// The error for an address scripts may not reach.
    pub fn unreachable_message(&self, what: &str, addr: &Addr) -> String {
        let host = if addr.host.contains(':') {
            format!("[{}]", addr.host)
        } else {
            addr.host.clone()
        };
        format!(
            "{what}: {addr} is not a node of the clusters named on the command line; scripts reach only those (and the nodes they know) unless allowed with --allow-host {host} or --allow-host {host}:{}",
            addr.port
        )
    }
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// `path` absolute, its longest existing part resolved through symbolic links; `None`
/// when the part that does not exist yet climbs (`..`).
fn resolve(path: &Path) -> Option<PathBuf> {
    let path = absolute(path);
    let mut existing = path.clone();
    let mut rest: Vec<Component> = Vec::new();
    let comps: Vec<Component> = path.components().collect();
    let mut keep = comps.len();
    while keep > 0 {
        let head: PathBuf = comps[..keep].iter().collect();
        if let Ok(real) = std::fs::canonicalize(&head) {
            existing = real;
            rest = comps[keep..].to_vec();
            break;
        }
        keep -= 1;
    }
    if keep == 0 {
        return None;
    }
    let mut out = existing;
    for c in rest {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_match_host_and_port() {
        let any = HostRule::parse("10.0.0.5").unwrap();
        let one = HostRule::parse("10.0.0.5:7000").unwrap();
        let a = Addr::parse("10.0.0.5:7001").unwrap();
        assert!(any.allows(&a));
        assert!(!one.allows(&a));
        assert!(one.allows(&Addr::parse("10.0.0.5:7000").unwrap()));
        assert!(HostRule::parse("Redis.Example")
            .unwrap()
            .allows(&Addr::parse("redis.example:1").unwrap()));
        assert!(HostRule::parse("::1")
            .unwrap()
            .allows(&Addr::parse("[::1]:7000").unwrap()));
        assert_eq!(HostRule::parse("[::1]:7000").unwrap().port, Some(7000));
        assert!(HostRule::parse("a b").is_err());
        assert!(HostRule::parse("").is_err());
    }

    #[test]
    fn writes_go_only_under_allowed_directories() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("backups");
        std::fs::create_dir(&allowed).unwrap();
        let other = root.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let s = Sandbox::new(1 << 30, None, std::slice::from_ref(&allowed), Vec::new());
        let inside = allowed.join("new/today");
        assert_eq!(
            s.writable("backup_cluster", inside.to_str().unwrap())
                .unwrap(),
            std::fs::canonicalize(&allowed).unwrap().join("new/today")
        );
        for bad in [
            other.join("x"),
            allowed.join("../other/x"),
            allowed.join("new/../../other"),
            PathBuf::from("/etc/x"),
        ] {
            let e = s
                .writable("backup_cluster", bad.to_str().unwrap())
                .unwrap_err();
            assert!(e.contains("--allow-write"), "{e}");
        }
        // A link inside the allowed directory that points out of it is followed.
        std::os::unix::fs::symlink(&other, allowed.join("link")).unwrap();
        assert!(s
            .writable("backup_cluster", allowed.join("link/x").to_str().unwrap())
            .is_err());
        let none = Sandbox::new(1 << 30, None, &[], Vec::new());
        let e = none
            .writable("backup_cluster", inside.to_str().unwrap())
            .unwrap_err();
        assert!(e.contains("none given"), "{e}");
    }

    #[test]
    fn nodes_named_known_or_allowed_are_reachable() {
        let s = Sandbox::new(
            1 << 30,
            None,
            &[],
            vec![HostRule::parse("10.1.1.1").unwrap()],
        );
        let a = |t: &str| Addr::parse(t).unwrap();
        assert!(!s.reachable(&a("127.0.0.1:7000")));
        s.allow_cluster(&[a("127.0.0.1:7000")]);
        assert!(s.reachable(&a("127.0.0.1:7000")));
        assert!(!s.reachable(&a("127.0.0.1:7001")));
        s.learn([a("127.0.0.1:7001")]);
        assert!(s.reachable(&a("127.0.0.1:7001")));
        assert!(s.reachable(&a("10.1.1.1:9")));
        assert!(s
            .unreachable_message("execute", &a("10.9.9.9:6379"))
            .contains("--allow-host 10.9.9.9"));
    }

    #[test]
    fn memory_over_the_budget_is_reported() {
        let _turn = crate::script::memory::HEAVY.lock();
        let s = Sandbox::new(32 << 20, None, &[], Vec::new());
        let _w = s.start();
        let block = std::hint::black_box(vec![7u8; 96 << 20]);
        assert!(!s.memory_exceeded());
        let e = s.exceeded().expect("over the budget");
        assert!(e.contains("--max-memory 32 MiB"), "{e}");
        assert!(s.memory_exceeded(), "remembered for the shell");
        drop(block);
    }
}
