//! The command line resolved once: [`Settings`] (the global options: how nodes are
//! reached, how slots move, the lease wait, zones, output flags, dry run) and
//! [`ScriptSettings`] (the options of `run` and `repl`). The rest of the interface
//! takes these and never sees the clap types; [`Settings`] is also the factory of
//! every backend the binary acts on (live, a dry run's simulation over live, an
//! offline snapshot), so each is built with every option given.

use super::args::{Global, ScriptOpts};
use super::password;
use crate::output::Output;
use anyhow::{bail, Context, Result};
use redis_trib::backend::live::Live;
use redis_trib::backend::sim::Sim;
use redis_trib::conn::{ConnOpts, TlsOpts};
use redis_trib::engine::keys::MigrateOpts;
use redis_trib::ops::zones::ZoneFile;
use redis_trib::script::{HostRule, Limits, Target};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The global options, resolved: validated, files read, the password settled.
#[derive(Clone)]
pub struct Settings {
    /// How every node is reached: password (asked for with `--askpass`), user,
    /// `--timeout`, TLS (its files read).
    pub conn: ConnOpts,
    /// How slots move: `--parallel`, `--batch-slots`, `--keys-per-migrate`,
    /// `--slots-in-flight` (each at least 1) and `--engine`; `replace` is set per
    /// command by [`Settings::live`].
    pub migrate: MigrateOpts,
    /// `--wait-lease`: how long to wait for another operation's lease.
    pub wait_lease: Duration,
    /// `--zones`: the zone of each node, read.
    pub zones: Option<Arc<ZoneFile>>,
    /// `--tls` (`lab up` starts TLS-only nodes).
    pub tls: bool,
    /// `--json`: data as JSON.
    pub json: bool,
    /// `--quiet`: no progress, only results and errors.
    pub quiet: bool,
    /// `--no-color`.
    pub no_color: bool,
    /// `--dry-run`: act on an in-memory copy of the cluster.
    pub dry_run: bool,
}

impl Settings {
    /// Resolves the global options: the password settled (asked for with
    /// `--askpass`, or warned about on the command line), then the zone file read,
    /// then `--timeout`, the TLS files and `--wait-lease` checked.
    pub fn resolve(g: Global) -> Result<Settings> {
        let password = password::settle(g.password, g.askpass)?;
        let zones = g
            .zones
            .as_deref()
            .map(ZoneFile::load)
            .transpose()?
            .map(Arc::new);
        // Bounded so that deadlines (now + timeout) stay representable.
        const MAX_TIMEOUT_SECS: f64 = 1e9;
        let timeout = Duration::try_from_secs_f64(g.timeout)
            .ok()
            .filter(|t| !t.is_zero() && t.as_secs_f64() <= MAX_TIMEOUT_SECS)
            .with_context(|| {
                format!(
                    "--timeout must be a positive number of seconds, at most {MAX_TIMEOUT_SECS:e} (got {:?})",
                    g.timeout
                )
            })?;
        let tls = if g.tls {
            Some(TlsOpts::from_files(
                g.cacert.as_deref(),
                g.cert.as_deref(),
                g.key.as_deref(),
            )?)
        } else {
            None
        };
        let conn = ConnOpts {
            password: password.filter(|p| !p.is_empty()),
            user: g.user,
            timeout,
            tls,
        };
        let migrate = MigrateOpts {
            replace: false,
            parallel: g.parallel.max(1),
            batch_slots: g.batch_slots.max(1),
            keys_per_migrate: g.keys_per_migrate.max(1),
            slots_in_flight: g.slots_in_flight.max(1),
            engine: g.engine,
            ..MigrateOpts::default()
        };
        let wait_lease = Duration::try_from_secs_f64(g.wait_lease)
            .map_err(|_| anyhow::anyhow!("--wait-lease must be a number of seconds, 0 or more"))?;
        Ok(Settings {
            conn,
            migrate,
            wait_lease,
            zones,
            tls: g.tls,
            json: g.json,
            quiet: g.quiet,
            no_color: g.no_color,
            dry_run: g.dry_run,
        })
    }

    /// A live backend with every connection, migration and lease option
    /// (`replace`: MIGRATE ... REPLACE), its events shown by `out`.
    pub fn live(&self, replace: bool, out: &Output) -> Live {
        let migrate = MigrateOpts {
            replace,
            ..self.migrate.clone()
        };
        Live::new(self.conn.clone(), migrate, out.sink())
            .with_lease_wait(self.wait_lease)
            .with_zones(self.zones.clone())
    }

    /// What operations act on: the live nodes, or (`dry`) a simulated copy of them
    /// that records a plan; both built by [`Settings::live`].
    pub fn target(&self, dry: bool, replace: bool, out: &Output) -> Target {
        if dry {
            Target::Sim(Sim::over(self.live(replace, out)))
        } else {
            Target::Live(self.live(replace, out))
        }
    }

    /// What a script acts on: the saved topology `snapshot` offline (`--topology`),
    /// else as [`Settings::target`] with `--dry-run`.
    pub fn script_target(
        &self,
        snapshot: Option<&std::path::Path>,
        out: &Output,
    ) -> Result<Target> {
        Ok(match snapshot {
            Some(file) => Target::Sim(Sim::load(file)?.with_zones(self.zones.clone())),
            None => self.target(self.dry_run, false, out),
        })
    }
}

/// The options of `run` and `repl`, resolved.
#[derive(Clone, Debug)]
pub struct ScriptSettings {
    /// `--topology`: the saved topology an offline run acts on.
    pub topology: Option<PathBuf>,
    /// The sandbox's limits: `--max-operations`, `--max-seconds` (or the command's
    /// default), `--max-memory`, `--allow-write`, `--allow-host`, `--state`.
    pub limits: Limits,
    /// `--set NAME=VALUE` pairs (the script's `PARAMS`).
    pub params: BTreeMap<String, String>,
}

impl ScriptSettings {
    /// Resolves the script options; `seconds` is the time limit when
    /// `--max-seconds` is not given (`run`: an hour; the shell: none).
    pub fn resolve(opts: ScriptOpts, seconds: Option<u64>) -> Result<ScriptSettings> {
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
            allow_write: opts.allow_write,
            allow_hosts,
            state_file: opts.state,
            ..Limits::default()
        };
        Ok(ScriptSettings {
            topology: opts.topology,
            limits,
            params: params(&opts.set)?,
        })
    }
}

/// `--set NAME=VALUE` pairs as a map.
fn params(pairs: &[String]) -> Result<BTreeMap<String, String>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;
    use redis_trib::engine::atomic::Engine;

    fn settings(args: &[&str]) -> Result<Settings> {
        let cli = Cli::try_parse_from([&["redis-trib"], args].concat())?;
        Settings::resolve(cli.global)
    }

    #[test]
    fn every_migration_option_is_resolved_and_kept_by_the_factory() {
        let s = settings(&[
            "--parallel",
            "3",
            "--batch-slots",
            "7",
            "--keys-per-migrate",
            "11",
            "--slots-in-flight",
            "5",
            "--engine",
            "keys",
            "--wait-lease",
            "2.5",
            "--timeout",
            "4",
            "--quiet",
        ])
        .unwrap();
        let m = &s.migrate;
        assert_eq!(
            (
                m.parallel,
                m.batch_slots,
                m.keys_per_migrate,
                m.slots_in_flight
            ),
            (3, 7, 11, 5)
        );
        assert_eq!(m.engine, Engine::Keys);
        assert!(!m.replace);
        assert_eq!(s.wait_lease, Duration::from_millis(2500));
        assert_eq!(s.conn.timeout, Duration::from_secs(4));
        assert!(s.quiet && !s.json && !s.dry_run);
        // Every backend the factory builds reaches the nodes with these options.
        let out = Output::new(&s);
        for dry in [false, true, false] {
            let t = s.target(dry, false, &out);
            assert_eq!(matches!(t, Target::Sim(_)), dry);
            assert_eq!(t.conn_opts().map(|c| c.timeout), Some(s.conn.timeout));
        }
    }

    #[test]
    fn defaults_and_zero_counts() {
        let s = settings(&["--parallel", "0", "--batch-slots", "0"]).unwrap();
        let d = MigrateOpts::default();
        assert_eq!((s.migrate.parallel, s.migrate.batch_slots), (1, 1));
        assert_eq!(s.migrate.keys_per_migrate, d.keys_per_migrate);
        assert_eq!(s.migrate.slots_in_flight, d.slots_in_flight);
        assert_eq!(s.migrate.engine, Engine::Auto);
        assert_eq!(s.wait_lease, Duration::ZERO);
        assert_eq!(s.conn.timeout, Duration::from_secs(30));
    }

    #[test]
    fn wrong_values_are_refused_when_resolved() {
        let e = settings(&["--timeout", "0"]).err().unwrap();
        assert!(
            format!("{e:#}").contains("--timeout must be a positive number"),
            "{e:#}"
        );
        let e = settings(&["--wait-lease=-1"]).err().unwrap();
        assert!(format!("{e:#}").contains("--wait-lease must be"), "{e:#}");
    }

    #[test]
    fn script_options_are_resolved() {
        let cli = Cli::try_parse_from([
            "redis-trib",
            "run",
            "x.rhai",
            "--set",
            "a=1",
            "--set",
            "b=x=y",
            "--max-memory",
            "3",
        ])
        .unwrap();
        let Some(Command::Run { script, .. }) = cli.command else {
            panic!("not run");
        };
        let ss = ScriptSettings::resolve(script.clone(), Some(3600)).unwrap();
        assert_eq!(ss.params.get("b").map(String::as_str), Some("x=y"));
        assert_eq!(ss.limits.max_memory, 3 << 20);
        assert_eq!(ss.limits.max_seconds, Some(3600));
        let mut bad = script;
        bad.set.push("novalue".into());
        let e = ScriptSettings::resolve(bad, None).unwrap_err();
        assert!(e.to_string().contains("expected NAME=VALUE"), "{e}");
    }
}
