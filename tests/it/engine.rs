//! The migration engine's guarantees: a batch that fails half-way is settled (done
//! slots assigned, untouched ones stable, only the split slot open), nothing is
//! lost, `fix` finishes it; parallel moves agree with sequential ones; scripts hear
//! an operation's progress while it runs.

use crate::support::*;
use std::collections::HashMap;

/// One hash tag per slot for slots `0..n`.
fn tags(n: u16) -> HashMap<u16, String> {
    let mut out = HashMap::new();
    let mut i = 0u64;
    while out.len() < n as usize {
        let t = format!("t{i}");
        let s = redis_trib::slots::slot_of(t.as_bytes());
        if s < n {
            out.entry(s).or_insert(t);
        }
        i += 1;
    }
    out
}

#[test]
fn a_batch_failing_half_way_is_settled_and_fix_finishes_it() {
    let lab = lab(2);
    lab.cluster(2);
    let (src, dst) = if lab.slots_of(0).contains(&0) {
        (0, 1)
    } else {
        (1, 0)
    };
    // Three keys in each of slots 0..300.
    let tags = tags(300);
    let mut kv = Vec::new();
    for s in 0..300u16 {
        kv.extend(lab.write_keys(src, &format!("{{{}}}", tags[&s]), 3));
    }
    // A conflicting copy of one key of slot 150 already sits on the destination.
    let clash = format!("{{{}}}:1", tags[&150]);
    lab.plant_on(dst, &clash, "stale");

    let out = lab.run(&[
        "migrate_slots",
        &lab.at(src),
        &lab.at(dst),
        "0-299",
        "--batch-slots",
        "256",
    ]);
    out.fails_with(&format!("key '{clash}' already exists"));
    assert!(
        out.stderr.contains("slots 150 are left open"),
        "{}",
        out.stderr
    );

    // Settled: only slot 150 is open; every other slot has exactly one owner.
    let check = lab.run(&["check", &lab.at(src), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let problems: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(
        !problems.is_empty() && problems.iter().all(|p| p.contains("slot 150 is open")),
        "{problems:?}"
    );
    let (on_src, on_dst) = (lab.slots_of(src), lab.slots_of(dst));
    for s in 0..300u16 {
        assert!(
            on_src.contains(&s) != on_dst.contains(&s),
            "slot {s} has one owner"
        );
    }
    assert!(
        on_dst.contains(&0),
        "slots drained before the failure were handed over"
    );
    assert!(on_src.contains(&299), "the second batch never started");
    lab.assert_keys(src, &kv);

    lab.run(&["fix", &lab.at(src), "--replace"]).ok();
    lab.run(&["check", &lab.at(src)]).ok();
    lab.assert_keys(dst, &kv);
    lab.assert_redis_cli_check(src);
}

#[test]
fn parallel_moves_from_several_sources_keep_every_key() {
    let lab = lab(4);
    lab.cluster(3);
    let kv = lab.write_keys(0, "par", 3000);
    lab.run(&["join_no_load", &lab.at(0), &lab.at(3)]).ok();
    let out = lab.run(&[
        "rebalance",
        &lab.at(0),
        "--use-empty-masters",
        "--parallel",
        "3",
        "--batch-slots",
        "128",
    ]);
    out.ok();
    assert!(
        out.stderr
            .contains("rebalanced: 4096 slots moved in 3 moves"),
        "{}",
        out.stderr
    );
    assert_eq!(lab.slots_of(3).len(), 4096);
    assert_eq!(lab.total_keys(0), 3000);
    lab.assert_keys(1, &kv);
    lab.assert_redis_cli_check(3);
    // Each batch's claim (one transaction, see migrate::claim_pipe) left the
    // destination with the highest config epoch, so its claims win everywhere.
    let nodes = lab.nodes(0);
    let dst = lab.id(3);
    let dst_epoch = nodes
        .iter()
        .find(|n| n.node_id == dst)
        .unwrap()
        .config_epoch;
    for n in nodes.iter().filter(|n| n.node_id != dst) {
        assert!(
            n.config_epoch < dst_epoch,
            "{} has epoch {} >= the destination's {dst_epoch}",
            n.addr(),
            n.config_epoch
        );
    }
}

#[test]
fn scripts_hear_progress_events_as_operations_run() {
    let lab = lab(3);
    let entry = lab.cluster(2);
    let kv = lab.write_keys(0, "ev", 3000);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("progress.rhai");
    std::fs::write(
        &script,
        r#"
let events = [];
on_progress(|e| events.push(e));
let keys = migrate_slots(ARGS[0], ARGS[1], "0-1500");
let moving = events.filter(|e| e.kind == "moving");
let steps = events.filter(|e| e.kind == "step");
let last = moving[moving.len() - 1];
print(`steps=${steps.len()} moving=${moving.len()} first=${moving[0].slots_done} last=${last.slots_done}/${last.slots_total} keys=${last.keys} moved=${keys}`);
// A failing callback does not stop the operation; its error comes afterwards.
on_progress(|e| throw "boom");
try { migrate_slots(ARGS[0], ARGS[1], "1501-1600"); } catch (err) { print(`caught: ${err}`); }
// A callback may not call back into the cluster.
on_progress(|e| list_nodes(ARGS[0]));
try { migrate_slots(ARGS[1], ARGS[0], "1501-1600"); } catch (err) { print(`caught: ${err}`); }
on_progress(());
migrate_slots(ARGS[0], ARGS[1], "1501-1600");
print(events.len() > 0);
"#,
    )
    .unwrap();
    let run = lab.run(&[
        "run",
        script.to_str().unwrap(),
        &entry.to_string(),
        &lab.at(1),
        "--batch-slots",
        "500",
        // Batches of 500 are the key engine's (an atomic move is one job).
        "--engine",
        "keys",
    ]);
    let out = run.ok().to_string();
    let lines: Vec<&str> = out.lines().collect();
    // Two steps (the move, the wait for every node to agree), a first event at 0
    // slots, then one per batch of 500 (and the last).
    assert!(
        lines[0].starts_with("steps=2 moving=5 first=0 last=1501/1501 keys="),
        "{out}"
    );
    let moved: &str = lines[0].rsplit("moved=").next().unwrap();
    assert!(lines[0].contains(&format!("keys={moved} ")), "{out}");
    let caught: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("caught:"))
        .collect();
    assert_eq!(caught.len(), 2, "{out}");
    assert!(
        caught[0].contains("on_progress callback failed: Runtime error: boom"),
        "{out}"
    );
    assert!(
        caught[1].contains("cannot be called from inside a callback"),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"true"), "{out}");
    // Every move happened whatever the callbacks did: 1501-1600 went there, back, there.
    assert!(
        lab.slots_of(1).contains(&0) && lab.slots_of(1).contains(&1600),
        "{out}"
    );
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn writes_acknowledged_during_a_reshard_are_all_kept() {
    use redis::Commands;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let lab = lab(3);
    lab.cluster(3);
    let kv = lab.write_keys(0, "old", 3000);
    // A client keeps writing new keys through the cluster (following MOVED and ASK)
    // while slots and keys move under it.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let mut conn = lab.cluster_conn(1);
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        std::thread::spawn(move || {
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("live:{i}");
                match conn.set::<_, _, ()>(&key, i) {
                    Ok(()) => acked.push((key, i.to_string())),
                    Err(e) => failed.push(format!("{key}: {e}")),
                }
                written.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
            (acked, failed)
        })
    };
    poll(10, "the writer to get going", || {
        written.load(Ordering::SeqCst) > 100
    });
    let before = written.load(Ordering::SeqCst);
    let src = lab.id(0);
    let dst = lab.id(1);
    lab.run(&[
        "reshard",
        &lab.at(0),
        "--from",
        &src,
        "--to",
        &dst,
        "--slots",
        "4096",
        "--batch-slots",
        "64",
        "--keys-per-migrate",
        "10",
    ])
    .ok();
    let during = written.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    let (acked, failed) = writer.join().unwrap();
    eprintln!("writes during the reshard: {during}");
    assert!(during > 0, "the writer wrote nothing while slots moved");
    assert!(
        failed.is_empty(),
        "writes refused while slots moved: {failed:?}"
    );
    assert_eq!(lab.slots_of(1).len(), 5461 + 4096);
    lab.assert_keys(2, &kv);
    lab.assert_keys(2, &acked);
    assert_eq!(lab.total_keys(0), (kv.len() + acked.len()) as i64);
    lab.assert_redis_cli_check(0);
}

/// Masters `nodes` given the same config epoch at once (as claims made at the same
/// moment, by another tool, leave them).
fn collide(lab: &TestLab, nodes: &[usize]) {
    let mut conns: Vec<_> = nodes
        .iter()
        .map(|i| {
            redis::Client::open(format!("redis://{}/", lab.at(*i)))
                .unwrap()
                .get_connection()
                .unwrap()
        })
        .collect();
    let barrier = std::sync::Barrier::new(nodes.len());
    std::thread::scope(|s| {
        for c in conns.iter_mut() {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                let _: redis::Value = redis::cmd("CLUSTER").arg("BUMPEPOCH").query(c).unwrap();
            });
        }
    });
}

/// Node `i`'s own config epoch.
fn my_epoch(lab: &TestLab, i: usize) -> u64 {
    lab.info(i)["cluster_my_epoch"].parse().unwrap()
}

/// A source whose config epoch other masters share may jump above its
/// destination's when Redis settles the collision, mid-move (once per master it
/// collides with): the destination's claim then loses, and Redis deletes its keys
/// in the slots. A move waits until the epochs are distinct and the destination has
/// heard of the source's; every key is kept, and it ends with distinct epochs.
#[test]
fn a_move_waits_for_a_config_epoch_collision_to_settle() {
    let lab = lab(5);
    let a = lab.cluster(4).to_string();
    let d = lab.at(4);
    lab.run(&["join_no_load", &a, &d]).ok();
    let kv = lab.write_keys(0, "epoch", 3000);
    // The master that bumps when two collide is the one with the lower id: make it
    // the source, colliding with the two next ones.
    let mut masters: Vec<(String, usize)> = (0..4).map(|i| (lab.id(i), i)).collect();
    masters.sort();
    let colliding: Vec<usize> = masters[..3].iter().map(|m| m.1).collect();
    let src = colliding[0];
    let (mut present, mut waited) = (0, 0);
    for round in 0..4u16 {
        // No colliding node may hold the highest epoch (BUMPEPOCH then keeps it).
        lab.cmd(4, &["CLUSTER", "BUMPEPOCH"]).unwrap();
        collide(&lab, &colliding);
        let first = lab.slots_of(src)[0];
        let range = format!("{first}-{}", first + 99);
        // Still colliding as the move starts? (Valkey 8+ announces a bumped epoch at
        // once, so its collisions are settled within milliseconds; Redis's last until
        // the two masters next talk.)
        let epochs: Vec<u64> = colliding.iter().map(|&i| my_epoch(&lab, i)).collect();
        let colliding_now = (1..epochs.len()).any(|k| epochs[..k].contains(&epochs[k]));
        let out = lab.run(&["migrate_slots", &lab.at(src), &d, &range]);
        out.ok();
        if colliding_now {
            present += 1;
            if out.stderr.contains("waiting for config epochs to settle") {
                waited += 1;
            }
        }
        lab.assert_keys(0, &kv);
        // Each master's own epoch (another node's table may still show an old one).
        let epochs: Vec<u64> = (0..5).map(|i| my_epoch(&lab, i)).collect();
        let distinct: std::collections::BTreeSet<_> = epochs.iter().collect();
        assert_eq!(distinct.len(), epochs.len(), "round {round}: {epochs:?}");
    }
    assert!(
        present < 2 || waited > 0,
        "{present} moves started on a collision, none waited for it"
    );
    assert_eq!(lab.total_keys(0), 3000);
    lab.assert_redis_cli_check(0);
}

/// The source takes a higher config epoch between two batches of a move (as when
/// Redis settles a collision on it), right before the destination claims the next
/// batch and before the destination can have heard of it. Claimed at once, the
/// destination's claim would lose to the source's epoch: the source would answer
/// it with an UPDATE and the destination would drop the batch, deleting its keys.
/// The engine waits until the destination has heard of the new epoch.
#[test]
fn a_claim_waits_until_the_destination_has_heard_the_source_epoch() {
    use redis_trib::engine::keys::{move_slots, Guard, MigrateOpts};
    use redis_trib::engine::{Event, Job};
    let lab = lab(4);
    let a = lab.cluster(3).to_string();
    let d = lab.at(3);
    lab.run(&["join_no_load", &a, &d]).ok();
    let kv = lab.write_keys(0, "claim", 3000);
    let table = lab.table();
    let (src, dst) = (table.of(0), table.of(3));
    let masters = table.masters();
    let slots: Vec<u16> = src.assigned_slots[..40].to_vec();
    let job = Job {
        src: src.clone(),
        dst,
        slots: slots.clone(),
    };
    let opts = MigrateOpts {
        batch_slots: 20,
        engine: redis_trib::engine::atomic::Engine::Keys,
        ..MigrateOpts::default()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let claims = redis_trib::engine::epochs::ClaimOrder::default();
    let guard = Guard {
        stop: &stop,
        leases: &[],
        claims: &claims,
    };
    let mut pool = redis_trib::conn::pool::Pool::new(lab.conn_opts());
    let mut steps = Vec::new();
    let mut bumped = None;
    let stats = move_slots(
        &mut pool,
        &job,
        &masters,
        &opts,
        &mut |e| match e {
            // After the first batch the destination holds the highest epoch: the
            // source's bump takes one above it, which only the source knows yet.
            Event::Progress(p) if p.slots_done == 20 && bumped.is_none() => {
                let reply = lab.cmd(0, &["CLUSTER", "BUMPEPOCH"]).unwrap();
                bumped = Some(text(reply));
            }
            Event::Step(s) => steps.push(s),
            _ => {}
        },
        &guard,
    )
    .unwrap();
    assert_eq!(stats.slots, 40);
    let bumped = bumped.expect("the first batch reported its progress");
    assert!(bumped.starts_with("BUMPED"), "{bumped}");
    // The second claim outranks the source: the destination claimed above the
    // source's new epoch (Redis does not tell the others of a BUMPEPOCH, so the
    // engine had to wait for it to spread; Valkey 8+ announces it at once).
    let (s_epoch, d_epoch) = (my_epoch(&lab, 0), my_epoch(&lab, 3));
    assert!(
        d_epoch > s_epoch,
        "the destination claimed at epoch {d_epoch}, below the source's {s_epoch}; steps: {steps:?}"
    );
    lab.assert_keys(1, &kv);
    assert_eq!(lab.total_keys(0), 3000);
    lab.assert_redis_cli_check(0);
}

/// Moves to several destinations at once claim one at a time, each above the
/// previous: claims made at the same moment would give two destinations one config
/// epoch (a collision Redis settles later, by bumping one of them, whenever the two
/// next talk). Right after the moves, with no wait for gossip, every master's epoch
/// is its own.
#[test]
fn parallel_claims_take_distinct_epochs() {
    use redis_trib::engine::keys::{move_many, MigrateOpts};
    use redis_trib::engine::Job;
    let lab = lab(6);
    let a = lab.cluster(3).to_string();
    lab.run(&["join_no_load", &a, &lab.at(3), &lab.at(4), &lab.at(5)])
        .ok();
    let table = lab.table();
    let masters = table.masters();
    let opts = MigrateOpts {
        batch_slots: 10,
        parallel: 3,
        engine: redis_trib::engine::atomic::Engine::Keys,
        ..MigrateOpts::default()
    };
    // Empty slots, small batches: three destinations claiming as fast as they can;
    // then some back, then more there (each round's end is one chance to collide).
    let slots: Vec<Vec<u16>> = (0..3)
        .map(|i| table.of(i).assigned_slots[..60].to_vec())
        .collect();
    let rounds: [(bool, std::ops::Range<usize>); 3] =
        [(true, 0..30), (false, 0..15), (true, 30..60)];
    for (round, (forth, range)) in rounds.into_iter().enumerate() {
        let jobs: Vec<Job> = (0..3)
            .map(|i| {
                let (from, to) = if forth { (i, i + 3) } else { (i + 3, i) };
                Job {
                    slots: slots[i][range.clone()].to_vec(),
                    src: table.of(from),
                    dst: table.of(to),
                }
            })
            .collect();
        move_many(&lab.conn_opts(), &jobs, &masters, &opts, &[], &mut |_| {}).unwrap();
        let epochs: Vec<u64> = (0..6).map(|i| my_epoch(&lab, i)).collect();
        let distinct: std::collections::BTreeSet<_> = epochs.iter().collect();
        assert_eq!(
            distinct.len(),
            6,
            "round {round}: own epochs right after the moves: {epochs:?}"
        );
    }
    lab.assert_redis_cli_check(0);
}
