//! Command-line definitions (clap) and their dispatch to the library's operations.

use crate::output::Output;
use crate::replies::{print_per_node, print_reply, NodeAnswer};
use crate::scripting;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use redis_trib::addr::Addr;
use redis_trib::backend::live::Live;
use redis_trib::backend::sim::Sim;
use redis_trib::conn::{ConnOpts, TlsOpts};
use redis_trib::engine::key_copy::ImportOpts;
use redis_trib::engine::keys::MigrateOpts;
use redis_trib::error::{kind_of, Kind};
use redis_trib::keyspace::{refuse_writes, ClusterClient};
use redis_trib::lab::{Lab, LabOpts};
use redis_trib::ops::RebalanceOpts;
use redis_trib::ops::{self, DefaultBalancer};
use redis_trib::render::{backup_text, check_text, info_text, plan_text, topology_text_all};
use redis_trib::script::Target;
use redis_trib::script::{reference_markdown, ScriptEngine};
use redis_trib::slots::parse_slot_list;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Redis Cluster management shell: the classic redis-trib commands, plus Rhai scripts.
#[derive(Parser, Debug)]
#[command(name = "redis-trib", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// The command; none opens the interactive shell (on a terminal)
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Password for every node (also REDISCLI_AUTH, as redis-cli)
    #[arg(long, global = true, env = "REDISCLI_AUTH", hide_env_values = true)]
    pub password: Option<String>,
    /// Read the password from the terminal without echo (or the first line of stdin)
    #[arg(long, global = true)]
    pub askpass: bool,
    /// ACL user name (with --password)
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Bound in seconds on connecting, on each reply, and on every wait for the cluster to agree
    #[arg(
        long,
        global = true,
        default_value_t = 30.0,
        value_name = "SECONDS",
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    /// Connect to the nodes with TLS (as redis-cli --tls)
    #[arg(long, global = true)]
    pub tls: bool,
    /// CA certificate (PEM) the nodes' certificates chain to (default: the system's roots)
    #[arg(long, global = true, value_name = "FILE", requires = "tls")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for nodes that authenticate clients
    #[arg(long, global = true, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert
    #[arg(long, global = true, value_name = "FILE", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,
    /// Print data as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// No colours (NO_COLOR is honoured too)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print no progress, only results and errors
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Change nothing: run against an in-memory copy of the cluster and print the plan
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Slot moves that may run at once (never two from one source)
    #[arg(long, global = true, default_value_t = MigrateOpts::default().parallel, value_name = "N")]
    pub parallel: usize,
    /// Slots whose CLUSTER SETSLOT commands share one pipeline
    #[arg(long, global = true, default_value_t = MigrateOpts::default().batch_slots, value_name = "N")]
    pub batch_slots: usize,
    /// Keys per MIGRATE command
    #[arg(long, global = true, default_value_t = MigrateOpts::default().keys_per_migrate, value_name = "N")]
    pub keys_per_migrate: usize,
    /// Slots whose key batches share one round trip while draining keys
    #[arg(long, global = true, default_value_t = MigrateOpts::default().slots_in_flight, value_name = "N")]
    pub slots_in_flight: usize,
    /// Slot-migration engine: atomic (CLUSTER MIGRATESLOTS, Valkey 9.0+) where both nodes of a move support it, keys (SETSLOT + MIGRATE), or auto (atomic where supported, falling back to keys)
    #[arg(long, global = true, value_enum, default_value_t = redis_trib::engine::atomic::Engine::Auto, value_name = "ENGINE")]
    pub engine: redis_trib::engine::atomic::Engine,
    /// Wait up to SECONDS for another operation's lease on the cluster instead of refusing at once
    #[arg(long, global = true, default_value_t = 0.0, value_name = "SECONDS")]
    pub wait_lease: f64,
    /// Zone (availability zone, rack) of each node: lines `HOST:PORT ZONE` or `HOST ZONE`, or a JSON object; else the servers' availability-zone (Valkey 8+)
    #[arg(long, global = true, value_name = "FILE")]
    pub zones: Option<PathBuf>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make one free node a cluster owning all 16384 slots
    Start {
        /// HOST:PORT of a free, cluster-enabled node
        node: Addr,
        /// Slots per CLUSTER ADDSLOTS command
        #[arg(long, default_value_t = 16384)]
        max_slots: usize,
    },
    /// Make several free nodes one cluster, slots split evenly in the order given
    #[command(name = "start_multi", alias = "start-multi")]
    StartMulti {
        /// HOST:PORT of each free node (duplicates count once)
        #[arg(required = true)]
        nodes: Vec<Addr>,
        /// Slots per CLUSTER ADDSLOTS command
        #[arg(long, default_value_t = 16384)]
        max_slots: usize,
    },
    /// Add a free node as a master and move it its fair share of slots
    Join {
        /// Any node of the cluster
        cluster: Addr,
        /// The free node to add
        new: Addr,
    },
    /// Add a free node with no slots
    #[command(name = "join_no_load", alias = "join-no-load")]
    JoinNoLoad {
        /// Any node of the cluster
        cluster: Addr,
        /// The free node to add
        new: Addr,
    },
    /// Make a free node a replica of MASTER (of its master, if MASTER is a replica)
    Replicate {
        /// The master (or one of its replicas)
        master: Addr,
        /// The free node that becomes a replica
        slave: Addr,
    },
    /// Remove a node: its slots and keys go to the other masters, every node forgets it, it is reset
    Quit {
        /// The node to remove
        node: Addr,
    },
    /// Dissolve a cluster down to its last node, which must hold no keys
    Shutdown {
        /// The last node of the cluster
        node: Addr,
    },
    /// Finish or repair every migrating/importing slot in the cluster
    Fix {
        /// Any node of the cluster
        node: Addr,
        /// Overwrite keys that already exist on the destination of a migration
        #[arg(long)]
        replace: bool,
    },
    /// Move exactly these slots, with their keys, from SRC to DST
    #[command(name = "migrate_slots", visible_alias = "migrate-slots")]
    MigrateSlots {
        /// Source master
        src: Addr,
        /// Destination master
        dst: Addr,
        /// Slots: numbers and ranges, e.g. `0 2 4-7`
        #[arg(required = true, num_args = 1..)]
        slots: Vec<String>,
        /// Overwrite keys that already exist on the destination
        #[arg(long)]
        replace: bool,
    },
    /// Give every failed or uncovered slot to a free node so the cluster serves again
    Rescue {
        /// Any live node of the cluster
        cluster: Addr,
        /// The free node that takes the slots
        free: Addr,
    },
    /// Remove a dead or unwanted node from every live node's table (CLUSTER FORGET until all agree)
    Forget {
        /// Any live node of the cluster
        cluster: Addr,
        /// The node to forget: node id, id prefix (4+ characters) or HOST:PORT
        node: String,
    },
    /// Make a replica the master of its master's slots (CLUSTER FAILOVER), waiting until every node agrees
    Failover {
        /// The replica that takes over
        replica: Addr,
        /// Without the master's agreement (it is down); the other masters still elect the replica
        #[arg(long, conflicts_with = "takeover")]
        force: bool,
        /// Without any election (most masters are down too)
        #[arg(long)]
        takeover: bool,
    },
    /// Make a replica of the cluster replicate another master (CLUSTER REPLICATE), waiting until every node agrees and its link is up
    #[command(name = "move_replica", visible_alias = "move-replica")]
    MoveReplica {
        /// The replica to move (or a master with no slots and no keys)
        replica: Addr,
        /// Its new master (or a replica of it)
        new_master: Addr,
    },
    /// Make free nodes a cluster with N replicas per master (as redis-cli --cluster create)
    Create {
        /// HOST:PORT of each free node (masters first across hosts, then replicas)
        #[arg(required = true)]
        nodes: Vec<Addr>,
        /// Replicas per master
        #[arg(long, default_value_t = 0)]
        replicas: usize,
        /// Slots per CLUSTER ADDSLOTS command
        #[arg(long, default_value_t = 16384)]
        max_slots: usize,
    },
    /// Check the cluster: agreement on slots, open slots, coverage, failing nodes (exit 0 only when healthy)
    Check {
        /// Any node of the cluster
        node: Addr,
    },
    /// Keys, slots and replicas per master, with totals
    Info {
        /// Any node of the cluster
        node: Addr,
    },
    /// Even out slots by weight (redis-cli semantics, exact plan); --dry-run prints the plan
    Rebalance {
        /// Any node of the cluster
        node: Addr,
        /// NODE=WEIGHT (node id prefix or HOST:PORT); others weigh 1, 0 drains a master
        #[arg(long, value_name = "NODE=WEIGHT")]
        weight: Vec<String>,
        /// Move only if some master is more than this many percent off its target
        #[arg(long, default_value_t = 2.0)]
        threshold: f64,
        /// Give slots to masters that have none
        #[arg(long)]
        use_empty_masters: bool,
        /// What to even out: slots, keys (per-slot key counts) or memory (used_memory per key)
        #[arg(long, default_value = "slots", value_name = "slots|keys|memory")]
        by: String,
    },
    /// Move exactly N slots to one master, from some masters or all
    Reshard {
        /// Any node of the cluster
        node: Addr,
        /// Source masters: ids, id prefixes or HOST:PORT, comma-separated, or `all`
        #[arg(long, default_value = "all")]
        from: String,
        /// Destination master: id, id prefix or HOST:PORT
        #[arg(long)]
        to: String,
        /// How many slots
        #[arg(long)]
        slots: usize,
        /// Accepted for redis-cli compatibility (redis-trib never asks)
        #[arg(long)]
        yes: bool,
    },
    /// Set cluster-node-timeout (milliseconds) on every node of the cluster
    #[command(name = "set-timeout", alias = "set_timeout")]
    SetTimeout {
        /// Any node of the cluster
        node: Addr,
        /// The timeout in milliseconds
        ms: u64,
    },
    /// Run one command on every node and print each node's reply
    Call {
        /// Any node of the cluster
        node: Addr,
        /// The command and its arguments (put `--` before arguments that start with `-`)
        #[arg(required = true, num_args = 1.., allow_negative_numbers = true)]
        command: Vec<String>,
        /// Only masters
        #[arg(long, conflicts_with = "replicas")]
        masters: bool,
        /// Only replicas
        #[arg(long)]
        replicas: bool,
    },
    /// Move (or copy) every key of a standalone Redis (database 0) into the cluster,
    /// each straight to the master owning its slot
    Import {
        /// Any node of the cluster
        node: Addr,
        /// HOST:PORT of the standalone Redis
        #[arg(long, value_name = "HOST:PORT")]
        from: Addr,
        /// Keep the keys on the source (default: move them)
        #[arg(long)]
        copy: bool,
        /// Overwrite keys that already exist in the cluster (default: stop, naming the key)
        #[arg(long)]
        replace: bool,
        /// Password of the source, if it differs from the cluster's
        #[arg(
            long,
            value_name = "PASSWORD",
            env = "REDIS_TRIB_FROM_PASSWORD",
            hide_env_values = true
        )]
        from_password: Option<String>,
        /// ACL user of the source (with --from-password)
        #[arg(long, value_name = "USER")]
        from_user: Option<String>,
    },
    /// Save each master's RDB and every node's CLUSTER NODES into DIR, with a manifest
    Backup {
        /// Any node of the cluster
        node: Addr,
        /// A new or empty directory
        dir: PathBuf,
    },
    /// Run one command on the cluster as one keyspace: key commands go to their
    /// slot's owner (MOVED/ASK followed), MGET/MSET/DEL are split by slot, INFO/PING/
    /// CONFIG answer per node, DBSIZE/KEYS/FLUSHALL per master, SCAN pages through every master
    Exec {
        /// Any node of the cluster
        node: Addr,
        /// The command and its arguments (put `--` before arguments that start with `-`)
        #[arg(required = true, num_args = 1.., allow_negative_numbers = true)]
        command: Vec<String>,
    },
    /// List the nodes: masters with slot and key counts, replicas under their master
    List {
        /// Any node of the cluster
        node: Addr,
        /// Masters only
        #[arg(long)]
        masters: bool,
        /// Every slot range (long lists are otherwise summarised: `5002 slots in 1431 ranges`)
        #[arg(long)]
        all_slots: bool,
    },
    /// Run a Rhai script (a workflow or a balance plan)
    Run {
        /// The .rhai file
        file: PathBuf,
        /// Arguments, visible to the script as ARGS
        args: Vec<String>,
        #[command(flatten)]
        script: ScriptOpts,
    },
    /// Interactive shell: Rhai with every cluster function; `cluster` holds NODE
    Repl {
        /// A node of the cluster to work on (the variable `cluster` in the shell)
        node: Option<Addr>,
        #[command(flatten)]
        script: ScriptOpts,
    },
    /// Print the script API reference (generated from the engine)
    Doc,
    /// Start and stop local redis-server nodes for trying things out
    #[command(subcommand)]
    Lab(LabCommand),
}

/// Options of `run` and `repl`.
#[derive(Args, Debug, Clone)]
pub struct ScriptOpts {
    /// NAME=VALUE pairs, visible to the script in the map PARAMS
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Run offline against a saved topology (`redis-trib list NODE --json > FILE`)
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
    /// Stop a script after this many operations (runaway loops)
    #[arg(long, default_value_t = 20_000_000)]
    pub max_operations: u64,
    /// Stop a script after this many seconds (`run`: 3600 unless given; the shell: none; 0: no limit)
    #[arg(long, value_name = "SECONDS")]
    pub max_seconds: Option<u64>,
    /// Stop a script whose values hold more than this many MiB
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub max_memory: usize,
    /// A directory scripts may write under (backup_cluster); repeatable; none: no writes
    #[arg(long, value_name = "DIR")]
    pub allow_write: Vec<PathBuf>,
    /// A host scripts may reach besides the clusters named on the command line; repeatable
    #[arg(long, value_name = "HOST[:PORT]")]
    pub allow_host: Vec<String>,
    /// A file the script keeps state in between runs (save_state writes it, under an --allow-write DIR; load_state reads it)
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

impl Default for ScriptOpts {
    fn default() -> Self {
        ScriptOpts {
            set: Vec::new(),
            topology: None,
            max_operations: 20_000_000,
            max_seconds: None,
            max_memory: 512,
            allow_write: Vec::new(),
            allow_host: Vec::new(),
            state: None,
        }
    }
}

/// `lab` subcommands.
#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Start N free cluster-enabled nodes on 127.0.0.1 (with --tls: TLS-only nodes
    /// and certificates made for the lab)
    Up {
        /// How many nodes
        #[arg(default_value_t = 3)]
        count: usize,
        /// First port; nodes take consecutive ports (bus ports are +10000)
        #[arg(long, default_value_t = 7000)]
        base_port: u16,
        /// cluster-node-timeout in milliseconds
        #[arg(long, default_value_t = 3000)]
        node_timeout: u64,
        #[command(flatten)]
        dir: LabDir,
    },
    /// Stop the lab's nodes (by pid) and remove its directory
    Down {
        #[command(flatten)]
        dir: LabDir,
    },
    /// Show the lab's nodes and whether they run
    Status {
        #[command(flatten)]
        dir: LabDir,
    },
}

/// Where the lab lives.
#[derive(Args, Debug)]
pub struct LabDir {
    /// Lab directory
    #[arg(long, env = "REDIS_TRIB_LAB_DIR", default_value_os_t = std::env::temp_dir().join("redis-trib-lab"))]
    pub dir: PathBuf,
}

impl Global {
    /// A live backend with every connection, migration and lease option of the flags
    /// (`replace`: MIGRATE ... REPLACE).
    pub fn live(&self, replace: bool, out: &Output) -> Result<Live> {
        let migrate = MigrateOpts {
            replace,
            parallel: self.parallel.max(1),
            batch_slots: self.batch_slots.max(1),
            keys_per_migrate: self.keys_per_migrate.max(1),
            slots_in_flight: self.slots_in_flight.max(1),
            engine: self.engine,
            ..MigrateOpts::default()
        };
        let wait = Duration::try_from_secs_f64(self.wait_lease)
            .map_err(|_| anyhow::anyhow!("--wait-lease must be a number of seconds, 0 or more"))?;
        Ok(Live::new(self.conn_opts()?, migrate, out.sink()).with_lease_wait(wait))
    }

    /// Connection options from the flags.
    pub fn conn_opts(&self) -> Result<ConnOpts> {
        // Bounded so that deadlines (now + timeout) stay representable.
        const MAX_TIMEOUT_SECS: f64 = 1e9;
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero() && t.as_secs_f64() <= MAX_TIMEOUT_SECS)
            .with_context(|| {
                format!(
                    "--timeout must be a positive number of seconds, at most {MAX_TIMEOUT_SECS:e} (got {:?})",
                    self.timeout
                )
            })?;
        let tls = if self.tls {
            Some(TlsOpts::from_files(
                self.cacert.as_deref(),
                self.cert.as_deref(),
                self.key.as_deref(),
            )?)
        } else {
            None
        };
        Ok(ConnOpts {
            password: self.password.clone().filter(|p| !p.is_empty()),
            user: self.user.clone(),
            timeout,
            tls,
        })
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    let g = scripting::secure(cli.global)?;
    if let Some(path) = &g.zones {
        ops::zones::use_file(Some(ops::zones::ZoneFile::load(path)?));
    }
    let out = Output::new(&g);
    let live = |replace: bool| g.live(replace, &out);
    // Classic commands act on live nodes, or on a simulated copy with --dry-run.
    let target = |replace: bool| -> Result<Target> {
        Ok(if g.dry_run {
            Target::Sim(Sim::over(live(replace)?))
        } else {
            Target::Live(live(replace)?)
        })
    };
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
    let mut t = target(matches!(
        &command,
        Command::MigrateSlots { replace: true, .. } | Command::Fix { replace: true, .. }
    ))?;
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
            ops::join_no_load(b, &cluster, &new)?;
            format!("{new} joined as a master with no slots")
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
            let slots = repairs.iter().filter(|r| r.is_slot()).count();
            let mut text = format!("{slots} open slot(s) repaired; none left open");
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
            let mut source = g.conn_opts()?;
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
            if g.json && !g.dry_run {
                let doc =
                    serde_json::json!({ "source": from.to_string(), "keys": keys, "copy": copy });
                out.data(&serde_json::to_string_pretty(&doc)?);
            }
            format!(
                "{} {keys} keys from {from} into the cluster",
                if copy { "copied" } else { "moved" }
            )
        }
        Command::Backup { node, dir } => {
            let manifest = ops::backup(b, &node, &dir)?;
            if g.json && !g.dry_run {
                out.data(&serde_json::to_string_pretty(&manifest)?);
            } else if !g.dry_run {
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
            if g.json {
                let mut doc = serde_json::to_value(&topo)?;
                ops::zones::annotate(b, &topo, &mut doc);
                out.data(&serde_json::to_string_pretty(&doc)?);
            } else {
                out.data(topology_text_all(&topo, masters, all_slots, out.painter()).trim_end());
            }
            return Ok(());
        }
        Command::Check { node } => {
            let report = ops::check(b, &node)?;
            if g.json {
                let doc = serde_json::json!({ "healthy": report.healthy(), "problems": report.problems, "notes": report.notes });
                out.data(&serde_json::to_string_pretty(&doc)?);
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
            let failed = print_per_node(&out, &g, &answers)?;
            if failed > 0 {
                anyhow::bail!("{failed} node(s) answered with an error");
            }
            return Ok(());
        }
        Command::Exec { node, command } => {
            let args: Vec<Vec<u8>> = command.iter().map(|a| a.clone().into_bytes()).collect();
            if g.dry_run {
                refuse_writes(&args)?;
            }
            let reply = ClusterClient::open(&node, &g.conn_opts()?)?.execute(&args)?;
            let failed = print_reply(&out, &g, reply)?;
            if failed > 0 {
                anyhow::bail!("{failed} node(s) answered with an error");
            }
            return Ok(());
        }
        Command::Info { node } => {
            let mut topo = ops::topology(b, &node)?;
            ops::fill_metrics(b, &mut topo);
            let info = ops::info(&topo);
            if g.json {
                out.data(&serde_json::to_string_pretty(&info)?);
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
            let printed = scripting::Printed::wanted(&g, &script);
            let engine = scripting::engine(
                &script,
                g.dry_run,
                &out,
                live(false)?,
                folder.into_iter().collect(),
                Some(3600),
                printed.as_ref(),
            )?;
            engine.allow_cluster(&scripting::addresses(&args));
            let mut scope = ScriptEngine::scope(&args, &scripting::params(&script.set)?);
            let name = file.display().to_string();
            let result = engine.run(&name, &text, &mut scope);
            return scripting::finish(&engine, &g, &out, printed, result);
        }
        Command::Repl { node, script } => {
            let engine = scripting::engine(
                &script,
                g.dry_run,
                &out,
                live(false)?,
                vec![PathBuf::from(".")],
                None,
                None,
            )?;
            let params = scripting::params(&script.set)?;
            return crate::repl::run(engine, node, params, &g, &out);
        }
        Command::Doc => {
            let engine = scripting::offline_engine();
            if g.json {
                out.data(&serde_json::to_string_pretty(&engine.reference())?);
            } else {
                out.data(reference_markdown(engine.docs()).trim_end());
            }
            return Ok(());
        }
        Command::Lab(cmd) => return lab(cmd, g.tls, &out),
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

/// `lab` commands; `tls` (the global `--tls`) makes `lab up` start TLS-only nodes.
fn lab(cmd: LabCommand, tls: bool, out: &Output) -> Result<()> {
    match cmd {
        LabCommand::Up {
            count,
            base_port,
            node_timeout,
            dir,
        } => {
            if let Ok(old) = Lab::load(&dir.dir) {
                if old.nodes.iter().any(Lab::is_running) {
                    anyhow::bail!(
                        "a lab is already running in {} (ports {}); `redis-trib lab down` first",
                        dir.dir.display(),
                        old.nodes
                            .iter()
                            .map(|n| n.port.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            let opts = LabOpts {
                base_port: Some(base_port),
                node_timeout_ms: node_timeout,
                owned: false,
                tls,
                ..LabOpts::default()
            };
            let lab = Lab::start(&dir.dir, count, opts)?;
            lab.save()?;
            for n in &lab.nodes {
                out.data(&n.addr().to_string());
            }
            out.done(&format!(
                "{count} free nodes running; state in {}",
                dir.dir.display()
            ));
            if let Some(certs) = &lab.tls {
                out.note(&format!(
                    "TLS only: reach them with {}",
                    certs.client_flags().join(" ")
                ));
            }
        }
        LabCommand::Down { dir } => {
            let mut lab = Lab::load(&dir.dir)?;
            let n = lab.nodes.len();
            lab.stop()?;
            std::fs::remove_dir_all(&dir.dir)
                .with_context(|| format!("cannot remove {}", dir.dir.display()))?;
            out.done(&format!(
                "stopped {n} nodes and removed {}",
                dir.dir.display()
            ));
        }
        LabCommand::Status { dir } => {
            let lab = Lab::load(&dir.dir)?;
            if let Some(certs) = &lab.tls {
                out.note(&format!("TLS only: {}", certs.client_flags().join(" ")));
            }
            for n in &lab.nodes {
                let state = if Lab::is_running(n) {
                    "running"
                } else {
                    "stopped"
                };
                out.data(&format!("{}  pid {}  {state}", n.addr(), n.pid));
            }
        }
    }
    Ok(())
}
