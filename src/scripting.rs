//! The binary's glue around the script engine: building it from the command line's
//! options (live, dry run or offline, the sandbox's limits), `--set` pairs, printing
//! a dry run's plan, and the password settled (`--askpass`, the command-line warning).

use crate::cli::{Global, ScriptOpts};
use crate::output::Output;
use anyhow::{bail, Context, Result};
use redis_trib::addr::Addr;
use redis_trib::backend::live::Live;
use redis_trib::backend::sim::Sim;
use redis_trib::error::{kind_of, Kind};
use redis_trib::render::plan_text;
use redis_trib::script::{Compile, HostRule, Limits, ScriptEngine, ScriptIo, Target};
use redis_trib::topology::Topology;
use rhai::Dynamic;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An engine for `run` / `repl` with the target the options ask for; `seconds`: the
/// time limit when `--max-seconds` is not given (`run`: an hour; the shell: none);
/// `printed`: where `print` lines go instead of stdout (`run --json` of a plan).
pub fn engine(
    opts: &ScriptOpts,
    dry_run: bool,
    out: &Output,
    live: Live,
    paths: Vec<PathBuf>,
    seconds: Option<u64>,
    printed: Option<&Printed>,
) -> Result<ScriptEngine> {
    let target = match &opts.topology {
        Some(file) => Target::Sim(Sim::load(file)?),
        None if dry_run => Target::Sim(Sim::over(live)),
        None => Target::Live(live),
    };
    let allow_hosts = opts
        .allow_host
        .iter()
        .map(|h| HostRule::parse(h).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let max_memory = opts
        .max_memory
        .checked_mul(1 << 20)
        .filter(|m| *m > 0)
        .context("--max-memory must be a number of MiB, 1 or more")?;
    let limits = Limits {
        max_operations: opts.max_operations,
        max_memory,
        max_seconds: opts.max_seconds.or(seconds).filter(|s| *s > 0),
        allow_write: opts.allow_write.clone(),
        allow_hosts,
        state_file: opts.state.clone(),
        ..Limits::default()
    };
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
    let engine = ScriptEngine::new(target, io, paths, &limits);
    if let Some(file) = opts.state.as_ref().filter(|f| !f.exists()) {
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
    pub fn wanted(g: &Global, opts: &ScriptOpts) -> Option<Printed> {
        (g.json && (g.dry_run || opts.topology.is_some())).then(Printed::default)
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
    g: &Global,
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
    if g.json {
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

/// The global options with the password settled: asked for on the terminal with
/// `--askpass`; a password given on the command line (visible in `ps`) is warned
/// about once, as redis-cli does.
pub fn secure(mut g: Global) -> Result<Global> {
    if g.askpass {
        g.password = Some(ask_password("Please input password: ")?);
    } else if (g.password.is_some() && on_command_line("--password"))
        || on_command_line("--from-password")
    {
        eprintln!("{PASSWORD_WARNING}");
    }
    Ok(g)
}

/// What redis-cli says when a password is given on its command line.
pub const PASSWORD_WARNING: &str =
    "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.";

/// Whether `flag` was given on the command line (`--flag VALUE` or `--flag=VALUE`,
/// before any `--`).
fn on_command_line(flag: &str) -> bool {
    std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// Reads a password: from the terminal without echo when stdin is one, else the first
/// line of stdin.
fn ask_password(prompt: &str) -> Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let _echo = NoEcho::on(0);
        stdin.lock().read_line(&mut line)?;
        eprintln!();
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .context("--askpass: cannot read the password from stdin")?;
    }
    let pass = line.trim_end_matches(['\r', '\n']).to_string();
    if pass.is_empty() {
        anyhow::bail!("--askpass: no password was given");
    }
    Ok(pass)
}

/// Terminal echo off while it lives (restored on drop).
struct NoEcho {
    fd: i32,
    saved: Option<libc::termios>,
}

impl NoEcho {
    fn on(fd: i32) -> NoEcho {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is an open descriptor and `t` a valid termios.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return NoEcho { fd, saved: None };
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
        NoEcho {
            fd,
            saved: Some(saved),
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restores the settings read in `on`.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, t) };
        }
    }
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
