//! The binary's glue around the script engine: building it from the command line's
//! options (live, dry run or offline), `--set` pairs, and printing a dry run's plan.

use crate::cli::{Global, ScriptOpts};
use crate::output::Output;
use anyhow::{bail, Context, Result};
use redis_trib::backend::live::Live;
use redis_trib::backend::sim::Sim;
use redis_trib::render::plan_text;
use redis_trib::script::{Limits, ScriptEngine, ScriptIo, Target};
use redis_trib::topology::Topology;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An engine for `run` / `repl` with the target the options ask for.
pub fn engine(
    opts: &ScriptOpts,
    dry_run: bool,
    out: &Output,
    live: Live,
    paths: Vec<PathBuf>,
) -> Result<ScriptEngine> {
    let target = match &opts.topology {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read topology {}", file.display()))?;
            let topo: Topology = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a topology snapshot (write one with `redis-trib list HOST:PORT --json > FILE`)",
                    file.display()
                )
            })?;
            Target::Sim(Sim::offline(&topo))
        }
        None if dry_run => Target::Sim(Sim::over(live)),
        None => Target::Live(live),
    };
    let limits = Limits {
        max_operations: opts.max_operations,
        ..Limits::default()
    };
    Ok(ScriptEngine::new(target, io(out), paths, &limits))
}

/// An engine with nothing behind it (for `doc`).
pub fn offline_engine() -> ScriptEngine {
    let quiet: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|_| {});
    let io = ScriptIo {
        print: quiet.clone(),
        log: quiet,
    };
    ScriptEngine::new(
        Target::Sim(Sim::offline(&Topology::default())),
        io,
        Vec::new(),
        &Limits::default(),
    )
}

/// Script output: `print` to stdout, `log`/`debug` to stderr.
pub fn io(out: &Output) -> ScriptIo {
    let o = *out;
    ScriptIo {
        print: Arc::new(|s| println!("{s}")),
        log: Arc::new(move |s| o.note(s)),
    }
}

/// `--set NAME=VALUE` pairs as a map.
pub fn params(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--set {p}: expected NAME=VALUE");
        };
        if k.is_empty() {
            bail!("--set {p}: the name is empty");
        }
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

/// After a dry or offline run, the plan: JSON with `--json`, else a numbered list.
pub fn print_plan(engine: &ScriptEngine, g: &Global, out: &Output) {
    let Some(plan) = engine.plan() else { return };
    if plan.is_empty() {
        // Read-only scripts plan nothing: keep stdout for their own output.
        out.note("(dry run: no change planned)");
        return;
    }
    if g.json {
        let doc = serde_json::json!({ "dry_run": true, "steps": plan });
        out.data(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        out.data(plan_text(&plan).trim_end());
    }
}
