//! `cluster(addr)`: a script value that speaks to the whole cluster as one keyspace
//! (see [`crate::keyspace`]): `c.execute("SET", "k", "v")` goes to the key's owner,
//! `c.execute("DBSIZE")` answers per master, `c.execute("MGET", ...)` is split by
//! slot. In a dry run only commands that read are sent.

use super::api::command_line;
use super::convert::{err, reply, rt};
use super::host::Host;
use super::registry::{api, Registry};
use crate::keyspace::{refuse_writes, ClusterClient};
use rhai::{Dynamic, EvalAltResult};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// A script's handle on a cluster (cloning it shares the connection).
#[derive(Clone)]
pub struct ClusterHandle {
    client: Arc<Mutex<ClusterClient>>,
    entry: String,
}

impl ClusterHandle {
    /// The address the handle entered the cluster through.
    pub fn entry(&self) -> String {
        self.entry.clone()
    }

    /// Runs one command through the handle (read-only commands only in a dry run).
    pub fn execute(
        &self,
        host: &Host,
        cmd: Dynamic,
        args: &[Dynamic],
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        let line = command_line(cmd, args);
        if host.dry.load(Ordering::SeqCst) {
            refuse_writes(&line).map_err(rt)?;
        }
        let mut client = self
            .client
            .lock()
            .map_err(|_| err("the cluster handle is broken (a previous call panicked)"))?;
        client
            .execute(&line)
            .map(|r| reply(r.into_value()))
            .map_err(rt)
    }
}

/// Registers the `Cluster` type and `cluster(addr)`; `execute` on a handle is the
/// same `execute` as on an address (it looks at its first argument).
pub(super) fn register(reg: &mut Registry<'_>, host: Arc<Host>) {
    reg.engine
        .register_type_with_name::<ClusterHandle>("Cluster")
        .register_get("entry", |c: &mut ClusterHandle| c.entry.clone())
        .register_fn("to_string", |c: &mut ClusterHandle| {
            format!("cluster {}", c.entry)
        })
        .register_fn("to_debug", |c: &mut ClusterHandle| {
            format!("cluster {}", c.entry)
        });
    let h = host;
    api!(reg, "cluster", ["addr: String"] -> "Cluster",
        "A handle on the whole cluster: c.execute(\"SET\", k, v) is routed by slot (MOVED/ASK followed), fan-out commands answer per node, MGET/MSET/DEL split by slot.",
    move |addr: Dynamic| -> Result<ClusterHandle, Box<EvalAltResult>> {
        let a = h.addr("cluster", &addr)?;
        let opts = h.conn_opts("cluster")?;
        let client = ClusterClient::open(&a, &opts).map_err(rt)?;
        Ok(ClusterHandle { client: Arc::new(Mutex::new(client)), entry: a.to_string() })
    });
}
