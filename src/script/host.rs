//! The host runtime the registered functions share: the target operations go to
//! (live nodes or a simulated copy), the script's output, its `on_progress`
//! listener, and the sandbox every address passes through.

use super::convert::{addr_of, err, rt};
use super::events::event_value;
use super::sandbox::Sandbox;
use crate::addr::Addr;
use crate::backend::live::Live;
use crate::backend::sim::Sim;
use crate::backend::{Backend, Event};
use crate::conn::ConnOpts;
use crate::topology::Node;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, NativeCallContext};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where script operations go: real nodes, or a simulated copy (dry run / offline).
pub enum Target {
    /// Real nodes.
    Live(Live),
    /// A simulated copy; mutations are recorded as a plan.
    Sim(Sim),
}

impl Target {
    /// The backend behind the target.
    pub fn backend(&mut self) -> &mut dyn Backend {
        match self {
            Target::Live(l) => l,
            Target::Sim(s) => s,
        }
    }

    /// Sends every event of the operations that follow to `tap` (`None`: stop).
    pub fn set_tap(&mut self, tap: Option<std::sync::mpsc::Sender<Event>>) {
        match self {
            Target::Live(l) => l.set_tap(tap),
            Target::Sim(s) => s.set_tap(tap),
        }
    }

    /// How the target reaches real nodes (none for an offline simulation).
    pub fn conn_opts(&self) -> Option<ConnOpts> {
        match self {
            Target::Live(l) => Some(l.conn_opts().clone()),
            Target::Sim(s) => s.source().map(|l| l.conn_opts().clone()),
        }
    }
}

/// What registered functions share: the target and where log lines go.
pub struct Host {
    /// The target, locked per call.
    pub target: Mutex<Target>,
    /// Whether `target` is simulated; readable while the target is locked (from a
    /// weight or plan callback). Kept in step by [`Host::set_target`].
    pub dry: AtomicBool,
    /// Where script output goes.
    pub io: ScriptIo,
    /// The script's `on_progress` callback, if it set one.
    pub listener: Mutex<Option<FnPtr>>,
    /// The sandbox's limits and what scripts may reach and write.
    pub sandbox: Arc<Sandbox>,
    /// Whether the target reaches real nodes (false offline: nothing to guard).
    networked: AtomicBool,
    /// The run's `--state FILE` (`save_state`, `load_state`).
    state_file: Mutex<Option<std::path::PathBuf>>,
}

/// Where a script's output goes: `print` is its data (stdout for the binary);
/// `log` and `debug` are remarks (stderr), readable next to progress output.
#[derive(Clone)]
pub struct ScriptIo {
    /// Receives `print` lines.
    pub print: Arc<dyn Fn(&str) + Send + Sync>,
    /// Receives `log` and `debug` lines.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Host {
    /// A host for `target`.
    pub fn new(target: Target, io: ScriptIo, sandbox: Arc<Sandbox>) -> Host {
        Host {
            dry: AtomicBool::new(matches!(target, Target::Sim(_))),
            networked: AtomicBool::new(target.conn_opts().is_some()),
            target: Mutex::new(target),
            io,
            listener: Mutex::new(None),
            sandbox,
            state_file: Mutex::new(None),
        }
    }

    /// Sets the run's `--state FILE`.
    pub fn set_state_file(&self, file: Option<std::path::PathBuf>) {
        if let Ok(mut f) = self.state_file.lock() {
            *f = file;
        }
    }

    /// The run's `--state FILE`, if any.
    pub fn state_file(&self) -> Option<std::path::PathBuf> {
        self.state_file.lock().ok().and_then(|f| f.clone())
    }

    /// Replaces the target.
    pub fn set_target(&self, target: Target) {
        let dry = matches!(target, Target::Sim(_));
        let networked = target.conn_opts().is_some();
        *self.target.lock().expect("target lock") = target;
        self.dry.store(dry, Ordering::SeqCst);
        self.networked.store(networked, Ordering::SeqCst);
    }

    /// Whether the target reaches real nodes (false for an offline run, `--topology`).
    pub fn is_networked(&self) -> bool {
        self.networked.load(Ordering::SeqCst)
    }

    /// The address a script passed (`"host:port"` or a node), once the sandbox lets
    /// scripts reach it.
    pub fn addr(&self, what: &str, d: &Dynamic) -> Result<Addr, Box<EvalAltResult>> {
        let a = addr_of(d)?;
        self.reach(what, &a)?;
        Ok(a)
    }

    /// [`Host::addr`] for each address of an array.
    pub fn addrs(&self, what: &str, a: &Array) -> Result<Vec<Addr>, Box<EvalAltResult>> {
        a.iter().map(|d| self.addr(what, d)).collect()
    }

    /// Whether scripts may reach `addr`: a node named on the command line, a node
    /// their clusters know (asked again when `addr` is not known yet), or an allowed
    /// host. Offline runs reach nothing, so nothing is refused.
    pub fn reach(&self, what: &str, addr: &Addr) -> Result<(), Box<EvalAltResult>> {
        let sandbox = &self.sandbox;
        if !self.networked.load(Ordering::SeqCst) || sandbox.reachable(addr) {
            return Ok(());
        }
        for seed in sandbox.seeds() {
            // A seed that does not answer (or is not a cluster node) teaches nothing.
            if let Ok(guard) = self.target.try_lock().as_mut() {
                if let Ok(view) = guard.backend().view(&seed) {
                    sandbox.learn(view.nodes.iter().map(Node::addr));
                }
            }
            if sandbox.reachable(addr) {
                return Ok(());
            }
        }
        Err(err(sandbox.unreachable_message(what, addr)))
    }

    /// An operation's error, said as the time limit when the run passed it (the
    /// operation stopped at its next safe point because of it).
    fn failed(&self, e: anyhow::Error) -> Box<EvalAltResult> {
        if self.sandbox.timed_out() {
            err(format!("{} ({e:#})", self.sandbox.time_message()))
        } else {
            rt(e)
        }
    }

    /// How the target reaches real nodes; `what` names the caller in errors.
    pub fn conn_opts(&self, what: &str) -> Result<ConnOpts, Box<EvalAltResult>> {
        self.target
            .try_lock()
            .map_err(|_| {
                err(format!(
                    "{what}() cannot be called from inside a callback (weight, plan or on_progress)"
                ))
            })?
            .conn_opts()
            .ok_or_else(|| {
                err(format!(
                    "{what}(): an offline run (--topology) has no nodes to talk to"
                ))
            })
    }

    /// Runs an operation: as [`Host::with`], and when the script set an `on_progress`
    /// callback, the operation runs on a worker thread while this (the script's)
    /// thread hands each of its events to the callback as it happens. A failing
    /// callback does not stop the operation; its error is returned afterwards.
    pub fn run<T: Send>(
        &self,
        ctx: &NativeCallContext,
        f: impl FnOnce(&mut dyn Backend) -> anyhow::Result<T> + Send,
    ) -> Result<T, Box<EvalAltResult>> {
        let listener = self.listener.lock().map(|l| l.clone()).unwrap_or(None);
        let Some(callback) = listener else {
            return self.with(f);
        };
        let mut guard = self.target.try_lock().map_err(|_| {
            err("cluster functions cannot be called from inside a callback: compute what you need before")
        })?;
        let (tx, rx) = std::sync::mpsc::channel::<Event>();
        guard.set_tap(Some(tx));
        let target: &mut Target = &mut guard;
        let mut failed: Option<Box<EvalAltResult>> = None;
        let outcome = std::thread::scope(|scope| {
            let worker = scope.spawn(move || f(target.backend()));
            let mut deliver = |e: Event| {
                if failed.is_none() {
                    if let Err(e) = callback.call_within_context::<Dynamic>(ctx, (event_value(&e),))
                    {
                        failed = Some(e);
                    }
                }
            };
            while !worker.is_finished() {
                if let Ok(e) = rx.recv_timeout(Duration::from_millis(20)) {
                    deliver(e);
                }
            }
            let outcome = worker.join();
            while let Ok(e) = rx.try_recv() {
                deliver(e);
            }
            outcome
        });
        guard.set_tap(None);
        let value = outcome
            .map_err(|_| err("the operation panicked"))?
            .map_err(|e| self.failed(e))?;
        match failed {
            // exit(n) / fail(msg) in the callback end the script as anywhere else.
            Some(e) if super::report::ending(&e).is_some() => Err(e),
            Some(e) => Err(err(format!("the on_progress callback failed: {e}"))),
            None => Ok(value),
        }
    }

    /// Runs `f` on the backend; a call from inside a callback of another cluster
    /// function gets a clear error instead of a deadlock.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Backend) -> anyhow::Result<T>,
    ) -> Result<T, Box<EvalAltResult>> {
        let mut guard = self.target.try_lock().map_err(|_| {
            err("cluster functions cannot be called from inside a callback (weight, plan or on_progress): compute what you need before")
        })?;
        f(guard.backend()).map_err(|e| self.failed(e))
    }
}
