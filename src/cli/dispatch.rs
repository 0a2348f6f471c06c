//! Running one command: the command line resolved ([`super::settings`]), the backend
//! the command acts on (live, or a simulated copy with `--dry-run`), the library
//! operation, and what it prints.

use super::args::{Cli, Command, ScriptOpts};
use super::json;
use super::settings::{ScriptSettings, Settings};
use crate::output::Output;
use crate::replies::{print_per_node, print_reply, NodeAnswer};
use crate::scripting;
use anyhow::{Context, Result};
use redis_trib::addr::Addr;
use redis_trib::engine::key_copy::ImportOpts;
use redis_trib::error::{kind_of, Kind};
use redis_trib::keyspace::{refuse_writes, ClusterClient};
use redis_trib::ops::RebalanceOpts;
use redis_trib::ops::{self, DefaultBalancer};
use redis_trib::render::{backup_text, check_text, info_text, plan_text, topology_text_all};
use redis_trib::script::Target;
use redis_trib::script::{reference_markdown, ScriptEngine};
use redis_trib::slots::parse_slot_list;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Runs one command: the command line resolved once into [`Settings`], then the
/// command.
pub fn run(cli: Cli) -> Result<()> {
    let s = Settings::resolve(cli.global)?;
    let out = Output::new(&s);
    let command = match cli.command {
        Some(c) => c,
        None if std::io::stdin().is_terminal() => Command::Repl {
            node: None,
            script: ScriptOpts::default(),
        },
        None => anyhow::bail!(
            "no command given: see `redis-trib --help` (on a terminal, no command opens the shell)"
        ),
    };
    // Classic commands act on live nodes, or on a simulated copy with --dry-run.
    let replace = matches!(
        &command,
        Command::MigrateSlots { replace: true, .. } | Command::Fix { replace: true, .. }
    );
    let mut t = s.target(s.dry_run, replace, &out);
    let b = t.backend();
    let done = match command {
        Command::Start { node, max_slots } => {
            ops::start(b, &node, max_slots)?;
            format!("{node} now serves all 16384 slots")
        }
        Command::StartMulti { nodes, max_slots } => {
            ops::start_multi(b, &nodes, max_slots)?;
            "the cluster is up: all 16384 slots served".into()
        }
        Command::Create {
            nodes,
            replicas,
            max_slots,
        } => {
            ops::create(b, &nodes, replicas, max_slots)?;
            if replicas == 0 {
                "the cluster is up: all 16384 slots served".to_string()
            } else {
                format!("the cluster is up: all 16384 slots served, {replicas} replica(s) per master, every replica linked")
            }
        }
        Command::Join { cluster, new } => {
            ops::join(b, &cluster, &new, &mut DefaultBalancer)?;
            format!("{new} joined with its share of slots")
        }
        Command::JoinNoLoad { cluster, new } => {
            ops::join_no_load_many(b, &cluster, &new)?;
            match new.as_slice() {
                [one] => format!("{one} joined as a master with no slots"),
                many => {
                    let names: Vec<String> = many.iter().map(Addr::to_string).collect();
                    format!("{} joined as masters with no slots", names.join(", "))
                }
            }
        }
        Command::Replicate { master, slave } => {
            ops::replicate(b, &master, &slave)?;
            format!("{slave} now replicates {master}")
        }
        Command::Quit { node } => {
            ops::quit(b, &node)?;
            format!("{node} left the cluster and was reset")
        }
        Command::Shutdown { node } => {
            ops::shutdown(b, &node)?;
            format!("{node} was reset; the cluster is dissolved")
        }
        Command::Fix { node, .. } => {
            let repairs = ops::fix(b, &node)?;
            let reclaimed = repairs
                .iter()
                .filter(|r| matches!(r, ops::Repair::Reclaim { .. }))
                .count();
            let slots = repairs.iter().filter(|r| r.is_slot()).count() - reclaimed;
            let mut text = format!("{slots} open slot(s) repaired; none left open");
            if reclaimed > 0 {
                text.push_str(&format!(
                    "; {reclaimed} slot(s) no master claimed given back to their owner"
                ));
            }
            // Settings put back, by name: `cluster-node-timeout put back on 1 node(s)`.
            let mut settings: std::collections::BTreeMap<&str, usize> = Default::default();
            for r in &repairs {
                if let ops::Repair::Setting { name, .. } = r {
                    *settings.entry(name.as_str()).or_default() += 1;
                }
            }
            for (name, n) in settings {
                text.push_str(&format!("; {name} put back on {n} node(s)"));
            }
            text
        }
        Command::MigrateSlots {
            src, dst, slots, ..
        } => {
            let slots = parse_slot_list(&slots)?;
            let keys = ops::migrate_slots(b, &src, &dst, &slots)?;
            format!(
                "moved {} slots and {keys} keys from {src} to {dst}",
                slots.len()
            )
        }
        Command::Rescue { cluster, free } => {
            ops::rescue(b, &cluster, &free)?;
            format!("{free} took over the failed slots; the cluster serves again")
        }
        Command::Forget { cluster, node } => {
            let gone = ops::forget(b, &cluster, &node)?;
            format!(
                "every live node forgot node {}; if it comes back, reset it (CLUSTER RESET HARD) before it rejoins",
                gone.node_id
            )
        }
        Command::Failover {
            replica,
            force,
            takeover,
        } => {
            let mode = match (force, takeover) {
                (_, true) => redis_trib::backend::FailoverMode::Takeover,
                (true, false) => redis_trib::backend::FailoverMode::Force,
                (false, false) => redis_trib::backend::FailoverMode::Default,
            };
            let done = ops::failover(b, &replica, mode)?;
            format!(
                "{replica} is the master of slots {} (was {}); every reachable node agrees",
                redis_trib::slots::format_ranges(&done.slots),
                done.old_master
            )
        }
        Command::MoveReplica {
            replica,
            new_master,
        } => {
            let moved = ops::move_replica(b, &replica, &new_master)?;
            if moved.changed {
                format!(
                    "{replica} now replicates {} (was {}); every node agrees and its link is up",
                    moved.new_master,
                    moved
                        .old_master
                        .as_deref()
                        .unwrap_or("a master without slots")
                )
            } else {
                format!("{replica} already replicates {}", moved.new_master)
            }
        }
        Command::Import {
            node,
            from,
            copy,
            replace,
            from_password,
            from_user,
        } => {
            let mut source = s.conn.clone();
            if from_password.is_some() {
                source.password = from_password.filter(|p| !p.is_empty());
                source.user = from_user;
            }
            let opts = ImportOpts {
                copy,
                replace,
                ..ImportOpts::new(source)
            };
            let keys = ops::import(b, &node, &from, &opts)?;
            if s.json && !s.dry_run {
                json::print(&out, &json::import(&from, keys, copy))?;
            }
            format!(
                "{} {keys} keys from {from} into the cluster",
                if copy { "copied" } else { "moved" }
            )
        }
        Command::Backup { node, dir } => {
            let manifest = ops::backup(b, &node, &dir)?;
            if s.json && !s.dry_run {
                json::print(&out, &manifest)?;
            } else if !s.dry_run {
                out.data(backup_text(&manifest).trim_end());
            }
            format!(
                "backed up {} masters ({} keys) into {}",
                manifest.masters.len(),
                manifest.masters.iter().map(|m| m.keys).sum::<u64>(),
                dir.display()
            )
        }
        Command::SetTimeout { node, ms } => {
            let n = ops::set_timeout(b, &node, ms)?;
            format!("cluster-node-timeout is {ms} ms on all {n} nodes")
        }
        Command::Rebalance {
            node,
            weight,
            threshold,
            use_empty_masters,
            by,
        } => {
            let by: ops::BalanceBy = by.parse()?;
            let opts = RebalanceOpts {
                weights: weight
                    .iter()
                    .map(|w| parse_weight(w))
                    .collect::<Result<_>>()?,
                threshold_pct: threshold,
                use_empty_masters,
            };
            let moves = ops::rebalance_by(b, &node, &opts, by)?;
            let slots: usize = moves.iter().map(|m| m.count).sum();
            format!("rebalanced: {slots} slots moved in {} moves", moves.len())
        }
        Command::Reshard {
            node,
            from,
            to,
            slots,
            yes: _,
        } => {
            let from: Vec<String> = if from.trim() == "all" {
                Vec::new()
            } else {
                from.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            let moves = ops::reshard(b, &node, &from, &to, slots)?;
            format!(
                "resharded: {slots} slots moved to {to} from {} source(s)",
                moves.len()
            )
        }
        Command::List {
            node,
            masters,
            all_slots,
        } => {
            let mut topo = ops::topology(b, &node)?;
            // Each node's server and version (and, for snapshots, keys and memory:
            // memory-aware plans offline), one INFO round trip a node.
            ops::fill_metrics(b, &mut topo);
            if s.json {
                json::print(&out, &json::list(b, &topo)?)?;
            } else {
                out.data(topology_text_all(&topo, masters, all_slots, out.painter()).trim_end());
            }
            return Ok(());
        }
        Command::Check { node } => {
            let report = ops::check(b, &node)?;
            if s.json {
                json::print(&out, &json::check(&report))?;
            } else {
                out.data(check_text(&report, out.painter()).trim_end());
            }
            if !report.healthy() {
                return Err(redis_trib::error::error(
                    redis_trib::error::Kind::Unhealthy(format!(
                        "{} problem(s) found in the cluster of {node}",
                        report.problems.len()
                    )),
                ));
            }
            return Ok(());
        }
        Command::Call {
            node,
            command,
            masters,
            replicas,
        } => {
            let topo = ops::topology(b, &node)?;
            let args: Vec<Vec<u8>> = command.iter().map(|a| a.clone().into_bytes()).collect();
            let chosen: Vec<&redis_trib::topology::Node> = topo
                .nodes
                .iter()
                .filter(|n| (!masters || n.is_master()) && (!replicas || !n.is_master()))
                .collect();
            let reachable = |n: &redis_trib::topology::Node| {
                !n.is_failed() && !topo.unreachable.contains_key(&n.node_id)
            };
            // Every reachable node at once (the backend runs them concurrently).
            let asked: Vec<Addr> = chosen
                .iter()
                .filter(|n| reachable(n))
                .map(|n| n.addr())
                .collect();
            let mut replies = asked.iter().cloned().zip(b.execute_many(&asked, &args));
            let answers: Vec<NodeAnswer> = chosen
                .iter()
                .map(|n| {
                    let addr = n.addr();
                    let reply = if !reachable(n) {
                        Err("unreachable".to_string())
                    } else {
                        match replies.find(|(a, _)| a == &addr) {
                            // Each node's line names the node: its error need not.
                            Some((_, r)) => r.map_err(|e| match kind_of(&e) {
                                Some(Kind::Server { reply, .. }) => reply.clone(),
                                _ => format!("{e:#}"),
                            }),
                            None => Err("not asked".to_string()),
                        }
                    };
                    (addr.to_string(), reply)
                })
                .collect();
            let failed = print_per_node(&out, &s, &answers)?;
            if failed > 0 {
                anyhow::bail!("{failed} node(s) answered with an error");
            }
            return Ok(());
        }
        Command::Exec { node, command } => {
            let args: Vec<Vec<u8>> = command.iter().map(|a| a.clone().into_bytes()).collect();
            if s.dry_run {
                refuse_writes(&args)?;
            }
            let reply = ClusterClient::open(&node, &s.conn)?.execute(&args)?;
            let failed = print_reply(&out, &s, reply)?;
            if failed > 0 {
                anyhow::bail!("{failed} node(s) answered with an error");
            }
            return Ok(());
        }
        Command::Info { node } => {
            let mut topo = ops::topology(b, &node)?;
            ops::fill_metrics(b, &mut topo);
            let info = ops::info(&topo);
            if s.json {
                json::print(&out, &info)?;
            } else {
                out.data(info_text(&info).trim_end());
            }
            return Ok(());
        }
        Command::Run { file, args, script } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read script {}", file.display()))?;
            let folder = file.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            });
            let script = ScriptSettings::resolve(script, Some(3600))?;
            let printed = scripting::Printed::wanted(&s, &script);
            let engine = scripting::engine(
                &script,
                &s,
                &out,
                folder.into_iter().collect(),
                printed.as_ref(),
            )?;
            engine.allow_cluster(&scripting::addresses(&args));
            let mut scope = ScriptEngine::scope(&args, &script.params);
            let name = file.display().to_string();
            let result = engine.run(&name, &text, &mut scope);
            return scripting::finish(&engine, &s, &out, printed, result);
        }
        Command::Repl { node, script } => {
            let script = ScriptSettings::resolve(script, None)?;
            let engine = scripting::engine(&script, &s, &out, vec![PathBuf::from(".")], None)?;
            return crate::repl::run(engine, node, script.params, &s, &out);
        }
        Command::Doc => {
            let engine = scripting::offline_engine();
            if s.json {
                json::print(&out, &engine.reference())?;
            } else {
                out.data(reference_markdown(engine.docs()).trim_end());
            }
            return Ok(());
        }
        Command::Lab(cmd) => return super::lab::lab(cmd, s.tls, &out),
    };
    match &t {
        Target::Sim(sim) => out.data(plan_text(sim.steps()).trim_end()),
        Target::Live(_) => out.done(&done),
    }
    Ok(())
}

/// `NODE=WEIGHT` of `rebalance --weight`.
fn parse_weight(text: &str) -> Result<(String, f64)> {
    let (node, w) = text.rsplit_once('=').with_context(|| {
        format!("--weight {text}: expected NODE=WEIGHT (node id prefix or HOST:PORT)")
    })?;
    let w: f64 = w
        .parse()
        .ok()
        .filter(|w: &f64| w.is_finite() && *w >= 0.0)
        .with_context(|| format!("--weight {text}: the weight must be a number >= 0"))?;
    Ok((node.to_string(), w))
}
