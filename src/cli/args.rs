//! The command-line schema (clap): the global options, the commands and their
//! arguments. Nothing here acts: `settings` resolves the global options once and
//! `dispatch` runs the command.

use clap::{Args, Parser, Subcommand};
use redis_trib::addr::Addr;
use redis_trib::engine::keys::MigrateOpts;
use std::path::PathBuf;

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
    /// Add free nodes with no slots (several at once: one wait for all)
    #[command(name = "join_no_load", alias = "join-no-load")]
    JoinNoLoad {
        /// Any node of the cluster
        cluster: Addr,
        /// The free node(s) to add
        #[arg(required = true, num_args = 1..)]
        new: Vec<Addr>,
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
    /// Finish or repair every migrating/importing slot in the cluster, and give back slots no
    /// master claims while nodes still name an owner
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
