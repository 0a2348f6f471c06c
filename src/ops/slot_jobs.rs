//! Valkey 9's atomic slot-migration jobs as an operation sees them: the ones that
//! need attention (`check`), and settling them (`fix`), read and changed through
//! the backend (the engine itself is `crate::engine::atomic`).

use crate::addr::Addr;
use crate::backend::{Backend, Event};
use crate::engine::atomic::{names_a_command, parse_jobs, SlotJob};
use crate::error::{error, Kind};
use crate::slots::format_ranges;
use crate::topology::Node;
use anyhow::Result;
use std::time::Instant;

/// An atomic job `check` reports: unfinished, or failed/cancelled with its slots
/// still on the source and no later job on that node for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobIssue {
    /// The source master reporting it.
    pub node: String,
    /// The job.
    pub job: SlotJob,
    /// The destination's address, when it is still a known master.
    pub target: Option<String>,
}

impl std::fmt::Display for JobIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let j = &self.job;
        let to = self
            .target
            .clone()
            .unwrap_or_else(|| crate::topology::short_id(&j.target_node).to_string());
        write!(
            f,
            "{}: atomic slot migration {} of slots {} to {to} is {}",
            self.node,
            j.short(),
            j.slot_ranges,
            if j.is_terminal() {
                j.state.clone()
            } else {
                format!("unfinished (state {})", j.state)
            }
        )?;
        if !j.message.is_empty() {
            write!(f, ": {}", j.message)?;
        }
        Ok(())
    }
}

/// Atomic jobs that need attention, read from every master with `CLUSTER
/// GETSLOTMIGRATIONS` (nodes without the command, or that refuse it, report none):
/// unfinished exports, and failed or cancelled exports whose slots all still belong
/// to their source (nothing moved them since) and that no later export of that node
/// overlaps.
pub fn job_issues(backend: &mut dyn Backend, masters: &[Node]) -> Vec<JobIssue> {
    // Every live master at once: first which know the command (a node refusing an
    // unknown one would cost it its pooled connection), then their jobs.
    let live: Vec<&Node> = masters.iter().filter(|m| !m.is_failed()).collect();
    let addrs: Vec<Addr> = live.iter().map(|m| m.addr()).collect();
    let probe = [
        b"COMMAND".to_vec(),
        b"INFO".to_vec(),
        b"CLUSTER|GETSLOTMIGRATIONS".to_vec(),
    ];
    let knowing: Vec<&Node> = live
        .into_iter()
        .zip(backend.execute_many(&addrs, &probe))
        .filter(|(_, r)| r.as_ref().is_ok_and(names_a_command))
        .map(|(m, _)| m)
        .collect();
    let addrs: Vec<Addr> = knowing.iter().map(|m| m.addr()).collect();
    let args = [b"CLUSTER".to_vec(), b"GETSLOTMIGRATIONS".to_vec()];
    let replies = backend.execute_many(&addrs, &args);
    let mut out = Vec::new();
    for (m, reply) in knowing.into_iter().zip(replies) {
        let Ok(reply) = reply else {
            continue;
        };
        let jobs: Vec<SlotJob> = parse_jobs(&reply)
            .into_iter()
            .filter(|j| j.operation.eq_ignore_ascii_case("EXPORT"))
            .collect();
        for (i, j) in jobs.iter().enumerate() {
            if j.state == "success" {
                continue;
            }
            let slots = j.slots();
            if j.is_terminal() {
                let still_here = !slots.is_empty()
                    && slots
                        .iter()
                        .all(|s| m.assigned_slots.binary_search(s).is_ok());
                let later = jobs.iter().enumerate().any(|(k, o)| {
                    k != i
                        && (o.create_time, k < i) > (j.create_time, false)
                        && o.slots().iter().any(|s| slots.contains(s))
                });
                if !still_here || later {
                    continue;
                }
            }
            let target = masters
                .iter()
                .find(|n| n.node_id == j.target_node)
                .map(|n| n.addr().to_string());
            out.push(JobIssue {
                node: m.addr().to_string(),
                job: j.clone(),
                target,
            });
        }
    }
    out
}

/// Settles what [`job_issues`] reports: an unfinished job is cancelled on its source
/// (and waited for, bounded by the backend's timeout); then every cancelled or failed
/// job whose slots are still on the source is resumed by moving those slots to its
/// target again (`move_slots`, with the engine configured: atomic where supported).
/// Returns one line per job settled.
pub fn fix_jobs(backend: &mut dyn Backend, masters: &[Node]) -> Result<Vec<String>> {
    // Slots as they are now: repairs of open slots may have moved some meanwhile.
    let fresh: Vec<Node> = masters
        .iter()
        .map(|m| {
            backend
                .view(&m.addr())
                .map(|v| v.myself().clone())
                .unwrap_or_else(|_| m.clone())
        })
        .collect();
    let masters = &fresh[..];
    let mut done = Vec::new();
    for issue in job_issues(backend, masters) {
        let Some(src) = masters.iter().find(|m| m.addr().to_string() == issue.node) else {
            continue;
        };
        let Some(dst) = masters.iter().find(|m| m.node_id == issue.job.target_node) else {
            done.push(format!(
                "{issue}: its target is no longer a master of the cluster; left as is"
            ));
            continue;
        };
        if !issue.job.is_terminal() {
            backend.emit(Event::Step(format!(
                "{issue}: cancelling it (CLUSTER CANCELSLOTMIGRATIONS on {})",
                issue.node
            )));
            let args = [b"CLUSTER".to_vec(), b"CANCELSLOTMIGRATIONS".to_vec()];
            backend.execute(&src.addr(), &args)?;
            let start = Instant::now();
            loop {
                let args = [b"CLUSTER".to_vec(), b"GETSLOTMIGRATIONS".to_vec()];
                let reply = backend.execute(&src.addr(), &args)?;
                let now = parse_jobs(&reply)
                    .into_iter()
                    .find(|j| j.name == issue.job.name);
                match now {
                    Some(j) if !j.is_terminal() => {
                        if start.elapsed() > backend.timeout() {
                            return Err(error(Kind::TimedOut {
                                node: issue.node.clone(),
                                message: format!(
                                    "{} timed out: job {} is still '{}' after CLUSTER CANCELSLOTMIGRATIONS",
                                    issue.node,
                                    j.short(),
                                    j.state
                                ),
                            }));
                        }
                        std::thread::sleep(backend.poll_interval());
                    }
                    Some(j) if j.state == "success" => {
                        done.push(format!("{issue}: it finished meanwhile"));
                        break;
                    }
                    _ => break,
                }
            }
            if done
                .last()
                .is_some_and(|l| l.ends_with("finished meanwhile"))
            {
                continue;
            }
        }
        let slots = issue.job.slots();
        let owned: Vec<u16> = slots
            .iter()
            .copied()
            .filter(|s| src.assigned_slots.binary_search(s).is_ok())
            .collect();
        if owned.is_empty() {
            done.push(format!("{issue}: cancelled"));
            continue;
        }
        backend.emit(Event::Step(format!(
            "{issue}: resuming it: moving slots {} to {}",
            format_ranges(&owned),
            dst.addr()
        )));
        let stats = backend.move_slots(src, dst, &owned, masters)?;
        done.push(format!(
            "{issue}: resumed, {} slots and {} keys moved to {}",
            stats.slots,
            stats.keys,
            dst.addr()
        ));
    }
    Ok(done)
}
