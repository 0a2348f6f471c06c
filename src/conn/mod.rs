//! Connecting to one node: authentication, TLS, timeouts, error messages that name the
//! node, and the few reads every operation needs (`CLUSTER NODES`, `CLUSTER INFO`).

pub mod pool;
pub mod reply;

use crate::addr::Addr;
use crate::topology::{parse_cluster_nodes, parse_own_line, View};
use anyhow::{anyhow, bail, Context, Result};
use redis::io::tcp::TcpSettings;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

/// How to reach nodes: credentials, TLS and the bound on every network wait.
#[derive(Clone, Debug)]
pub struct ConnOpts {
    /// Password for `AUTH` (and `MIGRATE ... AUTH`).
    pub password: Option<String>,
    /// ACL user name (with `password`).
    pub user: Option<String>,
    /// Bound on connecting, on each reply and on every convergence wait.
    pub timeout: Duration,
    /// Connect with TLS (`None`: plain TCP).
    pub tls: Option<TlsOpts>,
}

impl Default for ConnOpts {
    fn default() -> Self {
        ConnOpts {
            password: None,
            user: None,
            timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// TLS to the nodes: whom to trust and what to show. Node-to-node traffic (the
/// cluster bus, `MIGRATE`, replication) follows the servers' own `tls-cluster` and
/// `tls-replication` settings.
#[derive(Clone, Default)]
pub struct TlsOpts {
    /// CA certificates (PEM) the nodes' certificates must chain to; `None` trusts the
    /// system's roots.
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key (PEM), for nodes that authenticate clients
    /// (`tls-auth-clients`, Redis's default).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for TlsOpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TlsOpts")
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl TlsOpts {
    /// Reads the PEM files redis-cli takes as `--cacert`, `--cert` and `--key`;
    /// `--cert` and `--key` go together.
    pub fn from_files(
        ca: Option<&std::path::Path>,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> Result<TlsOpts> {
        let read = |what: &str, p: &std::path::Path| {
            std::fs::read(p).with_context(|| format!("cannot read the {what} {}", p.display()))
        };
        let client = match (cert, key) {
            (Some(c), Some(k)) => Some((read("client certificate", c)?, read("client key", k)?)),
            (None, None) => None,
            _ => bail!("--cert and --key go together (the client certificate and its key)"),
        };
        Ok(TlsOpts {
            ca: ca.map(|p| read("CA certificate", p)).transpose()?,
            client,
        })
    }

    /// The certificates as the `redis` crate takes them.
    pub fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: self.ca.clone(),
        }
    }
}

/// Installs rustls's crypto provider (ring) for the process, once.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An open connection to one node.
pub struct NodeConn {
    addr: Addr,
    conn: redis::Connection,
    /// What the node runs, read on first need (see [`NodeConn::server`]).
    server: Option<Server>,
    /// The bound on each reply.
    timeout: Duration,
    /// Whether the node has answered on this connection yet.
    answered: bool,
    /// Whether the connection is TLS (for the wording of a failure to connect).
    tls: bool,
}

/// The server software a node runs, from `INFO server`. Valkey reports
/// `redis_version:7.2.4` whatever its own version: it is told apart by
/// `server_name:valkey` and its version read from `valkey_version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// `redis` or `valkey`.
    pub name: String,
    /// Its own version (major, minor, patch).
    pub version: (u32, u32, u32),
}

impl Server {
    /// Reads the server from an `INFO server` reply (unknown fields: Redis 0.0.0).
    pub fn from_info(info: &HashMap<String, String>) -> Server {
        Server::from_fields(|k| info.get(k).map(String::as_str))
    }

    /// [`Server::from_info`] from the reply's lines borrowed (see [`InfoLines`]),
    /// rather than every line copied into a map.
    pub fn from_info_lines(info: &InfoLines<'_>) -> Server {
        Server::from_fields(|k| info.get(k))
    }

    fn from_fields<'t>(get: impl Fn(&str) -> Option<&'t str>) -> Server {
        let name = get("server_name")
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "redis".to_string());
        let version = get(&format!("{name}_version"))
            .or_else(|| get("redis_version"))
            .map(parse_version)
            .unwrap_or_default();
        Server { name, version }
    }

    /// Whether the server replicates `CLUSTER SETSLOT` to the master's replicas and
    /// blocks the client until they acknowledge (Valkey 8 and later). Such a
    /// `SETSLOT` must not be sent inside `MULTI`: the block trips an assertion and
    /// the master crashes.
    pub fn replicates_setslot(&self) -> bool {
        self.name == "valkey" && self.version.0 >= 8
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "{} {a}.{b}.{c}", self.name)
    }
}

fn parse_version(text: &str) -> (u32, u32, u32) {
    let mut parts = text
        .trim()
        .split('.')
        .map(|p| p.trim().parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

impl NodeConn {
    /// Connects and authenticates; the error names the node and the reason.
    pub fn open(addr: &Addr, opts: &ConnOpts) -> Result<NodeConn> {
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(p) = &opts.password {
            settings = settings.set_password(p);
        }
        if let Some(u) = &opts.user {
            settings = settings.set_username(u);
        }
        let info = connection_addr(addr, opts)
            .into_connection_info()?
            .set_redis_settings(settings)
            // Pipelines must not wait on Nagle + delayed ACK (up to 40 ms a round trip).
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = match &opts.tls {
            None => redis::Client::open(info)?,
            Some(tls) => {
                install_tls_provider();
                redis::Client::build_with_tls(info, tls.certificates())
                    .map_err(|e| anyhow!("{addr}: cannot set up TLS: {e}"))?
            }
        };
        let conn = client
            .get_connection_with_timeout(opts.timeout)
            .map_err(|e| connect_error(addr, &e, opts.tls.is_some()))?;
        conn.set_read_timeout(Some(opts.timeout))?;
        conn.set_write_timeout(Some(opts.timeout))?;
        Ok(NodeConn {
            addr: addr.clone(),
            conn,
            server: None,
            timeout: opts.timeout,
            // With a password the connection authenticated: the node answered. Without
            // one nothing was exchanged yet (the TLS handshake, too, waits for the
            // first write), and a TLS-only port accepts a plain TCP connection: the
            // first command finds out, and its failure is worded as a failure to
            // connect (see `first_failure`). That spares a PING round trip per node.
            answered: opts.password.is_some(),
            tls: opts.tls.is_some(),
        })
    }

    /// The server software the node runs, read with `INFO server` on first use and
    /// kept for the life of the connection.
    pub fn server(&mut self) -> Result<&Server> {
        if self.server.is_none() {
            let text: String = self.query(redis::cmd("INFO").arg("server"))?;
            self.server = Some(Server::from_info_lines(&InfoLines::parse(&text)));
        }
        self.server
            .as_ref()
            .ok_or_else(|| anyhow!("{}: server kind unknown", self.addr))
    }

    /// Changes the bound on each reply (and each write) of this connection.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.conn.set_read_timeout(Some(timeout))?;
        self.conn.set_write_timeout(Some(timeout))?;
        self.timeout = timeout;
        Ok(())
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// Runs one command; a server error becomes an error naming the node and command.
    pub fn run(&mut self, cmd: &redis::Cmd) -> Result<Value> {
        let value: Value = cmd.query(&mut self.conn).map_err(|e| {
            self.first_failure(&e)
                .unwrap_or_else(|| self.command_error(cmd, &e))
        })?;
        self.answered = true;
        Ok(value)
    }

    /// Runs one command and converts the reply.
    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        let value = self.run(cmd)?;
        redis::from_redis_value(value).map_err(|e| anyhow!("{}: unexpected reply: {e}", self.addr))
    }

    /// Sends a pipeline and returns one reply per command; server errors come back as
    /// `Value::ServerError` in their place, so the caller decides what each means.
    pub fn pipeline(&mut self, pipe: &redis::Pipeline) -> Result<Vec<Value>> {
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        // Read reply by reply, stopping at the first I/O error: the redis crate's own
        // pipeline reading goes on after a timed-out reply and waits the read timeout
        // once per remaining command (a stalled node held a pipeline of 2048
        // SETSLOTs for hours).
        let count = pipe.cmd_iter().count();
        let mut replies = Vec::with_capacity(count);
        let mut sent = self.conn.send_packed_command(&pipe.get_packed_pipeline());
        while sent.is_ok() && replies.len() < count {
            sent = self.conn.recv_response().map(|v| replies.push(v));
        }
        if let Err(e) = sent {
            if let Some(failure) = self.first_failure(&e) {
                return Err(failure);
            }
            return Err(if e.is_timeout() {
                self.timed_out(&format!("{count} pipelined commands"))
            } else {
                anyhow!("{}: pipeline of {count} commands failed: {e}", self.addr)
            });
        }
        self.answered = true;
        if let Some(err) = replies
            .iter()
            .filter_map(server_error)
            .find(|e| is_auth_error(e))
        {
            bail!(
                "{}: authentication failed ({err}); check --password / --user",
                self.addr
            );
        }
        Ok(replies)
    }

    /// Reads `CLUSTER INFO`, `CLUSTER NODES` and `DBSIZE` in one round trip. Fails
    /// with a clear message when the node is not cluster-enabled.
    pub fn view(&mut self) -> Result<View> {
        self.read_view(false)
    }

    /// [`NodeConn::view`] with only the node's own line in `nodes`: the other lines
    /// are not parsed (what reading a whole cluster needs of every node but the
    /// entry; see [`crate::backend::Backend::own_views`]).
    pub fn own_view(&mut self) -> Result<View> {
        self.read_view(true)
    }

    fn read_view(&mut self, own_only: bool) -> Result<View> {
        let mut pipe = redis::pipe();
        pipe.cmd("CLUSTER").arg("INFO");
        pipe.cmd("CLUSTER").arg("NODES");
        pipe.cmd("DBSIZE");
        let replies = self.pipeline(&pipe)?;
        let text = |v| reply_text(&self.addr, v);
        let info = text(&replies[0])?;
        let info = InfoLines::parse(&info);
        let cannot = || format!("{}: cannot read CLUSTER NODES", self.addr);
        let nodes_text = text(&replies[1])?;
        let nodes = if own_only {
            vec![parse_own_line(&nodes_text)
                .with_context(cannot)?
                .with_host(&self.addr.host)]
        } else {
            let nodes = parse_cluster_nodes(&nodes_text)
                .with_context(cannot)?
                .into_iter()
                .map(|n| {
                    if n.is_myself() {
                        n.with_host(&self.addr.host)
                    } else {
                        n
                    }
                })
                .collect::<Vec<_>>();
            if !nodes.iter().any(|n| n.is_myself()) {
                bail!("{}: CLUSTER NODES has no 'myself' line", self.addr);
            }
            nodes
        };
        let keys = match &replies[2] {
            Value::Int(n) => *n as u64,
            other => bail!("{}: unexpected DBSIZE reply {other:?}", self.addr),
        };
        Ok(View {
            addr: self.addr.clone(),
            nodes,
            cluster_state: info.get("cluster_state").unwrap_or_default().to_string(),
            current_epoch: info
                .get("cluster_current_epoch")
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
            keys,
        })
    }

    /// A failure of the connection before the node ever answered on it (no reply in
    /// time, the connection dropped, a TLS handshake refused), worded as a failure
    /// to connect, as the PING that used to follow the connection worded it; `None`
    /// once the node has answered, or for a reply of the server's.
    fn first_failure(&self, e: &redis::RedisError) -> Option<anyhow::Error> {
        let transport = e.is_timeout() || e.is_io_error() || e.is_connection_dropped();
        (!self.answered && transport).then(|| connect_error(&self.addr, e, self.tls))
    }

    /// The node gave no reply to `what` within the read timeout (`--timeout`).
    fn timed_out(&self, what: &str) -> anyhow::Error {
        crate::error::error(crate::error::Kind::TimedOut {
            node: self.addr.to_string(),
            message: format!(
                "{} timed out: no reply to {what} within {:.1?} (--timeout); the node stopped answering",
                self.addr, self.timeout
            ),
        })
    }

    fn command_error(&self, cmd: &redis::Cmd, e: &redis::RedisError) -> anyhow::Error {
        // The command word, plus the subcommand of container commands (CLUSTER SETSLOT).
        let words: Vec<String> = cmd
            .args_iter()
            .take(2)
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).to_uppercase(),
                _ => String::new(),
            })
            .collect();
        let container = [
            "CLUSTER", "CONFIG", "CLIENT", "MEMORY", "SCRIPT", "OBJECT", "ACL", "COMMAND", "XINFO",
        ];
        let keep = if words
            .first()
            .is_some_and(|w| container.contains(&w.as_str()))
        {
            2
        } else {
            1
        };
        let name: Vec<String> = words.into_iter().take(keep).collect();
        if e.is_timeout() {
            return self.timed_out(&name.join(" "));
        }
        if is_auth_error(&e.to_string()) {
            return anyhow!(
                "{}: authentication failed ({e}); check --password / --user",
                self.addr
            );
        }
        let reply = format!("{} failed: {e}", name.join(" "));
        crate::error::error(crate::error::Kind::Server {
            node: self.addr.to_string(),
            message: format!("{}: {reply}", self.addr),
            reply,
        })
    }
}

/// The text of a reply to a command of [`NodeConn::view`], borrowed where it can be
/// (a bulk string, as servers send `CLUSTER INFO` and `CLUSTER NODES`): the replies
/// are parsed, not kept. A server error becomes an error naming the node (saying so
/// when the node is not cluster-enabled).
fn reply_text<'v>(addr: &Addr, v: &'v Value) -> Result<Cow<'v, str>> {
    match v {
        Value::ServerError(e)
            if reply::refusal(&e.to_string()) == reply::Refusal::NotClusterEnabled =>
        {
            bail!("{addr} is not cluster-enabled (start it with cluster-enabled yes)")
        }
        Value::ServerError(e) => bail!("{addr}: {e}"),
        Value::BulkString(bytes) => match std::str::from_utf8(bytes) {
            Ok(t) => Ok(Cow::Borrowed(t)),
            Err(e) => bail!("{addr}: unexpected reply: {e}"),
        },
        other => redis::from_redis_value_ref::<String>(other)
            .map(Cow::Owned)
            .map_err(|e| anyhow!("{addr}: unexpected reply: {e}")),
    }
}

fn is_auth_error(text: &str) -> bool {
    [
        "NOAUTH",
        "WRONGPASS",
        "invalid password",
        "invalid username-password",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// How to reach `addr`: plain TCP, or TLS verified against the configured roots.
pub fn connection_addr(addr: &Addr, opts: &ConnOpts) -> ConnectionAddr {
    match opts.tls {
        None => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
        Some(_) => ConnectionAddr::TcpTls {
            host: addr.host.clone(),
            port: addr.port,
            insecure: false,
            tls_params: None,
        },
    }
}

fn connect_error(addr: &Addr, e: &redis::RedisError, tls: bool) -> anyhow::Error {
    let text = e.to_string();
    if is_auth_error(&text) {
        return anyhow!("{addr}: authentication failed ({text}); check --password / --user");
    }
    if e.is_timeout() {
        return crate::error::error(crate::error::Kind::TimedOut {
            node: addr.to_string(),
            message: format!(
                "cannot connect to {addr}: timed out (--timeout); the node does not answer"
            ),
        });
    }
    let reason = if e.is_connection_refusal() {
        "connection refused (is redis-server running there?)".to_string()
    } else if tls {
        let hint = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
            "its certificate is not signed by a CA you trust: give --cacert"
        } else if text.contains("CertificateRequired") {
            "it asks for a client certificate: give --cert and --key"
        } else {
            "TLS: is it serving TLS on this port? check --cacert, and --cert/--key"
        };
        format!("{text} ({hint})")
    } else if e.is_connection_dropped() || e.is_io_error() {
        format!("{text} (if the node only speaks TLS, add --tls)")
    } else {
        text
    };
    anyhow!("cannot connect to {addr}: {reason}")
}

/// Parses `key:value` lines of an INFO-style reply.
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `key:value` lines of an INFO-style reply, borrowed from it: what
/// [`parse_info`] maps (each line trimmed, the value after the first `:`), without
/// copying the reply into a map, for callers that look up a few fields.
pub struct InfoLines<'t>(Vec<(&'t str, &'t str)>);

impl<'t> InfoLines<'t> {
    /// Splits `text` into its `key:value` lines (others are left out), in one pass
    /// over its bytes.
    pub fn parse(text: &'t str) -> InfoLines<'t> {
        let mut lines = Vec::with_capacity(text.len() / 16);
        let mut push = |start: usize, colon: Option<usize>, end: usize| {
            // Cut at ASCII bytes only, so each piece is text of `text`.
            let (Some(c), Some(line)) = (colon, text.get(start..end)) else {
                return;
            };
            let c = c - start;
            if let (Some(k), Some(v)) = (line.get(..c), line.get(c + 1..)) {
                lines.push((k.trim_start(), v.trim_end()));
            }
        };
        let (mut start, mut colon) = (0, None);
        for (i, &b) in text.as_bytes().iter().enumerate() {
            match b {
                b'\n' => {
                    push(start, colon, i);
                    (start, colon) = (i + 1, None);
                }
                b':' if colon.is_none() => colon = Some(i),
                _ => {}
            }
        }
        push(start, colon, text.len());
        InfoLines(lines)
    }

    /// The value of field `key` (the last line wins, as in [`parse_info`]'s map).
    pub fn get(&self, key: &str) -> Option<&'t str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
    }
}

/// Text of a server error reply, if the value is one.
pub fn server_error(v: &Value) -> Option<String> {
    match v {
        Value::ServerError(e) => Some(e.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info_lines() {
        let info = parse_info("# Cluster\r\ncluster_state:ok\r\ncluster_known_nodes:3\r\n");
        assert_eq!(info["cluster_state"], "ok");
        assert_eq!(info["cluster_known_nodes"], "3");
    }

    #[test]
    fn info_lines_find_what_the_map_has() {
        let text = "# Cluster\r\ncluster_state:ok\r\ncluster_state_x:no\r\n cluster_known_nodes:3 \r\nodd_line\r\nurl:a:b\r\nempty:\r\n:nokey\r\nlast:1\nlast:2";
        let map = parse_info(text);
        let lines = InfoLines::parse(text);
        for key in [
            "cluster_state",
            "cluster_known_nodes",
            "url",
            "empty",
            "odd_line",
            "cluster",
            "",
            "last",
        ] {
            assert_eq!(lines.get(key), map.get(key).map(String::as_str), "{key}");
        }
        assert_eq!(lines.get("last"), Some("2"));
        assert_eq!(lines.get("url"), Some("a:b"));
    }

    #[test]
    fn tells_valkey_from_redis_by_server_name() {
        for info in [
            (|t: &str| Server::from_info(&parse_info(t))) as fn(&str) -> Server,
            |t: &str| Server::from_info_lines(&InfoLines::parse(t)),
        ] {
            tells_valkey_from_redis(info);
        }
    }

    fn tells_valkey_from_redis(info: fn(&str) -> Server) {
        let valkey8 = info("redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\n");
        assert_eq!(valkey8.name, "valkey");
        assert_eq!(valkey8.version, (8, 1, 8));
        assert!(valkey8.replicates_setslot());
        let valkey7 = info("redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:7.2.8\r\n");
        assert!(!valkey7.replicates_setslot());
        let redis8 = info("redis_version:8.2.3\r\nredis_mode:cluster\r\n");
        assert_eq!(redis8.to_string(), "redis 8.2.3");
        assert!(!redis8.replicates_setslot());
        assert_eq!(info("").version, (0, 0, 0));
    }

    #[test]
    fn recognises_auth_errors() {
        assert!(is_auth_error("NOAUTH Authentication required."));
        assert!(is_auth_error("WRONGPASS invalid username-password pair"));
        assert!(!is_auth_error("ERR unknown command"));
    }
}
