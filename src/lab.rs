//! A local lab of cluster-enabled `redis-server` processes on 127.0.0.1, each in its
//! own directory, tracked by pid (like Redis's create-cluster utility). Tests,
//! benchmarks and the README demo all use it.
//!
//! A [`Lab`] started for tests owns its processes: dropping it stops them, and
//! they also die with the thread that started them. A lab started from the command
//! line is detached: its state is saved in `lab.json` for `lab down` to stop it.

use crate::addr::Addr;
use crate::labcerts::LabCerts;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to start lab nodes.
#[derive(Clone, Debug)]
pub struct LabOpts {
    /// First port; `None` picks free ports at random (tests run in parallel).
    pub base_port: Option<u16>,
    /// `cluster-node-timeout` in milliseconds.
    pub node_timeout_ms: u64,
    /// `requirepass` (and `masterauth`) for every node.
    pub password: Option<String>,
    /// Stop the nodes when the starting thread ends (tests), instead of detaching.
    pub owned: bool,
    /// Extra `redis-server` arguments (`--name value` pairs).
    pub extra_args: Vec<String>,
    /// Serve TLS only (clients, cluster bus and replication), with certificates made
    /// for the lab (see [`LabCerts`]).
    pub tls: bool,
}

impl Default for LabOpts {
    fn default() -> Self {
        LabOpts {
            base_port: None,
            node_timeout_ms: 3000,
            password: None,
            owned: true,
            extra_args: Vec::new(),
            tls: false,
        }
    }
}

/// One lab node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabNode {
    /// Client port (the bus port is port + 10000).
    pub port: u16,
    /// Process id of its `redis-server`.
    pub pid: u32,
    /// Its working directory.
    pub dir: PathBuf,
}

impl LabNode {
    /// Its address.
    pub fn addr(&self) -> Addr {
        Addr::new("127.0.0.1", self.port)
    }
}

/// A set of lab nodes under one directory.
#[derive(Debug, Serialize, Deserialize)]
pub struct Lab {
    /// The lab's directory.
    pub dir: PathBuf,
    /// Running nodes.
    pub nodes: Vec<LabNode>,
    /// The certificates, when the nodes serve TLS.
    #[serde(default)]
    pub tls: Option<LabCerts>,
    #[serde(skip)]
    opts: Option<LabOpts>,
    #[serde(skip)]
    children: Vec<std::process::Child>,
}

/// The server program: `$REDIS_TRIB_SERVER` (how the tests run on each server of the
/// matrix: Redis 8, Valkey), else `$REDIS_SERVER`, else `redis-server` from `PATH`.
pub fn redis_server_path() -> Result<PathBuf> {
    for var in ["REDIS_TRIB_SERVER", "REDIS_SERVER"] {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "redis-server not found in PATH: install it with `sudo apt-get install -y redis-server` \
                 (Debian/Ubuntu; `./dev setup` does it), or point REDIS_TRIB_SERVER at the binary"
            )
        })
}

const STATE_FILE: &str = "lab.json";

impl Lab {
    /// Starts `count` nodes under `dir` (created if needed).
    pub fn start(dir: &Path, count: usize, opts: LabOpts) -> Result<Lab> {
        if let (Some(base), Some(last)) = (opts.base_port, count.checked_sub(1)) {
            consecutive_port(base, last)?;
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create lab directory {}", dir.display()))?;
        let tls = if opts.tls {
            Some(LabCerts::generate(&dir.join("tls"))?)
        } else {
            None
        };
        let mut lab = Lab {
            dir: dir.to_path_buf(),
            nodes: Vec::new(),
            tls,
            opts: Some(opts),
            children: Vec::new(),
        };
        for _ in 0..count {
            if let Err(e) = lab.add_node() {
                // Leave nothing behind from a start that failed half-way.
                let _ = lab.stop();
                return Err(e);
            }
        }
        Ok(lab)
    }

    /// Starts one more node; returns its address.
    pub fn add_node(&mut self) -> Result<Addr> {
        let opts = self
            .opts
            .clone()
            .context("this lab was loaded from disk; start new nodes with `lab up`")?;
        let server = redis_server_path()?;
        for attempt in 0..20 {
            let port = match opts.base_port {
                Some(base) => {
                    let port = consecutive_port(base, self.nodes.len())?;
                    if !port_pair_free(port) {
                        bail!(
                            "port {port} or its bus port {} is in use; choose another --base-port",
                            u32::from(port) + 10000
                        );
                    }
                    port
                }
                None => pick_free_port()?,
            };
            match self.spawn(&server, port, &opts)? {
                Some(node) => {
                    self.nodes.push(node);
                    return Ok(Addr::new("127.0.0.1", port));
                }
                None if opts.base_port.is_none() && attempt < 19 => continue,
                None => bail!(
                    "redis-server could not listen on port {port} (see {}/{port}/redis.log)",
                    self.dir.display()
                ),
            }
        }
        bail!("redis-server could not start after 20 attempts")
    }

    /// Spawns one node; `None` when it could not bind its port (taken meanwhile).
    fn spawn(&mut self, server: &Path, port: u16, opts: &LabOpts) -> Result<Option<LabNode>> {
        let dir = self.dir.join(port.to_string());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new(server);
        match &self.tls {
            None => cmd.arg("--port").arg(port.to_string()),
            Some(t) => cmd
                .args(["--port", "0", "--tls-port"])
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&t.cert)
                .arg("--tls-key-file")
                .arg(&t.key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca)
                .args(["--tls-cluster", "yes", "--tls-replication", "yes"]),
        };
        cmd.args(["--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .arg("--cluster-node-timeout")
            .arg(opts.node_timeout_ms.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // An absolute path: a `--dir` among the extra arguments does not move it.
            .arg("--logfile")
            .arg(std::path::absolute(dir.join("redis.log"))?)
            .args(["--protected-mode", "no"])
            // Replicas link in milliseconds instead of ~5 s (lab only; the tool assumes nothing).
            .args(["--repl-diskless-sync-delay", "0"]);
        if let Some(p) = &opts.password {
            cmd.arg("--requirepass").arg(p).arg("--masterauth").arg(p);
        }
        cmd.args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        detach_or_tie(&mut cmd, opts.owned);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", server.display()))?;
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                if log.contains("Address already in use") {
                    return Ok(None);
                }
                bail!(
                    "redis-server on port {port} exited ({status}): {}",
                    log.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
                );
            }
            // A TLS port cannot be PINGed in plain text: accepting connections is
            // the sign there (it listens only once it is ready). Either way the
            // answer must be this process's: another lab's node may hold the port
            // (ours then exits with "Address already in use"), so its own log must
            // say it is ready too.
            let answering = if self.tls.is_some() {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                ping(port)
            };
            let serving = answering
                && std::fs::read_to_string(dir.join("redis.log"))
                    .is_ok_and(|log| log.contains("Ready to accept connections"));
            if serving {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("redis-server on port {port} did not answer PING within 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if opts.owned {
            self.children.push(child);
        }
        Ok(Some(LabNode { port, pid, dir }))
    }

    /// Addresses of all nodes.
    pub fn addrs(&self) -> Vec<Addr> {
        self.nodes.iter().map(LabNode::addr).collect()
    }

    /// Kills node `i` (SIGKILL, as a crash) and waits for it to be gone.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        if !node.is_running() {
            return Ok(());
        }
        signal_and_wait(node.pid, libc::SIGKILL, Duration::from_secs(10))?;
        if let Some(pos) = self.children.iter().position(|c| c.id() == node.pid) {
            let mut c = self.children.remove(pos);
            let _ = c.wait();
        }
        Ok(())
    }

    /// Stops every node (SIGTERM, then SIGKILL if it lingers) and waits for each.
    pub fn stop(&mut self) -> Result<()> {
        let mut first_error = None;
        // A recorded pid that is no longer this lab's node (it exited and the pid was
        // reused, or lab.json was edited) is never signalled.
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            if let Err(e) = signal_and_wait(node.pid, libc::SIGTERM, Duration::from_secs(5))
                .or_else(|_| signal_and_wait(node.pid, libc::SIGKILL, Duration::from_secs(5)))
            {
                first_error.get_or_insert(e);
            }
        }
        for mut c in self.children.drain(..) {
            let _ = c.wait();
        }
        self.nodes.clear();
        first_error.map_or(Ok(()), Err)
    }

    /// Saves the lab's state to `DIR/lab.json`.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join(STATE_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Loads a lab saved by [`Lab::save`].
    pub fn load(dir: &Path) -> Result<Lab> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no lab in {} (cannot read {})",
                dir.display(),
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a lab state file", path.display()))
    }

    /// Whether the node's process is alive (and is this node's, see
    /// [`LabNode::is_running`]).
    pub fn is_running(node: &LabNode) -> bool {
        node.is_running()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.children.is_empty() {
            let _ = self.stop();
        }
    }
}

/// The port of node `index` of a lab starting at `base`: `base + index`, with its bus
/// port (+10000) at most 65535.
fn consecutive_port(base: u16, index: usize) -> Result<u16> {
    let port = u16::try_from(index)
        .ok()
        .and_then(|i| base.checked_add(i))
        .filter(|p| p.checked_add(10000).is_some());
    match port {
        Some(0) | None if base == 0 => bail!("--base-port 0: ports start at 1"),
        Some(p) => Ok(p),
        None => bail!(
            "--base-port {base}: node {} would need port {}, but ports (and their bus ports, +10000) end at 65535; choose a base port of at most {}",
            index.saturating_add(1),
            u64::from(base).saturating_add(index as u64),
            55535usize.saturating_sub(index)
        ),
    }
}

/// A random port in 20000..30000 whose bus port (+10000) is free too.
fn pick_free_port() -> Result<u16> {
    for _ in 0..200 {
        let port = fastrand::u16(20000..30000);
        if port_pair_free(port) {
            return Ok(port);
        }
    }
    bail!("found no free port pair in 20000..40000")
}

fn port_pair_free(port: u16) -> bool {
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    port.checked_add(10000).is_some_and(free) && free(port)
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 64];
    // Any reply (PONG, or NOAUTH when a password is set) means it is serving.
    s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0)
}

#[cfg(target_os = "linux")]
fn detach_or_tie(cmd: &mut Command, owned: bool) {
    use std::os::unix::process::CommandExt;
    // Own process group: Ctrl-C in the terminal does not reach the nodes.
    cmd.process_group(0);
    // SAFETY: sigemptyset, pthread_sigmask and prctl are async-signal-safe; they
    // only unblock the signals the binary blocks for itself (a child inherits the
    // mask) and set the parent-death signal.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            if owned {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn detach_or_tie(cmd: &mut Command, _owned: bool) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    // A zombie of ours still "exists"; /proc tells it apart.
    alive
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
            .unwrap_or(true)
}

impl LabNode {
    /// Whether this node's server still runs under its recorded pid: the process
    /// exists and works in the node's directory (a server chdirs to its `--dir`), or
    /// names the node's port in its title. A pid of 0, or one reused by another
    /// process, is not this node.
    pub fn is_running(&self) -> bool {
        if self.pid == 0 || !process_alive(self.pid) {
            return false;
        }
        let proc_dir = format!("/proc/{}", self.pid);
        let in_dir = match (
            std::fs::read_link(format!("{proc_dir}/cwd")),
            self.dir.canonicalize(),
        ) {
            (Ok(cwd), Ok(dir)) => cwd == dir,
            _ => false,
        };
        in_dir
            || std::fs::read(format!("{proc_dir}/cmdline"))
                .map(|c| {
                    let title = String::from_utf8_lossy(&c).replace('\0', " ");
                    title.contains("-server") && title.contains(&format!(":{}", self.port))
                })
                .unwrap_or(false)
    }
}

fn signal_and_wait(pid: u32, signal: i32, within: Duration) -> Result<()> {
    if !process_alive(pid) {
        return Ok(());
    }
    // SAFETY: sending a signal to a pid we started.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
    let deadline = Instant::now() + within;
    while process_alive(pid) {
        if Instant::now() > deadline {
            bail!(
                "process {pid} is still running {:?} after signal {signal}",
                within
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_that_is_not_the_nodes_is_never_taken_for_it() {
        let dir = std::env::temp_dir();
        let node = |pid: u32| LabNode {
            port: 7000,
            pid,
            dir: dir.join("no-such-lab-node"),
        };
        // pid 0 would signal our own process group; pid 1 is init; ours is the test.
        assert!(!node(0).is_running());
        assert!(!node(1).is_running());
        assert!(!node(std::process::id()).is_running());
    }

    #[test]
    fn consecutive_ports_stop_where_bus_ports_end() {
        assert_eq!(consecutive_port(7000, 2).unwrap(), 7002);
        assert_eq!(consecutive_port(55530, 5).unwrap(), 55535);
        let err = consecutive_port(60000, 0).unwrap_err().to_string();
        assert!(err.contains("--base-port 60000"), "{err}");
        assert!(err.contains("at most 55535"), "{err}");
        let err = consecutive_port(55530, 6).unwrap_err().to_string();
        assert!(
            err.contains("port 55536") && err.contains("at most 55529"),
            "{err}"
        );
        assert!(consecutive_port(65535, usize::MAX).is_err());
        assert!(consecutive_port(0, 0)
            .unwrap_err()
            .to_string()
            .contains("start at 1"));
    }
}
