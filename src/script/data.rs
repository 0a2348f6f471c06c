//! Script functions that move data in and out of a cluster: `import_keys` (a
//! standalone Redis into the cluster) and `backup_cluster` (RDBs and a manifest).

use super::convert::err;
use super::host::Host;
use super::registry::{api, Registry};
use crate::engine::key_copy::ImportOpts;
use crate::ops;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext, INT};
use std::sync::Arc;

/// Registers `import_keys` and `backup_cluster`.
pub(super) fn register(reg: &mut Registry<'_>, host: Arc<Host>) {
    let h = host.clone();
    api!(reg, "import_keys", ["cluster: String", "source: String", "options: Map"] -> "INT",
        "Move every key of a standalone Redis into the cluster (as `import`); options: #{ copy, replace, from_password, from_user }; returns keys imported.",
    move |ctx: NativeCallContext, cluster: Dynamic, source: Dynamic, opts: Map| -> Result<INT, Box<EvalAltResult>> {
        let (c, s) = (h.addr("import_keys", &cluster)?, h.addr("import_keys", &source)?);
        let allowed = ["copy", "replace", "from_password", "from_user"];
        if let Some(k) = opts.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(err(format!("import_keys: unknown option '{k}' (expected {})", allowed.join(", "))));
        }
        let flag = |k: &str| -> Result<bool, Box<EvalAltResult>> {
            opts.get(k).map_or(Ok(false), |v| v.as_bool().map_err(|_| err(format!("import_keys: {k} must be true or false"))))
        };
        let (copy, replace) = (flag("copy")?, flag("replace")?);
        let text = |k: &str| opts.get(k).map(|v| v.to_string());
        let mut source = h.conn_opts("import_keys")?;
        if let Some(p) = text("from_password") {
            source.password = Some(p).filter(|p| !p.is_empty());
            source.user = text("from_user");
        }
        let o = ImportOpts { copy, replace, ..ImportOpts::new(source) };
        h.run(&ctx, |b| ops::import(b, &c, &s, &o)).map(|n| n as INT)
    });
    let h = host;
    api!(reg, "backup_cluster", ["addr: String", "dir: String"] -> "Map",
        "Each master's RDB and every node's CLUSTER NODES into a new or empty directory under an --allow-write directory (as `backup`); returns the manifest.",
    move |ctx: NativeCallContext, addr: Dynamic, dir: &str| -> Result<Dynamic, Box<EvalAltResult>> {
        // Refused before any node is contacted.
        let dir = h.sandbox.writable("backup_cluster", dir).map_err(err)?;
        let a = h.addr("backup_cluster", &addr)?;
        let manifest = h.run(&ctx, |b| ops::backup(b, &a, &dir))?;
        rhai::serde::to_dynamic(&manifest)
    });
}
