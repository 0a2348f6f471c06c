//! The atomic slot-migration engine (Valkey 9.0+), and the choice of engine per move.
//!
//! A move's slots go to the destination in one `CLUSTER MIGRATESLOTS SLOTSRANGE s e
//! [s e ...] NODE <id>` sent to the source: the server snapshots the slots, streams
//! them and their later writes to the destination, pauses writes for a moment and
//! hands the whole set over at once. Nothing is ever half-moved: the job either
//! succeeds (every slot and key on the destination) or ends `failed`/`cancelled`
//! (every slot and key still on the source). Its progress is polled from `CLUSTER
//! GETSLOTMIGRATIONS` on the source (states, `last_ack_time`); Ctrl-C, a lost lease,
//! a failed sibling move, or no progress within `--timeout` cancel it with `CLUSTER
//! CANCELSLOTMIGRATIONS` (which cancels every export of that node: the engine runs
//! one move per source at a time, and the lease keeps other redis-trib runs away).
//!
//! Support is read per node with `COMMAND INFO CLUSTER|MIGRATESLOTS` (never by
//! version). With `--engine auto` a move goes atomic when both its nodes support it;
//! a refusal (open slots, a replica, a module that did not opt in) or a failed job
//! falls back to the key-by-key engine ([`crate::engine::keys`]) for that move, with a
//! warning. `--engine atomic` refuses nodes without support and does not fall back.
//!
//! Redis 8.4's `CLUSTER MIGRATION IMPORT` (sent to the destination) would be a third
//! [`Chosen`] variant; it is not written yet (no Redis 8.4 server to test it on).
//!
//! What `check` reports about atomic jobs and how `fix` settles them is in
//! `crate::ops` (`job_issues`, `fix_jobs`): they read and act through a backend.

use crate::conn::pool::Pool;
use crate::conn::{server_error, NodeConn};
use crate::engine::keys::{single, Guard, MigrateOpts};
use crate::engine::{Event, Job, MoveProgress, MoveStats};
use crate::error::{error, Kind};
use crate::slots::format_ranges;
use crate::topology::Node;
use anyhow::{anyhow, bail, Result};
use redis::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Which engine moves slots (`--engine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Atomic where both nodes of a move support it, else key by key; a refused or
    /// failed atomic move falls back to key by key.
    #[default]
    Auto,
    /// Atomic only (`CLUSTER MIGRATESLOTS`): nodes without it are refused, no fallback.
    Atomic,
    /// Key by key (`SETSLOT` + `MIGRATE`), on every server.
    Keys,
}

impl Engine {
    /// The word `--engine` takes.
    pub fn word(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Atomic => "atomic",
            Engine::Keys => "keys",
        }
    }

    /// What a dry run can say about a move under this engine without asking the
    /// nodes (plans are computed offline too).
    pub fn plan_label(self) -> &'static str {
        match self {
            Engine::Auto => "atomic where both nodes support it, else keys",
            Engine::Atomic => "atomic",
            Engine::Keys => "keys",
        }
    }
}

/// The engine a move actually uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chosen {
    /// `CLUSTER MIGRATESLOTS` on the source (Valkey 9.0+).
    Atomic,
    /// The key-by-key engine of [`crate::engine::keys`].
    Keys,
}

/// Whether the node knows a command (`COMMAND INFO` of `name`, e.g.
/// `CLUSTER|MIGRATESLOTS`, gives a non-nil entry). Feature detection, never versions.
pub fn has_command(conn: &mut NodeConn, name: &str) -> Result<bool> {
    let reply = conn.run(redis::cmd("COMMAND").arg("INFO").arg(name))?;
    Ok(names_a_command(&reply))
}

/// Whether a `COMMAND INFO` reply describes a command (a non-nil entry).
pub fn names_a_command(reply: &Value) -> bool {
    match reply {
        Value::Array(items) => items.first().is_some_and(|v| !matches!(v, Value::Nil)),
        Value::Map(items) => !items.is_empty(),
        _ => false,
    }
}

/// Whether `conn`'s node supports atomic slot migration (`CLUSTER MIGRATESLOTS`).
pub fn supports_atomic(conn: &mut NodeConn) -> Result<bool> {
    has_command(conn, "CLUSTER|MIGRATESLOTS")
}

/// Picks the engine of one move: `Keys` for `--engine keys`; for `auto`, atomic when
/// both nodes support it; for `atomic`, an error naming a node that does not (and
/// what it runs).
pub fn choose(pool: &mut Pool, job: &Job, engine: Engine) -> Result<Chosen> {
    if engine == Engine::Keys {
        return Ok(Chosen::Keys);
    }
    for node in [&job.src, &job.dst] {
        let (ok, server) = pool.with(&node.addr(), |c| {
            let ok = supports_atomic(c)?;
            let server = c
                .server()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "an unknown server".into());
            Ok((ok, server))
        })?;
        if !ok {
            if engine == Engine::Atomic {
                bail!(
                    "{} runs {server}, which has no CLUSTER MIGRATESLOTS (atomic slot migration needs Valkey 9.0+): use --engine keys or auto",
                    node.addr()
                );
            }
            return Ok(Chosen::Keys);
        }
    }
    Ok(Chosen::Atomic)
}

/// The engine dispatch of [`crate::engine::keys::move_slots`]: runs the move atomically
/// when the engine chosen says so and returns its stats; `None` when the key-by-key
/// engine must move it (chosen, or an atomic refusal fell back with a warning).
pub fn dispatch(
    pool: &mut Pool,
    job: &Job,
    opts: &MigrateOpts,
    events: &mut dyn FnMut(Event),
    guard: &Guard,
) -> Result<Option<MoveStats>> {
    if job.slots.is_empty() || choose(pool, job, opts.engine)? == Chosen::Keys {
        return Ok(None);
    }
    // An open slot (a half-done key-by-key move that `fix` finishes, say) is the key
    // engine's: CLUSTER MIGRATESLOTS refuses it.
    if let Some(open) = open_slot(pool, job)? {
        if opts.engine == Engine::Atomic {
            bail!(
                "{open}: CLUSTER MIGRATESLOTS cannot move an open slot; use --engine keys or auto"
            );
        }
        return Ok(None);
    }
    match move_atomic(pool, job, events, guard)? {
        Outcome::Moved(stats) => Ok(Some(stats)),
        Outcome::Refused(why) if opts.engine == Engine::Auto => {
            events(Event::Warning(format!(
                "{why}; moving these slots key by key instead"
            )));
            Ok(None)
        }
        Outcome::Refused(why) => Err(anyhow!(
            "{why}; --engine atomic does not fall back: fix the cause or use --engine auto"
        )),
    }
}

/// The first slot of the job that either node marks migrating or importing, named
/// with its node.
fn open_slot(pool: &mut Pool, job: &Job) -> Result<Option<String>> {
    for node in [&job.src, &job.dst] {
        let view = pool.with(&node.addr(), |c| c.view())?;
        let me = view.myself();
        let open = me
            .slots_migrating
            .iter()
            .chain(me.slots_importing.iter())
            .map(|(slot, _)| *slot)
            .find(|s| job.slots.contains(s));
        if let Some(slot) = open {
            return Ok(Some(format!("slot {slot} is open on {}", node.addr())));
        }
    }
    Ok(None)
}

/// How an atomic move ended, short of an error.
enum Outcome {
    /// Every slot is on the destination.
    Moved(MoveStats),
    /// The source refused the job, or the job failed: nothing moved, no slot open.
    Refused(String),
}

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotJob {
    /// The job's 40-character name.
    pub name: String,
    /// `EXPORT` or `IMPORT`, as seen from the node asked.
    pub operation: String,
    /// `0-99 200-299`.
    pub slot_ranges: String,
    /// The receiving master's id.
    pub target_node: String,
    /// The giving master's id.
    pub source_node: String,
    /// State: `success`, `failed`, `cancelled` (terminal) or an active one.
    pub state: String,
    /// Human message (why it failed), often empty.
    pub message: String,
    /// Unix time of creation.
    pub create_time: i64,
    /// Unix time of the last state change.
    pub last_update_time: i64,
    /// Unix time of the last heartbeat from the other side.
    pub last_ack_time: i64,
}

impl SlotJob {
    /// Whether the job is over (`success`, `failed` or `cancelled`).
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "success" | "failed" | "cancelled")
    }

    /// Its slots.
    pub fn slots(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for r in self.slot_ranges.split_whitespace() {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                out.extend(a..=b);
            }
        }
        out
    }

    /// The job name's first 8 characters, as messages show it.
    pub fn short(&self) -> String {
        crate::topology::short_id(&self.name).to_string()
    }
}

/// Parses a `CLUSTER GETSLOTMIGRATIONS` reply (RESP2 flat pairs or RESP3 maps).
pub fn parse_jobs(reply: &Value) -> Vec<SlotJob> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|entry| {
            let pairs: Vec<(&Value, &Value)> = match entry {
                Value::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|p| Some((p.first()?, p.get(1)?)))
                    .collect(),
                Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
                _ => Vec::new(),
            };
            let mut job = SlotJob::default();
            for (k, v) in pairs {
                let key = redis::from_redis_value_ref::<String>(k).unwrap_or_default();
                let text = || redis::from_redis_value_ref::<String>(v).unwrap_or_default();
                let int = || redis::from_redis_value_ref::<i64>(v).unwrap_or_default();
                match key.as_str() {
                    "name" => job.name = text(),
                    "operation" => job.operation = text(),
                    "slot_ranges" => job.slot_ranges = text(),
                    "target_node" => job.target_node = text(),
                    "source_node" => job.source_node = text(),
                    "state" => job.state = text(),
                    "message" => job.message = text().trim().to_string(),
                    "create_time" => job.create_time = int(),
                    "last_update_time" => job.last_update_time = int(),
                    "last_ack_time" => job.last_ack_time = int(),
                    _ => {}
                }
            }
            job
        })
        .collect()
}

/// Reads the jobs a node reports.
pub fn read_jobs(conn: &mut NodeConn) -> Result<Vec<SlotJob>> {
    let reply = conn.run(redis::cmd("CLUSTER").arg("GETSLOTMIGRATIONS"))?;
    Ok(parse_jobs(&reply))
}

/// `SLOTSRANGE` pairs for sorted-or-not slots: `[(0, 99), (200, 299)]`.
pub fn ranges(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some((_, end)) if s > 0 && *end == s - 1 => *end = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// `CLUSTER MIGRATESLOTS SLOTSRANGE s e [s e ...] NODE id`.
pub fn migrateslots_cmd(slots: &[u16], target_id: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("MIGRATESLOTS").arg("SLOTSRANGE");
    for (a, b) in ranges(slots) {
        cmd.arg(a).arg(b);
    }
    cmd.arg("NODE").arg(target_id);
    cmd
}

/// The pause between two polls of a job: short first (small moves finish in
/// milliseconds), then 100 ms.
fn poll_pause(since: Duration) -> Duration {
    if since < Duration::from_secs(1) {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(100)
    }
}

fn move_atomic(
    pool: &mut Pool,
    job: &Job,
    events: &mut dyn FnMut(Event),
    guard: &Guard,
) -> Result<Outcome> {
    let Job { src, dst, slots } = job;
    let (src_addr, dst_addr) = (src.addr(), dst.addr());
    let timeout = pool.opts().timeout;
    let what = format!(
        "the atomic migration of {} slots ({}) from {src_addr} to {dst_addr}",
        slots.len(),
        format_ranges(slots)
    );
    if let Some(kind) = guard.reason() {
        return Err(error(kind(format!(
            "{} before {what} started; nothing of it was moved, no slot is left open",
            stop_word(&kind(String::new()))
        ))));
    }
    // Jobs already in the log (ours is the one that is new), and the keys to move.
    let before: HashSet<String> = pool
        .with(&src_addr, read_jobs)?
        .into_iter()
        .map(|j| j.name)
        .collect();
    let mut count = redis::pipe();
    for &s in slots {
        count.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s);
    }
    let counts = |replies: Vec<Value>| -> Vec<u64> {
        replies
            .iter()
            .map(|v| match v {
                Value::Int(n) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            })
            .collect()
    };
    let keys: u64 = counts(pool.with(&src_addr, |c| c.pipeline(&count))?)
        .iter()
        .sum();
    // Keys the destination already holds in these slots (left by an earlier,
    // unfinished key-by-key move): Valkey 9.1 asserts and crashes when an import
    // lands on a non-empty slot, so such a move is not sent atomically.
    let on_dst = counts(pool.with(&dst_addr, |c| c.pipeline(&count))?);
    let stray: Vec<u16> = slots
        .iter()
        .zip(&on_dst)
        .filter(|(_, n)| **n > 0)
        .map(|(s, _)| *s)
        .collect();
    if !stray.is_empty() {
        return Ok(Outcome::Refused(format!(
            "{dst_addr} already holds {} keys in slots {} it does not own (an unfinished earlier move?): not sent as an atomic migration, which needs empty slots on the destination",
            on_dst.iter().sum::<u64>(),
            format_ranges(&stray)
        )));
    }
    let progress = |done: bool| {
        Event::Progress(MoveProgress {
            src: src_addr.to_string(),
            dst: dst_addr.to_string(),
            slots_done: if done { slots.len() } else { 0 },
            slots_total: slots.len(),
            keys_moved: if done { keys } else { 0 },
        })
    };
    events(Event::Step(format!(
        "{src_addr} -> {dst_addr}: {} slots ({}), {keys} keys, engine atomic (CLUSTER MIGRATESLOTS)",
        slots.len(),
        format_ranges(slots)
    )));
    events(progress(false));
    let reply = pool.with(&src_addr, |c| {
        c.pipeline(&single(migrateslots_cmd(slots, &dst.node_id)))
    })?;
    if let Some(err) = reply.first().and_then(server_error) {
        return Ok(Outcome::Refused(format!(
            "{src_addr}: CLUSTER MIGRATESLOTS of slots {} to {dst_addr} refused: {err}",
            format_ranges(slots)
        )));
    }
    let wanted = ranges(slots)
        .iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(" ");
    let find = |jobs: Vec<SlotJob>| {
        jobs.into_iter().find(|j| {
            !before.contains(&j.name)
                && j.operation.eq_ignore_ascii_case("EXPORT")
                && j.target_node == dst.node_id
                && j.slot_ranges == wanted
        })
    };
    let started = Instant::now();
    let mut last_change = Instant::now();
    let mut seen: Option<(String, i64, i64)> = None;
    let mut cancelled_by_us: Option<fn(String) -> Kind> = None;
    let mut timed_out = false;
    loop {
        let current = pool.with(&src_addr, read_jobs).map(find)?;
        let Some(current) = current else {
            if last_change.elapsed() > timeout {
                bail!("{src_addr} accepted CLUSTER MIGRATESLOTS of slots {} but never listed the job in CLUSTER GETSLOTMIGRATIONS", format_ranges(slots));
            }
            std::thread::sleep(poll_pause(started.elapsed()));
            continue;
        };
        let mark = (
            current.state.clone(),
            current.last_ack_time,
            current.last_update_time,
        );
        if seen.as_ref() != Some(&mark) {
            seen = Some(mark);
            last_change = Instant::now();
        }
        if current.is_terminal() {
            return finish(
                pool,
                job,
                &current,
                &what,
                cancelled_by_us,
                timed_out,
                timeout,
                keys,
                events,
                progress(true),
            );
        }
        if cancelled_by_us.is_none() {
            let stop = guard.reason();
            let stalled = last_change.elapsed() > timeout;
            if stop.is_some() || stalled {
                timed_out = stop.is_none();
                cancelled_by_us = Some(stop.unwrap_or(Kind::Conflict));
                cancel(pool, src)?;
                last_change = Instant::now();
            }
        } else if last_change.elapsed() > timeout {
            return Err(error(Kind::TimedOut {
                node: src_addr.to_string(),
                message: format!(
                    "{src_addr} timed out: {what} (job {}) was cancelled but is still '{}' after {timeout:.1?}; run `redis-trib check {src_addr}` later",
                    current.short(),
                    current.state
                ),
            }));
        }
        std::thread::sleep(poll_pause(started.elapsed()));
    }
}

fn stop_word(kind: &Kind) -> &'static str {
    match kind {
        Kind::Interrupted(_) => "interrupted",
        Kind::LeaseLost(_) => "stopped: this operation lost its lease on the cluster",
        _ => "stopped because another move failed",
    }
}

/// `CLUSTER CANCELSLOTMIGRATIONS` on the source.
fn cancel(pool: &mut Pool, src: &Node) -> Result<()> {
    pool.with(&src.addr(), |c| {
        c.run(redis::cmd("CLUSTER").arg("CANCELSLOTMIGRATIONS"))
            .map(|_| ())
    })
}

/// Waits (bounded) until the destination's side of job `name` is over too, so that a
/// fallback or a retry starts on a clean destination. A destination that does not
/// answer is left alone (the key engine names it if it matters).
fn wait_import_done(pool: &mut Pool, dst: &Node, name: &str, timeout: Duration) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let done = pool
            .with(&dst.addr(), read_jobs)
            .map(|jobs| {
                jobs.iter()
                    .filter(|j| j.name == name)
                    .all(SlotJob::is_terminal)
            })
            .unwrap_or(true);
        if done {
            return;
        }
        std::thread::sleep(poll_pause(start.elapsed()));
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    pool: &mut Pool,
    job: &Job,
    ended: &SlotJob,
    what: &str,
    cancelled_by_us: Option<fn(String) -> Kind>,
    timed_out: bool,
    timeout: Duration,
    keys: u64,
    events: &mut dyn FnMut(Event),
    done: Event,
) -> Result<Outcome> {
    let (src_addr, dst_addr) = (job.src.addr(), job.dst.addr());
    let id = ended.short();
    let message = if ended.message.is_empty() {
        String::new()
    } else {
        format!(": {}", ended.message)
    };
    if ended.state == "success" {
        events(done);
        let stats = MoveStats {
            slots: job.slots.len(),
            keys,
        };
        return match cancelled_by_us {
            None => Ok(Outcome::Moved(stats)),
            // The job finished before the cancel took effect: all of it moved.
            Some(kind) if !timed_out => Err(error(kind(format!(
                "{}: {what} (job {id}) finished before it could be cancelled: all {} slots and {keys} keys are on {dst_addr}; no slot is left open",
                stop_word(&kind(String::new())),
                job.slots.len()
            )))),
            Some(_) => Ok(Outcome::Moved(stats)),
        };
    }
    wait_import_done(pool, &job.dst, &ended.name, timeout);
    match (cancelled_by_us, ended.state.as_str()) {
        (Some(_), _) if timed_out => Err(error(Kind::TimedOut {
            node: dst_addr.to_string(),
            message: format!(
                "{dst_addr} timed out: {what} (job {id}) made no progress for {timeout:.1?} (--timeout) and was cancelled on {src_addr}; nothing of it was moved, no slot is left open"
            ),
        })),
        (Some(kind), _) => Err(error(kind(format!(
            "{}: cancelled {what} (job {id}, {}{message}); nothing of it was moved, no slot is left open",
            stop_word(&kind(String::new())),
            ended.state
        )))),
        (None, "failed") => Ok(Outcome::Refused(format!(
            "{src_addr}: {what} failed (job {id}{message}); nothing of it was moved"
        ))),
        (None, state) => Err(error(Kind::Conflict(format!(
            "{what} (job {id}) was {state} by someone else{message}; nothing of it was moved, no slot is left open"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_become_ranges_and_one_command() {
        assert_eq!(ranges(&[5, 0, 1, 2, 9, 10]), vec![(0, 2), (5, 5), (9, 10)]);
        let cmd = migrateslots_cmd(&[0, 1, 2, 7], "abc");
        let words: Vec<String> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            words.join(" "),
            "CLUSTER MIGRATESLOTS SLOTSRANGE 0 2 7 7 NODE abc"
        );
    }

    #[test]
    fn getslotmigrations_is_parsed_from_flat_pairs() {
        let s = |t: &str| Value::BulkString(t.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            s("name"),
            s("0e7d16a3fc9b04901c75a268b59553b56225e1f8"),
            s("operation"),
            s("EXPORT"),
            s("slot_ranges"),
            s("0-99 200-299"),
            s("target_node"),
            s("971ab9b0"),
            s("create_time"),
            Value::Int(17),
            s("state"),
            s("failed"),
            s("message"),
            s("boom"),
        ])]);
        let jobs = parse_jobs(&reply);
        assert_eq!(jobs.len(), 1);
        let j = &jobs[0];
        assert_eq!(
            (j.operation.as_str(), j.state.as_str()),
            ("EXPORT", "failed")
        );
        assert!(j.is_terminal());
        assert_eq!(j.slots().len(), 200);
        assert_eq!(j.create_time, 17);
        assert_eq!(j.message, "boom");
    }
}
