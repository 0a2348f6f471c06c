//! When a destination may safely claim a source's slots: the config-epoch checks the
//! slot-migration engine makes right before each claim, and the bounded wait until
//! they hold.
//!
//! Why: a destination claims slots with its config epoch (`SETSLOT NODE` bumps it to
//! the highest epoch it knows of). If the source's epoch is higher than that at the
//! moment the destination's claim reaches it (or reaches any node still listing the
//! source as the owner), the claim loses: that node answers with an UPDATE naming
//! the source, the destination gives the slots back, and Redis deletes the keys it
//! holds in them. The source and the destination then disagree on the owner for
//! good, neither claiming the slots. Two ways lead there, and both are transient:
//!
//! - the destination has not heard of the source's epoch yet (the source changed it
//!   a moment ago);
//! - another master shares the source's epoch, a collision Redis settles by bumping
//!   the epoch of the one with the lower id the next time the two talk, which may
//!   be the source, in the middle of the move.
//!
//! So before each claim the engine reads the source's and the destination's tables
//! and waits until neither way is open; and the claims of one operation go one at
//! a time ([`ClaimOrder`]), so that its own claims never share an epoch.
//!
//! Redis 7.0 and 8.2 tell no one of a `CLUSTER BUMPEPOCH`: the new epoch spreads
//! with the node's next pings, and the first way stays open for up to half the node
//! timeout. Valkey 8.1 and 9.1 broadcast it at once (measured: every node's current
//! epoch had it within 5 ms).

use crate::conn::pool::Pool;
use crate::engine::Event;
use crate::error::{error, Kind};
use crate::interrupt;
use crate::slots::format_ranges;
use crate::topology::{Node, View};
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

/// The claims of one operation's moves (which may run at once): made one at a
/// time, each only once its destination has heard of the highest epoch the
/// operation's claims took so far (`last`), so each takes a higher one. Claims made
/// at once could take one epoch twice: a collision Redis settles later by bumping
/// one of the two, and if that one then gives slots, the collision is the hazard
/// this module is about.
#[derive(Debug, Default)]
pub struct ClaimOrder {
    /// The highest config epoch a claim of the operation took.
    pub last: std::sync::Mutex<u64>,
}

/// The first pause before the tables are read again: the usual wait, for the
/// previous claim's broadcast, is over within a millisecond or two.
const FIRST_POLL: Duration = Duration::from_millis(2);
/// How long a wait goes unannounced.
const ANNOUNCE_AFTER: Duration = Duration::from_millis(100);
/// The longest pause between two reads (a collision lasts until two masters talk).
const MAX_POLL: Duration = Duration::from_millis(50);

/// Why `dst` cannot safely claim slots of `src` yet, from the source's view `sv`
/// and the destination's view `dv`, `last_claim` being the highest epoch the
/// operation's claims took so far; `None` when it can: the destination has heard of
/// that epoch and of the source's (its current epoch is at least as high), its own
/// differs from the source's, and no other live master of either table shares it.
pub fn claim_hazard(sv: &View, dv: &View, last_claim: u64) -> Option<String> {
    let (s, d) = (sv.myself(), dv.myself());
    let epoch = s.config_epoch;
    if dv.current_epoch < last_claim {
        return Some(format!(
            "{} has not heard of epoch {last_claim}, taken by this operation's previous claim, yet",
            d.addr()
        ));
    }
    if d.config_epoch == epoch {
        return Some(format!(
            "{} and {} both have config epoch {epoch}",
            s.addr(),
            d.addr()
        ));
    }
    // The destination's claim takes an epoch above its current one (or keeps its
    // own when that is already the highest it knows): above the source's as soon as
    // its current epoch has caught up with it.
    if dv.current_epoch < epoch {
        return Some(format!(
            "{} has not heard of epoch {epoch} of {} yet (its current epoch is {})",
            d.addr(),
            s.addr(),
            dv.current_epoch
        ));
    }
    let live_master = |n: &&Node| n.is_master() && !n.is_failed() && !n.in_handshake();
    sv.nodes
        .iter()
        .chain(&dv.nodes)
        .filter(live_master)
        .find(|n| n.node_id != s.node_id && n.config_epoch == epoch)
        .map(|n| {
            format!(
                "{} and {} both have config epoch {epoch}",
                s.addr(),
                n.addr()
            )
        })
}

/// Waits, at most `timeout`, until `dst` can safely claim slots of `src` (see
/// [`claim_hazard`]); announces the wait once when it lasts. `batch` names the
/// slots in messages.
pub fn wait_until_claim_is_safe(
    pool: &mut Pool,
    src: &Node,
    dst: &Node,
    batch: &[u16],
    last_claim: u64,
    events: &mut dyn FnMut(Event),
) -> Result<()> {
    let timeout = pool.opts().timeout;
    let start = Instant::now();
    let mut announced = false;
    let mut pause = FIRST_POLL;
    loop {
        let sv = pool.with(&src.addr(), |c| c.view())?;
        let dv = pool.with(&dst.addr(), |c| c.view())?;
        let Some(why) = claim_hazard(&sv, &dv, last_claim) else {
            return Ok(());
        };
        // The usual short wait (a broadcast in flight) is not worth a line.
        if !announced && start.elapsed() >= ANNOUNCE_AFTER {
            events(Event::Step(format!(
                "waiting for config epochs to settle before {} claims slots {}: {why}",
                dst.addr(),
                format_ranges(batch)
            )));
            announced = true;
        }
        if interrupt::requested() {
            return Err(error(Kind::Interrupted(format!(
                "interrupted while waiting for config epochs to settle: {why}"
            ))));
        }
        if start.elapsed() >= timeout {
            bail!(
                "timed out after {timeout:.0?} waiting for config epochs to settle: {why} (claiming the slots now could make {} lose them and their keys)",
                dst.addr()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(MAX_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Addr;
    use crate::topology::parse_node_line;

    fn line(id: char, port: u16, flags: &str, epoch: u64, slots: &str) -> String {
        let id: String = std::iter::repeat_n(id, 40).collect();
        format!(
            "{id} 127.0.0.1:{port}@{} {flags} - 0 0 {epoch} connected {slots}",
            port + 10000
        )
    }

    /// The view of the node `me` (index into `lines`), whose current epoch is `current`.
    fn view(lines: &[String], me: usize, current: u64) -> View {
        let nodes = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let l = if i == me {
                    l.replacen(" master ", " myself,master ", 1)
                } else {
                    l.clone()
                };
                parse_node_line(&l).unwrap()
            })
            .collect::<Vec<_>>();
        View {
            addr: Addr::new("127.0.0.1", nodes[me].port),
            nodes,
            cluster_state: "ok".into(),
            current_epoch: current,
            keys: 0,
        }
    }

    /// Source `a` at epoch `s`, destination `b` at `d` whose current epoch is
    /// `current`, a third master `c` at `x`.
    fn cluster(s: u64, d: u64, x: u64, current: u64) -> (View, View) {
        let lines = [
            line('a', 7000, "master", s, "0-99"),
            line('b', 7001, "master", d, "100-199"),
            line('c', 7002, "master", x, "200-16383"),
        ];
        (view(&lines, 0, s.max(d).max(x)), view(&lines, 1, current))
    }

    #[test]
    fn a_settled_cluster_may_claim() {
        let (sv, dv) = cluster(3, 5, 4, 5);
        assert_eq!(claim_hazard(&sv, &dv, 0), None);
    }

    #[test]
    fn a_destination_behind_on_the_source_epoch_waits() {
        let (sv, dv) = cluster(6, 5, 4, 5);
        let why = claim_hazard(&sv, &dv, 0).unwrap();
        assert!(
            why.contains("127.0.0.1:7001 has not heard of epoch 6 of 127.0.0.1:7000 yet"),
            "{why}"
        );
        let (sv, dv) = cluster(6, 5, 4, 6);
        assert_eq!(claim_hazard(&sv, &dv, 0), None);
    }

    #[test]
    fn a_destination_behind_on_the_operations_last_claim_waits() {
        let (sv, dv) = cluster(3, 5, 4, 5);
        let why = claim_hazard(&sv, &dv, 6).unwrap();
        assert!(
            why.contains(
                "127.0.0.1:7001 has not heard of epoch 6, taken by this operation's previous claim"
            ),
            "{why}"
        );
        assert_eq!(claim_hazard(&sv, &dv, 5), None);
    }

    #[test]
    fn a_source_sharing_its_epoch_waits() {
        let (sv, dv) = cluster(4, 5, 4, 5);
        let why = claim_hazard(&sv, &dv, 0).unwrap();
        assert!(
            why.contains("127.0.0.1:7002 both have config epoch 4"),
            "{why}"
        );
        let (sv, dv) = cluster(5, 5, 4, 5);
        let why = claim_hazard(&sv, &dv, 0).unwrap();
        assert!(
            why.contains("127.0.0.1:7001 both have config epoch 5"),
            "{why}"
        );
    }

    #[test]
    fn replicas_and_failed_masters_share_epochs_harmlessly() {
        let a: String = std::iter::repeat_n('a', 40).collect();
        let mut src = vec![
            line('a', 7000, "master", 3, "0-99"),
            line('b', 7001, "master", 5, "100-16383"),
        ];
        // A replica's line carries its master's epoch; a failed master never talks.
        src.push(line('c', 7002, &format!("slave {a}"), 3, "").replacen(" - 0 0", " 0 0", 1));
        src.push(line('d', 7003, "master,fail", 3, ""));
        let (sv, dv) = (view(&src, 0, 5), view(&src, 1, 5));
        assert_eq!(claim_hazard(&sv, &dv, 0), None);
    }
}
