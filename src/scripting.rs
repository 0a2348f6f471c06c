//! The binary's glue around the script engine: building it from the resolved
//! settings (live, dry run or offline, the sandbox's limits), script output, and
//! printing a dry run's plan.

use crate::cli::settings::{ScriptSettings, Settings};
use crate::output::Output;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::backend::sim::Sim;
use redis_trib::error::{kind_of, Kind};
use redis_trib::render::plan_text;
use redis_trib::script::{Compile, Limits, ScriptEngine, ScriptIo, Target};
use redis_trib::topology::Topology;
use rhai::Dynamic;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An engine for `run` / `repl` on the backend the settings build (live, a dry run's
/// simulation, or the `--topology` snapshot offline), with the script options'
/// limits; `printed`: where `print` lines go instead of stdout (`run --json` of a
/// plan).
pub fn engine(
    script: &ScriptSettings,
    s: &Settings,
    out: &Output,
    paths: Vec<PathBuf>,
    printed: Option<&Printed>,
) -> Result<ScriptEngine> {
    let target = s.script_target(script.topology.as_deref(), out)?;
    let limits = &script.limits;
    let io = match printed {
        Some(p) => {
            let lines = p.0.clone();
            ScriptIo {
                print: Arc::new(move |s| {
                    if let Ok(mut l) = lines.lock() {
                        l.push(s.to_string());
                    }
                }),
                ..io(out)
            }
        }
        None => io(out),
    };
    let engine = ScriptEngine::new(target, io, paths, limits);
    if let Some(file) = limits.state_file.as_ref().filter(|f| !f.exists()) {
        // A state file that does not exist yet is for this run to write: refused now,
        // before anything changes, unless an --allow-write directory holds it.
        let dir = match file.parent().map(|d| d.display().to_string()) {
            Some(d) if !d.is_empty() => d,
            _ => ".".to_string(),
        };
        engine
            .sandbox()
            .writable("--state", &dir)
            .map_err(anyhow::Error::msg)?;
    }
    Ok(engine)
}

/// The lines a script printed, kept for the `run --json` document of a plan (so
/// stdout stays one JSON document).
#[derive(Clone, Default)]
pub struct Printed(Arc<Mutex<Vec<String>>>);

impl Printed {
    /// Kept lines when the run prints a plan as JSON (`--json` with `--dry-run` or
    /// `--topology`); `None`: `print` goes to stdout.
    pub fn wanted(s: &Settings, script: &ScriptSettings) -> Option<Printed> {
        (s.json && (s.dry_run || script.topology.is_some())).then(Printed::default)
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The script's arguments that are node addresses, or lists of them (`a:1,b:2`):
/// the clusters it may reach.
pub fn addresses(args: &[String]) -> Vec<Addr> {
    args.iter()
        .flat_map(|a| a.split([',', ' ']))
        .filter_map(|a| Addr::parse(a).ok())
        .collect()
}

/// After `run`: a planning run's plan (JSON with `--json`: the steps, what the script
/// printed, its error), or what happened when it planned nothing; then the script's
/// outcome as the command's.
pub fn finish(
    engine: &ScriptEngine,
    s: &Settings,
    out: &Output,
    printed: Option<Printed>,
    result: Result<Dynamic>,
) -> Result<()> {
    let Some(plan) = engine.plan() else {
        return result.map(|_| ());
    };
    let ended_well = match &result {
        Ok(_) => true,
        Err(e) => matches!(kind_of(e), Some(Kind::ScriptExit(0))),
    };
    if s.json {
        let error = match &result {
            Err(e) if !ended_well => Some(format!("{e:#}")),
            _ => None,
        };
        let doc = serde_json::json!({
            "dry_run": true,
            "steps": plan,
            "output": printed.map(|p| p.lines()).unwrap_or_default(),
            "error": error,
        });
        out.data(&serde_json::to_string_pretty(&doc)?);
    } else if plan.is_empty() {
        // Read-only scripts plan nothing: keep stdout for their own output.
        out.note(match &result {
            _ if ended_well => "(dry run: no change planned)",
            Err(e) if e.downcast_ref::<Compile>().is_some() => {
                "(dry run: nothing ran: the script does not compile)"
            }
            Err(_) => "(dry run: the script stopped before planning any change)",
            Ok(_) => "(dry run: no change planned)",
        });
    } else {
        out.data(plan_text(&plan).trim_end());
        if !ended_well {
            out.note(&format!(
                "(dry run: the script stopped after planning these {} steps)",
                plan.len()
            ));
        }
    }
    result.map(|_| ())
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
        print: Arc::new(crate::output::print_data),
        log: Arc::new(move |s| o.note(s)),
    }
}

/// After a dry or offline run, the plan: JSON with `--json`, else a numbered list.
pub fn print_plan(engine: &ScriptEngine, s: &Settings, out: &Output) {
    let Some(plan) = engine.plan() else { return };
    if plan.is_empty() {
        // Read-only scripts plan nothing: keep stdout for their own output.
        out.note("(dry run: no change planned)");
        return;
    }
    if s.json {
        let doc = serde_json::json!({ "dry_run": true, "steps": plan });
        out.data(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        out.data(plan_text(&plan).trim_end());
    }
}
