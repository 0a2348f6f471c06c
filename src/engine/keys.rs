//! The slot-migration engine. Slots move in batches: `SETSLOT IMPORTING` for the whole
//! batch pipelined to the destination, then `SETSLOT MIGRATING` pipelined to the
//! source, then keys drained with pipelined `GETKEYSINSLOT` + `MIGRATE ... KEYS` (one
//! slot per MIGRATE, many MIGRATEs per round trip; empty slots cost nothing), then
//! `SETSLOT NODE`: the destination claims the batch in one transaction (see
//! `claim_pipe` for why), then the source and every other master are told,
//! pipelined (the others concurrently). That per-slot order is the one that keeps
//! the cluster correct. If anything fails, the batch is settled before returning: finished slots
//! are assigned, untouched slots made stable again, and only a slot whose keys are
//! split between the two nodes stays open, named in the error for `fix` to finish.

use crate::addr::Addr;
use crate::conn::pool::Pool;
pub use crate::conn::reply::error_code;
use crate::conn::reply::{refusal, Refusal};
use crate::conn::{server_error, ConnOpts, NodeConn};
use crate::engine::epochs::{wait_until_claim_is_safe, ClaimOrder};
use crate::engine::{Event, Job, MoveProgress, MoveStats};
use crate::error::{error, kind_of, with_detail, Kind};
use crate::interrupt;
use crate::slots::format_ranges;
use crate::topology::Node;
use anyhow::{anyhow, bail, Result};
use redis::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Tuning of the engine.
#[derive(Clone, Debug)]
pub struct MigrateOpts {
    /// Slots whose SETSLOT commands go in one pipeline.
    pub batch_slots: usize,
    /// Keys listed per `GETKEYSINSLOT` and moved per `MIGRATE`.
    pub keys_per_migrate: usize,
    /// Slots whose key batches are pipelined together while draining.
    pub slots_in_flight: usize,
    /// Moves that may run at once (never two from one source).
    pub parallel: usize,
    /// `MIGRATE ... REPLACE`: overwrite keys that already exist on the destination.
    pub replace: bool,
    /// `MIGRATE` timeout in milliseconds.
    pub migrate_timeout_ms: u64,
    /// Which engine moves slots (`--engine`; see [`crate::engine::atomic`]).
    pub engine: crate::engine::atomic::Engine,
}

impl Default for MigrateOpts {
    fn default() -> Self {
        MigrateOpts {
            batch_slots: 256,
            keys_per_migrate: 500,
            slots_in_flight: 16,
            parallel: 4,
            replace: false,
            migrate_timeout_ms: 10_000,
            engine: crate::engine::atomic::Engine::default(),
        }
    }
}

/// What a move shares with the other moves of its operation: what stops it between
/// two batches (another move failed: `stop`; a lease the operation holds was lost;
/// Ctrl-C, [`interrupt::requested`]), and the order of their claims.
pub struct Guard<'a> {
    /// Set when another parallel move failed.
    pub stop: &'a AtomicBool,
    /// Flags of the leases held, each true once that lease is lost.
    pub leases: &'a [Arc<AtomicBool>],
    /// The order of the operation's claims, shared by its moves.
    pub claims: &'a ClaimOrder,
}

impl Guard<'_> {
    /// Why the move must stop before its next batch, if it must.
    pub(crate) fn reason(&self) -> Option<fn(String) -> Kind> {
        if interrupt::requested() {
            Some(Kind::Interrupted)
        } else if self.leases.iter().any(|l| l.load(Ordering::SeqCst)) {
            Some(Kind::LeaseLost)
        } else if self.stop.load(Ordering::SeqCst) {
            Some(Kind::MoveStopped)
        } else {
            None
        }
    }
}

/// Moves a job's slots in batches; `masters` are all masters of the cluster (the
/// pair included or not: they are skipped). Stops between batches when `guard` says
/// so. Before each batch, checks that its slots are still stable and owned by the
/// source (another tool or a person may have opened them meanwhile): if not, stops
/// there, touching nothing of that batch.
pub fn move_slots(
    pool: &mut Pool,
    job: &Job,
    masters: &[Node],
    opts: &MigrateOpts,
    events: &mut dyn FnMut(Event),
    guard: &Guard,
) -> Result<MoveStats> {
    // The engine of this move: atomic (done here) or key by key (below).
    if let Some(stats) = crate::engine::atomic::dispatch(pool, job, opts, events, guard)? {
        return Ok(stats);
    }
    let Job { src, dst, slots } = job;
    let mut stats = MoveStats::default();
    let report = |stats: &MoveStats| MoveProgress {
        src: src.addr().to_string(),
        dst: dst.addr().to_string(),
        slots_done: stats.slots,
        slots_total: slots.len(),
        keys_moved: stats.keys,
    };
    let so_far = |stats: &MoveStats| {
        format!(
            "after moving {} of {} slots ({} keys) from {} to {}",
            stats.slots,
            slots.len(),
            stats.keys,
            src.addr(),
            dst.addr()
        )
    };
    events(Event::Progress(report(&stats)));
    for batch in slots.chunks(opts.batch_slots.max(1)) {
        if let Some(kind) = guard.reason() {
            let why = match kind(String::new()) {
                Kind::Interrupted(_) => "interrupted",
                Kind::LeaseLost(_) => "stopped: this operation lost its lease on the cluster (its connections to the nodes were closed or killed)",
                _ => "stopped because another move failed",
            };
            return Err(error(kind(format!(
                "{why} {}; no slot is left open",
                so_far(&stats)
            ))));
        }
        if let Err(e) = still_ours(pool, src, dst, batch) {
            return Err(match kind_of(&e) {
                Some(Kind::Conflict(found)) => error(Kind::Conflict(format!(
                    "{found}; stopped {} without touching those slots; no slot is left open by this move",
                    so_far(&stats)
                ))),
                _ => e.context(format!("stopped {}", so_far(&stats))),
            });
        }
        let keys = move_batch(pool, src, dst, batch, masters, opts, guard.claims, events)?;
        stats.slots += batch.len();
        stats.keys += keys;
        events(Event::Progress(report(&stats)));
    }
    Ok(stats)
}

/// Checks, right before a batch opens its slots, that they are still what the move
/// was planned on: the source a master owning every slot, neither node marking any of
/// them migrating or importing. Anything else means someone else is at work.
fn still_ours(pool: &mut Pool, src: &Node, dst: &Node, batch: &[u16]) -> Result<()> {
    let sv = pool.with(&src.addr(), |c| c.view())?;
    let dv = pool.with(&dst.addr(), |c| c.view())?;
    let (s, d) = (sv.myself(), dv.myself());
    let conflict = |what: String| Err(error(Kind::Conflict(what)));
    if s.node_id != src.node_id || d.node_id != dst.node_id {
        return conflict(format!(
            "{} or {} is no longer the node the move was planned with (it was reset or replaced)",
            src.addr(),
            dst.addr()
        ));
    }
    if !s.is_master() || !d.is_master() {
        let which = if s.is_master() { dst } else { src };
        return conflict(format!("{} is no longer a master", which.addr()));
    }
    let wanted: std::collections::BTreeSet<u16> = batch.iter().copied().collect();
    let owned: std::collections::BTreeSet<u16> = s.assigned_slots.iter().copied().collect();
    if let Some(slot) = wanted.iter().find(|x| !owned.contains(x)) {
        return conflict(format!(
            "slot {slot} is no longer served by {} (someone moved it meanwhile)",
            src.addr()
        ));
    }
    let marked = |node: &Node, addr: Addr| {
        let open = node
            .slots_migrating
            .iter()
            .map(|(slot, peer)| (slot, "migrating to", peer))
            .chain(
                node.slots_importing
                    .iter()
                    .map(|(slot, peer)| (slot, "importing from", peer)),
            )
            // A marker of this very move (src migrating to dst, dst importing from
            // src) is one that `fix` finishes: not someone else's.
            .find(|(slot, dir, peer)| {
                let ours = if *dir == "migrating to" {
                    *peer == &dst.node_id
                } else {
                    *peer == &src.node_id
                };
                wanted.contains(slot) && !ours
            });
        open.map(|(slot, dir, peer)| {
            format!(
                "slot {slot} is already open on {addr} ({dir} {}), opened by another tool or person",
                crate::topology::short_id(peer)
            )
        })
    };
    if let Some(found) = marked(s, src.addr()).or_else(|| marked(d, dst.addr())) {
        return conflict(found);
    }
    Ok(())
}

/// Runs several jobs, up to `opts.parallel` at once and never two from one source
/// (one source's jobs run in order on one worker); their claims go one at a time
/// (see [`ClaimOrder`]). Each worker has its own
/// connections. When one job fails the others stop at their next batch boundary;
/// the first error is returned (with the others' named).
pub fn move_many(
    conn: &ConnOpts,
    jobs: &[Job],
    masters: &[Node],
    opts: &MigrateOpts,
    leases: &[Arc<AtomicBool>],
    events: &mut (dyn FnMut(Event) + Send),
) -> Result<MoveStats> {
    let mut by_source: Vec<Vec<&Job>> = Vec::new();
    for j in jobs {
        match by_source
            .iter_mut()
            .find(|g| g[0].src.node_id == j.src.node_id)
        {
            Some(g) => g.push(j),
            None => by_source.push(vec![j]),
        }
    }
    let queue = Mutex::new(by_source.into_iter());
    // Workers send their events here; the calling thread hands them on, so whoever
    // listens (a progress bar, a script callback) hears them on its own thread.
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let stop = AtomicBool::new(false);
    let total = Mutex::new(MoveStats::default());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let claims = ClaimOrder::default();
    let workers = opts.parallel.max(1).min(jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (queue, stop, total, errors, claims) = (&queue, &stop, &total, &errors, &claims);
            scope.spawn(move || {
                let mut pool = Pool::new(conn.clone());
                let mut emit = |e: Event| {
                    let _ = tx.send(e);
                };
                loop {
                    let Some(group) = queue.lock().expect("queue").next() else {
                        break;
                    };
                    for job in group {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let guard = Guard {
                            stop,
                            leases,
                            claims,
                        };
                        match move_slots(&mut pool, job, masters, opts, &mut emit, &guard) {
                            Ok(s) => {
                                let mut t = total.lock().expect("total");
                                t.slots += s.slots;
                                t.keys += s.keys;
                            }
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                errors.lock().expect("errors").push(e);
                                return;
                            }
                        }
                    }
                }
            });
        }
        drop(tx);
        for e in rx {
            events(e);
        }
    });
    let mut errors = errors.into_inner().expect("errors");
    if errors.is_empty() {
        return Ok(total.into_inner().expect("total"));
    }
    // The real failure first; moves it stopped come after.
    errors.sort_by_key(|e| matches!(kind_of(e), Some(Kind::MoveStopped(_))));
    let first = errors.remove(0);
    if errors.is_empty() {
        Err(first)
    } else {
        let rest: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
        Err(anyhow!("{first:#}; meanwhile: {}", rest.join("; ")))
    }
}

#[allow(clippy::too_many_arguments)]
fn move_batch(
    pool: &mut Pool,
    src: &Node,
    dst: &Node,
    batch: &[u16],
    masters: &[Node],
    opts: &MigrateOpts,
    claims: &ClaimOrder,
    events: &mut dyn FnMut(Event),
) -> Result<u64> {
    let (src_addr, dst_addr) = (src.addr(), dst.addr());
    // 1. IMPORTING on the destination.
    let replies = pool
        .with(&dst_addr, |c| {
            c.pipeline(&setslot_pipe(batch, "IMPORTING", Some(&src.node_id)))
        })
        .map_err(|e| {
            e.context(format!(
                "marking slots {} importing on {dst_addr} failed; nothing was moved, but {dst_addr} may mark them importing: run `redis-trib fix` once it answers",
                format_ranges(batch)
            ))
        })?;
    if let Some((slot, err)) = first_error(batch, &replies) {
        let left = rollback(pool, &[&dst_addr], batch);
        bail!(
            "{dst_addr}: cannot import slot {slot} from {src_addr}: {err}; nothing was moved{left}"
        );
    }
    // 2. MIGRATING on the source, and in the same round trip the key count of each
    //    slot (empty slots then cost nothing more).
    let mut pipe = setslot_pipe(batch, "MIGRATING", Some(&dst.node_id));
    for &s in batch {
        pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s);
    }
    let mut replies = match pool.with(&src_addr, |c| c.pipeline(&pipe)) {
        Ok(r) => r,
        Err(e) => {
            let left = rollback(pool, &[&dst_addr], batch);
            return Err(e.context(format!(
                "marking slots {} migrating on {src_addr} failed; nothing was moved{left}; {src_addr} may mark them migrating: run `redis-trib fix` once it answers",
                format_ranges(batch)
            )));
        }
    };
    let counts = replies.split_off(batch.len());
    if let Some((slot, err)) = first_error(batch, &replies) {
        let left = rollback(pool, &[&src_addr, &dst_addr], batch);
        bail!(
            "{src_addr}: cannot migrate slot {slot} to {dst_addr}: {err}; nothing was moved{left}"
        );
    }
    // 3. Keys.
    let auth = pool.opts().clone();
    let non_empty: Vec<u16> = batch
        .iter()
        .zip(&counts)
        .filter(|(_, c)| !matches!(c, Value::Int(0)))
        .map(|(s, _)| *s)
        .collect();
    let mut touched = Vec::new();
    let drained = pool.with(&src_addr, |c| {
        drain(c, dst, &non_empty, opts, &auth, &mut touched)
    });
    let keys = match drained {
        Ok(keys) => keys,
        Err(e) => {
            return Err(settle_after_failure(
                pool, src, dst, batch, &touched, masters, claims, e, events,
            ))
        }
    };
    // 4. Ownership: destination, source, then every other master.
    assign(pool, src, dst, batch, masters, claims, events)?;
    Ok(keys)
}

/// Makes `slots` stable again on `nodes` after a batch was refused before any key
/// moved. Returns what could not be undone, as a clause for the error (empty when
/// all went well).
fn rollback(pool: &mut Pool, nodes: &[&Addr], slots: &[u16]) -> String {
    let stable = setslot_pipe(slots, "STABLE", None);
    let failed: Vec<String> = nodes
        .iter()
        .filter_map(|&node| {
            let undone = pool.with(node, |c| c.pipeline(&stable)).and_then(|r| {
                match first_error(slots, &r) {
                    Some((slot, e)) => bail!("SETSLOT {slot} STABLE: {e}"),
                    None => Ok(()),
                }
            });
            undone.err().map(|e| format!("{node} ({e:#})"))
        })
        .collect();
    if failed.is_empty() {
        String::new()
    } else {
        format!(
            ", but slots {} could not be made stable again on {}: run `redis-trib fix` once it answers",
            format_ranges(slots),
            failed.join(", ")
        )
    }
}

/// How many `MIGRATE`s may wait on the destination at once, and each one's own
/// timeout (ms), so that a destination that stops answering holds the source for at
/// most `--timeout` in all: the source runs a pipeline's MIGRATEs one after another,
/// each waiting out its timeout. A MIGRATE's timeout bounds idle time, not the
/// transfer, so a big key that keeps flowing is not cut.
fn migrate_budget(opts: &MigrateOpts, timeout: std::time::Duration) -> (usize, u64) {
    let total_ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let by_time = usize::try_from(total_ms / 1000)
        .unwrap_or(usize::MAX)
        .max(1);
    let in_flight = opts.slots_in_flight.clamp(1, by_time);
    let per_migrate = (total_ms / in_flight as u64)
        .min(opts.migrate_timeout_ms.max(1))
        .max(1);
    (in_flight, per_migrate)
}

/// Moves every key `src` holds in `slot` to `dst`, leaving slot states as they are.
pub fn move_keys(
    pool: &mut Pool,
    src: &Node,
    dst: &Node,
    slot: u16,
    opts: &MigrateOpts,
) -> Result<u64> {
    let auth = pool.opts().clone();
    let mut touched = Vec::new();
    pool.with(&src.addr(), |c| {
        drain(c, dst, &[slot], opts, &auth, &mut touched)
    })
}

/// Drains the keys of `slots` (which may hold keys) from the connection's node to
/// `dst`. Every slot a MIGRATE was sent for is pushed to `touched` (on failure, those
/// may have keys on both sides).
fn drain(
    src: &mut NodeConn,
    dst: &Node,
    slots: &[u16],
    opts: &MigrateOpts,
    auth: &ConnOpts,
    touched: &mut Vec<u16>,
) -> Result<u64> {
    let mut pending: VecDeque<u16> = slots.iter().copied().collect();
    let mut moved = 0u64;
    let per_call = opts.keys_per_migrate.max(1);
    let (in_flight, migrate_ms) = migrate_budget(opts, auth.timeout);
    let flags = MigrateFlags {
        timeout_ms: migrate_ms,
        ..flags(opts)
    };
    while !pending.is_empty() {
        let round: Vec<u16> = pending.drain(..pending.len().min(in_flight)).collect();
        let mut list = redis::pipe();
        for &s in &round {
            list.cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(s)
                .arg(per_call);
        }
        let listed = src.pipeline(&list)?;
        let mut migrate = redis::pipe();
        let mut batches: Vec<(u16, Vec<Vec<u8>>)> = Vec::new();
        for (&slot, reply) in round.iter().zip(listed) {
            if let Some(err) = server_error(&reply) {
                bail!("{}: cannot list keys of slot {slot}: {err}", src.addr());
            }
            let keys: Vec<Vec<u8>> = redis::from_redis_value(reply)
                .map_err(|e| anyhow!("{}: unexpected GETKEYSINSLOT reply: {e}", src.addr()))?;
            if keys.is_empty() {
                continue;
            }
            migrate.add_command(migrate_cmd(&dst.addr(), &keys, &flags, auth));
            if !touched.contains(&slot) {
                touched.push(slot);
            }
            batches.push((slot, keys));
        }
        let replies = src.pipeline(&migrate)?;
        for ((slot, keys), reply) in batches.into_iter().zip(replies) {
            if let Some(err) = server_error(&reply) {
                return Err(migrate_error(src, dst, slot, &keys, &err, &flags, auth));
            }
            moved += keys.len() as u64;
            if keys.len() == per_call {
                pending.push_back(slot);
            }
        }
    }
    Ok(moved)
}

/// The options of one `MIGRATE`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MigrateFlags {
    /// Milliseconds the transfer may take.
    pub timeout_ms: u64,
    /// Keep the keys on the source.
    pub copy: bool,
    /// Overwrite keys that exist on the destination.
    pub replace: bool,
}

fn flags(opts: &MigrateOpts) -> MigrateFlags {
    MigrateFlags {
        timeout_ms: opts.migrate_timeout_ms,
        copy: false,
        replace: opts.replace,
    }
}

/// `MIGRATE host port "" 0 timeout [COPY] [REPLACE] [AUTH..] KEYS k...`.
pub(crate) fn migrate_cmd(
    dst: &Addr,
    keys: &[Vec<u8>],
    flags: &MigrateFlags,
    auth: &ConnOpts,
) -> redis::Cmd {
    let mut cmd = redis::cmd("MIGRATE");
    cmd.arg(&dst.host)
        .arg(dst.port)
        .arg("")
        .arg(0)
        .arg(flags.timeout_ms);
    if flags.copy {
        cmd.arg("COPY");
    }
    if flags.replace {
        cmd.arg("REPLACE");
    }
    match (&auth.user, &auth.password) {
        (Some(user), Some(pass)) => {
            cmd.arg("AUTH2").arg(user).arg(pass);
        }
        (None, Some(pass)) => {
            cmd.arg("AUTH").arg(pass);
        }
        _ => {}
    }
    cmd.arg("KEYS");
    for k in keys {
        cmd.arg(k.as_slice());
    }
    cmd
}

/// Turns a failed `MIGRATE` into an error naming the slot and, for `BUSYKEY`, the key
/// (found by moving the batch's keys one at a time: those that can move, do). An
/// `IOERR` means the destination stopped answering within the MIGRATE's timeout: the
/// error names the destination, not the source that reported it.
fn migrate_error(
    src: &mut NodeConn,
    dst: &Node,
    slot: u16,
    keys: &[Vec<u8>],
    err: &str,
    flags: &MigrateFlags,
    auth: &ConnOpts,
) -> anyhow::Error {
    let (from, to) = (src.addr().clone(), dst.addr());
    match error_code(err) {
        "IOERR" => {
            return error(Kind::TimedOut {
                node: to.to_string(),
                message: format!(
                    "{to} timed out: it stopped answering {from}'s MIGRATE of slot {slot} for {} ms ({err})",
                    flags.timeout_ms
                ),
            })
        }
        "BUSYKEY" => {
            for key in keys {
                let reply = src.pipeline(&single(migrate_cmd(
                    &to,
                    std::slice::from_ref(key),
                    flags,
                    auth,
                )));
                if let Ok(replies) = reply {
                    if replies
                        .first()
                        .and_then(server_error)
                        .is_some_and(|e| error_code(&e) == "BUSYKEY")
                    {
                        let key = String::from_utf8_lossy(key).into_owned();
                        return error(Kind::BusyKey {
                            message: format!(
                                "slot {slot}: key '{key}' already exists on {to} (BUSYKEY); to overwrite it use --replace (`redis-trib fix --replace` finishes an open slot), or delete it there"
                            ),
                            slot,
                            key,
                            node: to.to_string(),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    anyhow!(
        "slot {slot}: MIGRATE of {} keys (first '{}') from {from} to {to} failed: {err}",
        keys.len(),
        String::from_utf8_lossy(&keys[0])
    )
}

/// A pipeline of one command (so a server error comes back as a value).
pub(crate) fn single(cmd: redis::Cmd) -> redis::Pipeline {
    let mut p = redis::pipe();
    p.add_command(cmd);
    p
}

/// `SETSLOT NODE` for the batch on the destination, then the source, then every other
/// master concurrently. The destination claims only once that is safe (see
/// [`crate::engine::epochs`]), one claim of the operation at a time.
fn assign(
    pool: &mut Pool,
    src: &Node,
    dst: &Node,
    batch: &[u16],
    masters: &[Node],
    claims: &ClaimOrder,
    events: &mut dyn FnMut(Event),
) -> Result<()> {
    let node_pipe = setslot_pipe(batch, "NODE", Some(&dst.node_id));
    let (src_addr, dst_addr) = (src.addr(), dst.addr());
    // One claim at a time in the operation, each once its destination has heard of
    // the previous one's epoch: claims made at once could take one epoch twice.
    let mut last_claim = claims.last.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(err) = wait_until_claim_is_safe(pool, src, dst, batch, *last_claim, events) {
        return Err(with_detail(
            err,
            &format!(
                "; slots {} are left open, their keys on {dst_addr}: run `redis-trib fix {dst_addr}`",
                format_ranges(batch)
            ),
        ));
    }
    let claimed = pool
        .with(&dst_addr, |c| {
            let atomic = claim_is_atomic(c);
            let replies = c.pipeline(&claim_pipe(batch, &dst.node_id, atomic))?;
            Ok((atomic, replies))
        })
        .and_then(|(atomic, replies)| claim_result(batch, replies, atomic))
        .and_then(|epoch| match epoch {
            Some(epoch) => Ok(epoch),
            None => pool.with(&dst_addr, |c| Ok(c.own_view()?.myself().config_epoch)),
        });
    if let Ok(epoch) = &claimed {
        *last_claim = (*last_claim).max(*epoch);
    }
    drop(last_claim);
    if let Err(err) = claimed {
        bail!(
            "{dst_addr}: cannot take ownership of slots {}: {err:#}; they are left open: run `redis-trib fix {dst_addr}`",
            format_ranges(batch)
        );
    }
    let refused = match pool.with(&src_addr, |c| c.pipeline(&node_pipe)) {
        Ok(replies) => first_error(batch, &replies)
            .map(|(slot, err)| format!("{src_addr}: cannot hand over slot {slot}: {err}")),
        Err(e) => Some(format!("{e:#}")),
    };
    if let Some(why) = refused {
        // A master that gave away its last slot may already be a replica of the
        // destination (cluster-allow-replica-migration): expected, not an error.
        // Redis then refuses SETSLOT on it; Valkey 8+, whose SETSLOT waits for the
        // master's replicas, answers -UNBLOCKED or closes the connection when the
        // switch happens during that wait. Its role tells which case this is.
        if !is_replica_now(pool, &src_addr) {
            bail!("{why}; run `redis-trib fix {src_addr}` to finish it");
        }
    }
    let others: Vec<_> = masters
        .iter()
        .filter(|m| m.node_id != src.node_id && m.node_id != dst.node_id)
        .filter(|m| !m.is_failed() && !m.in_handshake())
        .map(|m| m.addr())
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let conns = pool.many(&others)?;
    let results: Vec<(String, Result<Vec<Value>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|c| {
                let pipe = &node_pipe;
                scope.spawn(move || (c.addr().to_string(), c.pipeline(pipe)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("setslot thread"))
            .collect()
    });
    for (addr, result) in results {
        // Other masters learn the new owner by gossip anyway; telling them directly
        // only makes it faster, so a refusal here is worth a warning, not a failure.
        match result {
            Err(e) => events(Event::Warning(format!(
                "{addr}: could not be told the new owner of slots {}: {e}",
                format_ranges(batch)
            ))),
            Ok(replies) => {
                if let Some((slot, err)) = first_error(batch, &replies) {
                    if refusal(&err) != Refusal::NotAMaster {
                        events(Event::Warning(format!(
                            "{addr}: SETSLOT {slot} NODE refused: {err} (gossip will update it)"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// After a failure while draining keys: slots already empty on the source are
/// assigned to the destination, slots with no key on the destination are made stable
/// on both sides, and only slots with keys on both sides stay open. When the
/// destination does not answer, the source alone is settled: slots no MIGRATE was
/// sent for (`touched` lists the others) are made stable on it. Returns the error to
/// report, naming what stays open.
#[allow(clippy::too_many_arguments)]
fn settle_after_failure(
    pool: &mut Pool,
    src: &Node,
    dst: &Node,
    batch: &[u16],
    touched: &[u16],
    masters: &[Node],
    claims: &ClaimOrder,
    cause: anyhow::Error,
    events: &mut dyn FnMut(Event),
) -> anyhow::Error {
    let counts = |pool: &mut Pool, node: &Node| -> Result<Vec<Value>> {
        let mut p = redis::pipe();
        for &s in batch {
            p.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s);
        }
        pool.with(&node.addr(), |c| c.pipeline(&p))
    };
    let (src_addr, dst_addr) = (src.addr(), dst.addr());
    let on_src = match counts(pool, src) {
        Ok(c) => c,
        Err(e) => {
            return with_detail(
                cause,
                &format!(
                    "; slots {} may be left open between {src_addr} and {dst_addr} ({src_addr} does not answer either: {e:#}): run `redis-trib fix {src_addr}` once it answers",
                    format_ranges(batch)
                ),
            )
        }
    };
    let on_dst = match counts(pool, dst) {
        Ok(c) => c,
        Err(_) => {
            // The source answers and the destination does not: when the source was
            // what timed out, it was only waiting on the destination (its MIGRATEs
            // block until the destination answers or their own timeout passes).
            let cause = match kind_of(&cause) {
                Some(Kind::TimedOut { node, .. }) if *node == src_addr.to_string() => {
                    error(Kind::TimedOut {
                        node: dst_addr.to_string(),
                        message: format!(
                            "{dst_addr} timed out: it stopped answering while {src_addr} was migrating keys to it (within --timeout)"
                        ),
                    })
                }
                _ => cause,
            };
            let untouched: Vec<u16> = batch
                .iter()
                .copied()
                .filter(|s| !touched.contains(s))
                .collect();
            let left = rollback(pool, &[&src_addr], &untouched);
            let open: Vec<u16> = batch
                .iter()
                .copied()
                .filter(|s| touched.contains(s))
                .collect();
            let settled = if untouched.is_empty() || !left.is_empty() {
                String::new()
            } else {
                format!(
                    "; slots {} never sent a key and are stable again on {src_addr}",
                    format_ranges(&untouched)
                )
            };
            let open = if open.is_empty() {
                String::new()
            } else {
                format!(
                    "; slots {} stay open (keys may be on both sides)",
                    format_ranges(&open)
                )
            };
            return with_detail(
                cause,
                &format!(
                    "{settled}{left}{open}; {dst_addr} may still mark slots {} importing: run `redis-trib fix {src_addr}` once {dst_addr} answers again",
                    format_ranges(batch)
                ),
            );
        }
    };
    let (mut done, mut untouched, mut split) = (Vec::new(), Vec::new(), Vec::new());
    for ((&slot, s), d) in batch.iter().zip(&on_src).zip(&on_dst) {
        match (s, d) {
            (Value::Int(0), _) => done.push(slot),
            (_, Value::Int(0)) => untouched.push(slot),
            _ => split.push(slot),
        }
    }
    let left = if untouched.is_empty() {
        String::new()
    } else {
        rollback(pool, &[&src_addr, &dst_addr], &untouched)
    };
    if !done.is_empty() {
        if let Err(e) = assign(pool, src, dst, &done, masters, claims, events) {
            return with_detail(
                cause,
                &format!("{left}; then finishing the emptied slots failed: {e:#}"),
            );
        }
    }
    if split.is_empty() && left.is_empty() {
        with_detail(cause, "; no slot is left open")
    } else if split.is_empty() {
        with_detail(cause, &left)
    } else {
        with_detail(
            cause,
            &format!(
                "{left}; slots {} are left open with keys on both {src_addr} and {dst_addr}: fix the cause, then run `redis-trib fix {src_addr}`",
                format_ranges(&split),
            ),
        )
    }
}

/// The destination's claim of a batch. A destination that closes an importing slot
/// with `SETSLOT NODE` bumps its config epoch (once) and broadcasts a PONG to every
/// node, once per slot: for 4096 slots that is 4096 full broadcasts every node must
/// process (measured: ~120-180 ms of the source's time, more than everything else
/// the batch costs). So, when `atomic`, one transaction bumps the epoch first
/// (`CLUSTER BUMPEPOCH`, exactly what the first claim would do), closes the import of
/// every slot but the last with `STABLE` and claims them, then claims the last slot
/// while it is still importing: one broadcast, carrying the whole batch and the new
/// epoch. MULTI/EXEC makes it atomic: no client sees a slot between "no longer
/// importing" and "mine".
///
/// Not `atomic` (Valkey 8+, see [`crate::conn::Server::replicates_setslot`]): a
/// `SETSLOT` that waits for replicas must not run inside MULTI, so the claim is a
/// plain pipeline of `SETSLOT NODE`, one per slot, as valkey-cli sends it.
fn claim_pipe(batch: &[u16], dst_id: &str, atomic: bool) -> redis::Pipeline {
    if !atomic {
        return setslot_pipe(batch, "NODE", Some(dst_id));
    }
    let mut p = redis::pipe();
    p.cmd("MULTI");
    p.cmd("CLUSTER").arg("BUMPEPOCH");
    let all_but_last = &batch[..batch.len().saturating_sub(1)];
    for &s in all_but_last {
        p.cmd("CLUSTER").arg("SETSLOT").arg(s).arg("STABLE");
    }
    for &s in batch {
        p.cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(s)
            .arg("NODE")
            .arg(dst_id);
    }
    p.cmd("EXEC");
    p
}

/// Checks the replies of [`claim_pipe`]: the transaction ran (when `atomic`) and
/// every command succeeded (an error names its slot).
fn claim_result(batch: &[u16], replies: Vec<Value>, atomic: bool) -> Result<Option<u64>> {
    if !atomic {
        if replies.len() != batch.len() {
            bail!(
                "{} replies for {} SETSLOT commands",
                replies.len(),
                batch.len()
            );
        }
        if let Some((slot, err)) = first_error(batch, &replies) {
            bail!("CLUSTER SETSLOT {slot} NODE failed: {err}");
        }
        return Ok(None);
    }
    let inner = match replies.last() {
        Some(Value::Array(inner)) => inner,
        Some(other) => bail!(
            "the transaction did not run: {}",
            server_error(other).unwrap_or_else(|| format!("{other:?}"))
        ),
        None => bail!("no reply to the transaction"),
    };
    if let Some(err) = replies.iter().find_map(server_error) {
        bail!("{err}");
    }
    let rest = batch.len().saturating_sub(1);
    if inner.len() != 1 + rest + batch.len() {
        bail!(
            "the transaction answered {} replies for {} commands",
            inner.len(),
            1 + rest + batch.len()
        );
    }
    if let Some(err) = server_error(&inner[0]) {
        bail!("CLUSTER BUMPEPOCH failed: {err}");
    }
    if let Some((slot, err)) = first_error(&batch[..rest], &inner[1..=rest]) {
        bail!("CLUSTER SETSLOT {slot} STABLE failed: {err}");
    }
    if let Some((slot, err)) = first_error(batch, &inner[1 + rest..]) {
        bail!("CLUSTER SETSLOT {slot} NODE failed: {err}");
    }
    Ok(bumped_epoch(&inner[0]))
}

/// The epoch in a `CLUSTER BUMPEPOCH` reply (`BUMPED 7` or `STILL 7`).
fn bumped_epoch(reply: &Value) -> Option<u64> {
    let text: String = redis::from_redis_value(reply.clone()).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

fn setslot_pipe(slots: &[u16], state: &str, id: Option<&str>) -> redis::Pipeline {
    let mut p = redis::pipe();
    for &s in slots {
        let cmd = p.cmd("CLUSTER").arg("SETSLOT").arg(s).arg(state);
        if let Some(id) = id {
            cmd.arg(id);
        }
    }
    p
}

/// Sends `CLUSTER SETSLOT` for every slot to one node; the first refusal is an error.
pub fn set_slots(conn: &mut NodeConn, slots: &[u16], state: &str, id: Option<&str>) -> Result<()> {
    let replies = conn.pipeline(&setslot_pipe(slots, state, id))?;
    if let Some((slot, err)) = first_error(slots, &replies) {
        bail!(
            "{}: CLUSTER SETSLOT {slot} {state} failed: {err}",
            conn.addr()
        );
    }
    Ok(())
}

fn first_error(slots: &[u16], replies: &[Value]) -> Option<(u16, String)> {
    slots
        .iter()
        .zip(replies)
        .find_map(|(s, r)| server_error(r).map(|e| (*s, e)))
}

/// Whether the destination's claim may be one transaction: not on a server whose
/// `SETSLOT` waits for replicas (Valkey 8+). When the server cannot be told (INFO
/// refused or renamed), the plain pipeline, which every server accepts.
fn claim_is_atomic(conn: &mut NodeConn) -> bool {
    conn.server().is_ok_and(|s| !s.replicates_setslot())
}

/// Whether the node at `addr` answers `ROLE` as a replica (on a fresh connection
/// when the last one was closed).
fn is_replica_now(pool: &mut Pool, addr: &Addr) -> bool {
    let role = pool.with(addr, |c| c.query::<Vec<Value>>(&redis::cmd("ROLE")));
    let Ok(role) = role else {
        return false;
    };
    role.first()
        .and_then(|r| redis::from_redis_value_ref::<String>(r).ok())
        .is_some_and(|r| r == "slave" || r == "replica")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Value {
        Value::Okay
    }

    /// A pipeline's commands, one string each.
    fn commands(pipe: &redis::Pipeline) -> Vec<String> {
        pipe.cmd_iter()
            .map(|c| {
                c.args_iter()
                    .map(|a| match a {
                        redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => "<cursor>".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    fn err(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).expect("an error reply")
    }

    #[test]
    fn the_claim_bumps_closes_all_but_the_last_import_then_claims_every_slot() {
        let pipe = claim_pipe(&[5, 6, 7], "abc", true);
        let cmds = commands(&pipe);
        assert_eq!(
            cmds,
            [
                "MULTI",
                "CLUSTER BUMPEPOCH",
                "CLUSTER SETSLOT 5 STABLE",
                "CLUSTER SETSLOT 6 STABLE",
                "CLUSTER SETSLOT 5 NODE abc",
                "CLUSTER SETSLOT 6 NODE abc",
                "CLUSTER SETSLOT 7 NODE abc",
                "EXEC"
            ]
        );
    }

    #[test]
    fn without_transactions_the_claim_is_one_setslot_node_per_slot() {
        let pipe = claim_pipe(&[5, 6], "abc", false);
        let cmds = commands(&pipe);
        assert_eq!(
            cmds,
            ["CLUSTER SETSLOT 5 NODE abc", "CLUSTER SETSLOT 6 NODE abc"]
        );
        assert!(claim_result(&[5, 6], vec![ok(), ok()], false).is_ok());
        let e = claim_result(&[5, 6], vec![ok(), err("NOREPLICAS Not enough")], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SETSLOT 6 NODE") && e.contains("NOREPLICAS"),
            "{e}"
        );
        let e = claim_result(&[5, 6], vec![ok()], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 replies for 2"), "{e}");
    }

    #[test]
    fn the_migrate_budget_keeps_a_stalled_pipeline_within_the_timeout() {
        let opts = MigrateOpts::default();
        let secs = std::time::Duration::from_secs;
        assert_eq!(migrate_budget(&opts, secs(30)), (16, 1875));
        assert_eq!(migrate_budget(&opts, secs(3)), (3, 1000));
        let (n, ms) = migrate_budget(&opts, std::time::Duration::from_millis(500));
        assert_eq!((n, ms), (1, 500));
        for t in [1, 2, 5, 7, 30, 600] {
            let (n, ms) = migrate_budget(&opts, secs(t));
            assert!(n as u64 * ms <= t * 1000, "{t} s: {n} x {ms} ms");
        }
    }

    #[test]
    fn claim_replies_are_checked_and_a_refusal_names_its_slot() {
        let queued = |n: usize| vec![Value::SimpleString("QUEUED".into()); n];
        let run = |inner: Vec<Value>| {
            let mut replies = vec![ok()];
            replies.extend(queued(inner.len()));
            replies.push(Value::Array(inner));
            claim_result(&[5, 6, 7], replies, true)
        };
        let bumped = Value::SimpleString("BUMPED 9".into());
        assert!(run(vec![bumped.clone(), ok(), ok(), ok(), ok(), ok()]).is_ok());
        let e = run(vec![
            bumped.clone(),
            ok(),
            ok(),
            ok(),
            err("I still hold keys"),
            ok(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("SETSLOT 6 NODE") && e.contains("still hold keys"),
            "{e}"
        );
        let e = run(vec![bumped, ok(), ok()]).unwrap_err().to_string();
        assert!(e.contains("answered 3 replies for 6 commands"), "{e}");
        let aborted = claim_result(
            &[5],
            vec![ok(), err("unknown command"), err("EXECABORT")],
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(aborted.contains("did not run"), "{aborted}");
    }
}
