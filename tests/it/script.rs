//! `redis-trib run`: scripts against real clusters, errors with positions, dry runs
//! that leave nodes untouched, offline runs, custom balancers, the sandbox.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Writes `text` to `name` in a fresh temp dir; returns (dir guard, path).
fn script(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn run_script(lab: &TestLab, path: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    lab.run(&args)
}

#[test]
fn primitives_args_params_and_replies() {
    let lab = lab(3);
    lab.cluster(2);
    let (_d, path) = script(
        "t.rhai",
        r#"
        let c = ARGS[0];
        print(`args=${ARGS.len()} zone=${PARAMS.zone}`);
        print(`masters=${list_masters(c).len()} nodes=${list_nodes(c).len()}`);
        let n = node(c);
        print(`me=${n.addr} role=${n.role_in_cluster} slots=${n.slot_count} master_id=${n.master_id}`);
        print(`slot=${slot_of("foo")} parsed=${parse_slots("0 2 4-6")} fmt=${format_slots([1,2,3,7])}`);
        // Replies: nil, integer, status, bulk string, array.
        let owner = list_masters(c).filter(|m| m.assigned_slots.contains(slot_of("foo")))[0];
        print(`set=${execute(owner, "SET", "foo", "bar")} get=${execute(owner, "GET", "foo")}`);
        print(`missing=${execute(owner, "GET", "nope") == ()} incr=${execute(owner, "INCRBY", "{foo}n", 5) + 1}`);
        let cfg = execute(c, "CONFIG", "GET", "cluster-enabled");
        print(`config=${cfg[0]}:${cfg[1]} type=${type_of(cfg)}`);
        join_no_load(c, ARGS[1]);
        print(`after=${list_masters(c).len()} dry=${is_dry_run()}`);
        "#,
    );
    let out = run_script(&lab, &path, &[&lab.at(0), &lab.at(2), "--set", "zone=eu"]);
    let text = out.ok();
    assert!(text.contains("args=2 zone=eu"), "{text}");
    assert!(text.contains("masters=2 nodes=2"), "{text}");
    assert!(
        text.contains(&format!(
            "me={} role=master slots=8192 master_id=",
            lab.at(0)
        )),
        "{text}"
    );
    assert!(
        text.contains("slot=12182 parsed=[0, 2, 4, 5, 6] fmt=1-3,7"),
        "{text}"
    );
    assert!(text.contains("set=OK get=bar"), "{text}");
    assert!(text.contains("missing=true incr=6"), "{text}");
    assert!(
        text.contains("config=cluster-enabled:yes type=array"),
        "{text}"
    );
    assert!(text.contains("after=3 dry=false"), "{text}");
    assert_eq!(lab.nodes(2).len(), 3, "join_no_load really joined");
}

#[test]
fn errors_have_position_caret_and_call_chain() {
    // No cluster needed: the failures are in the script.
    let (dir, path) = script("bad.rhai", "let x = 1;\nlet y = x +;\n");
    let out = Run::from(
        bin()
            .args(["run", path.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    out.fails_with("bad.rhai:2:");
    assert!(out.stderr.contains("let y = x +;"), "{}", out.stderr);
    assert!(out.stderr.contains('^'), "{}", out.stderr);

    // A failure inside a module function: position in the script and the chain.
    std::fs::write(
        dir.path().join("team.rhai"),
        "fn explode(n) {\n  if n > 1 { throw `boom ${n}`; }\n}\n",
    )
    .unwrap();
    let main = dir.path().join("main.rhai");
    std::fs::write(&main, "import \"team\" as team;\n\nteam::explode(5);\n").unwrap();
    let out = Run::from(
        bin()
            .args(["run", main.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    out.fails_with("main.rhai:3:");
    assert!(out.stderr.contains("boom 5"), "{}", out.stderr);
    assert!(
        out.stderr.contains("in function explode (module team)"),
        "{}",
        out.stderr
    );

    // try/catch sees a primitive's error message.
    let (_d, p) = script("catch.rhai", "try { migrate_slots(\"127.0.0.1:1\", \"127.0.0.1:2\", [0]); } catch (e) { print(`caught: ${e}`); }\n");
    let out = Run::from(
        bin()
            .args(["run", p.to_str().unwrap(), "--allow-host", "127.0.0.1"])
            .output()
            .unwrap(),
    );
    assert!(
        out.ok().contains("caught: cannot connect to 127.0.0.1:1"),
        "{}",
        out.stdout
    );

    // A missing file, a bad import.
    Run::from(bin().args(["run", "/nonexistent/x.rhai"]).output().unwrap())
        .fails_with("cannot read script /nonexistent/x.rhai");
    let (_d, p) = script("imp.rhai", "import \"../etc/passwd\" as p;\n");
    Run::from(bin().args(["run", p.to_str().unwrap()]).output().unwrap())
        .fails_with("name a module");
}

#[test]
fn shebang_scripts_are_executable() {
    let (dir, path) = script(
        "hello.rhai",
        "#!/usr/bin/env -S redis-trib run\nprint(`hello ${ARGS[0]}`);\n",
    );
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_redis-trib"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(&path)
        .arg("world")
        .env("PATH", path_var)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = Run::from(out);
    assert_eq!(out.ok().trim(), "hello world");
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let lab = lab(4);
    lab.cluster(2);
    let kv = lab.write_keys(0, "dry", 200);
    let before = lab.snapshot();
    let (_d, path) = script(
        "plan.rhai",
        r#"
        let c = ARGS[0];
        join_cluster(c, ARGS[1]);
        replicate(ARGS[1], ARGS[2]);
        print(`planned masters=${list_masters(c).len()} new_slots=${node(ARGS[1]).slot_count} dry=${is_dry_run()}`);
        print(`replica_of_new=${node(ARGS[2]).master_id == node(ARGS[1]).node_id}`);
        "#,
    );
    let out = run_script(
        &lab,
        &path,
        &[&lab.at(0), &lab.at(2), &lab.at(3), "--dry-run"],
    );
    let text = out.ok();
    assert!(
        text.contains("planned masters=3 new_slots=5461 dry=true"),
        "{text}"
    );
    assert!(text.contains("replica_of_new=true"), "{text}");
    assert!(text.contains("Plan ("), "{text}");
    assert!(text.contains("CLUSTER MEET"), "{text}");
    assert!(
        text.contains("move 2730 slots") && text.contains("move 2731 slots"),
        "{text}"
    );
    assert!(text.contains("CLUSTER REPLICATE"), "{text}");
    assert_eq!(lab.snapshot(), before, "a dry run changes no node");

    // JSON plan.
    let out = run_script(
        &lab,
        &path,
        &[&lab.at(0), &lab.at(2), &lab.at(3), "--dry-run", "--json"],
    );
    // Stdout is the document alone (what the script printed is inside it).
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let steps = doc["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["op"] == "move_slots"));
    assert_eq!(doc["dry_run"], true);
    assert_eq!(lab.snapshot(), before);
    lab.assert_keys(0, &kv);

    // Writes through execute are refused in a dry run; reads pass.
    let (_d, path) = script(
        "w.rhai",
        "print(execute(ARGS[0], \"DBSIZE\")); execute(ARGS[0], \"FLUSHALL\");",
    );
    let out = run_script(&lab, &path, &[&lab.at(0), "--dry-run"]);
    out.fails_with("a dry run does not send FLUSHALL");
    assert_eq!(lab.snapshot(), before);
}

#[test]
fn offline_runs_use_a_saved_topology() {
    let lab = lab(2);
    lab.cluster(2);
    let snap = lab.run(&["list", &lab.at(0), "--json"]).ok().to_string();
    let (dir, path) = script(
        "off.rhai",
        r#"
        let c = ARGS[0];
        let plan = base_balance_plan(list_masters(c) + [node("10.9.9.9:7000")]);
        print(`moves=${plan.len()} first=${plan[0][2]}`);
        join_cluster(c, "10.9.9.9:7000", #{ weight: |n| if is_dry_run() { 1 } else { throw "not dry inside a callback" } });
        print(`new=${node("10.9.9.9:7000").slot_count}`);
        // Emptied of its last slots, a master becomes the receiver's replica (Redis 7).
        let first = list_masters(c).filter(|m| m.addr != "10.9.9.9:7000")[0];
        migrate_slots(first.addr, "10.9.9.9:7000", first.assigned_slots);
        let after = node(first.addr);
        print(`emptied master=${after.is_master} follows new=${after.master_id == node("10.9.9.9:7000").node_id}`);
        "#,
    );
    let snap_path = dir.path().join("snap.json");
    std::fs::write(&snap_path, snap).unwrap();
    let at0 = lab.at(0);
    drop(lab); // no node is needed, nor reached, offline
    let out = Run::from(
        bin()
            .args([
                "run",
                path.to_str().unwrap(),
                &at0,
                "--topology",
                snap_path.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    );
    let text = out.ok();
    assert!(text.contains("moves=2 first=2730"), "{text}");
    assert!(text.contains("new=5461"), "{text}");
    assert!(
        text.contains("emptied master=false follows new=true"),
        "{text}"
    );
    assert!(text.contains("Plan ("), "{text}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    Run::from(
        bin()
            .args([
                "run",
                path.to_str().unwrap(),
                &at0,
                "--topology",
                bad.to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    )
    .fails_with("is not a topology snapshot");
}

#[test]
fn custom_weight_and_plan_closures_decide_where_slots_go() {
    let lab = lab(4);
    lab.cluster(2);
    let kv = lab.write_keys(0, "custom", 500);
    // Weight: the newcomer counts double -> half of all slots.
    let (_d, path) = script(
        "w.rhai",
        "join_cluster(ARGS[0], ARGS[1], #{ weight: |n| if n.addr == ARGS[1] { 2 } else { 1 } });",
    );
    run_script(&lab, &path, &[&lab.at(0), &lab.at(2)]).ok();
    assert_eq!(lab.slots_of(2).len(), 8192);
    // Plan: exactly 100 slots from the first master to the newcomer.
    let (_d, path) = script(
        "p.rhai",
        "join_cluster(ARGS[0], ARGS[1], #{ plan: |masters, new_node| [[masters[0], new_node, 100]] });",
    );
    run_script(&lab, &path, &[&lab.at(0), &lab.at(3)]).ok();
    assert_eq!(lab.slots_of(3).len(), 100);
    lab.assert_keys(0, &kv);
    lab.assert_redis_cli_check(0);
}

#[test]
fn a_bad_plan_is_refused_before_anything_moves() {
    let lab = lab(3);
    lab.cluster(2);
    let before = lab.snapshot();
    for (plan, message) in [
        ("[[masters[0], new_node, 9000]]", "move #1"),
        (
            "[[masters[0], new_node, 10], [masters[0], new_node, 8190]]",
            "move #2",
        ),
        (
            "[[\"0123456789012345678901234567890123456789\", new_node, 1]]",
            "is not a master of this cluster",
        ),
        ("[[masters[0], masters[0], 1]]", "same node"),
        ("42", "a plan must be an array"),
        ("[[masters[0], new_node]]", "expected [src, dst, count]"),
    ] {
        let (_d, path) = script(
            "bad.rhai",
            &format!("join_cluster(ARGS[0], ARGS[1], #{{ plan: |masters, new_node| {plan} }});"),
        );
        run_script(&lab, &path, &[&lab.at(0), &lab.at(2)]).fails_with(message);
        assert_eq!(lab.snapshot(), before, "plan {plan} changed the cluster");
    }
    // A callback that calls a cluster function gets a clear error, not a deadlock.
    let (_d, path) = script(
        "re.rhai",
        "join_cluster(ARGS[0], ARGS[1], #{ weight: |n| list_masters(ARGS[0]).len() });",
    );
    run_script(&lab, &path, &[&lab.at(0), &lab.at(2)])
        .fails_with("cannot be called from inside a callback (weight, plan or on_progress)");
    // Unknown options are named.
    let (_d, path) = script(
        "opt.rhai",
        "join_cluster(ARGS[0], ARGS[1], #{ wieght: |n| 1 });",
    );
    run_script(&lab, &path, &[&lab.at(0), &lab.at(2)]).fails_with("unknown option 'wieght'");
    assert_eq!(lab.snapshot(), before);
}

#[test]
fn the_sandbox_bounds_runaway_scripts() {
    for (name, text, extra, message) in [
        (
            "loop.rhai",
            "let i = 0;\nloop { i += 1; }\n",
            &["--max-operations", "100000"][..],
            "too many operations",
        ),
        (
            "grow.rhai",
            "let a = [];\nloop { a.push(1); }\n",
            &[][..],
            "Size of array",
        ),
        (
            "deep.rhai",
            "fn f(n) { f(n + 1) }\nf(0);\n",
            &[][..],
            "Stack overflow",
        ),
    ] {
        let (_d, path) = script(name, text);
        let mut cmd = bin();
        cmd.args(["run", path.to_str().unwrap()]).args(extra);
        Run::from(cmd.output().unwrap()).fails_with(message);
    }
}

#[test]
fn ctrl_c_stops_a_running_script_cleanly() {
    let (_d, path) = script("wait.rhai", "print(\"started\");\nloop { sleep(50); }\n");
    let mut child = bin()
        .args(["run", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first[..7], b"started");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
}

#[test]
fn doc_lists_every_function_from_the_engine() {
    let out = Run::from(bin().arg("doc").output().unwrap());
    let text = out.ok();
    for f in [
        "list_nodes(",
        "list_masters(",
        "start_cluster(",
        "start_cluster_on_multi(",
        "join_cluster(",
        "join_no_load(",
        "replicate(",
        "quit_cluster(",
        "shutdown_cluster(",
        "fix_migrating(",
        "migrate_slots(",
        "rescue_cluster(",
        "base_balance_plan(",
        "slot_of(",
        "parse_slots(",
        "execute(",
        "sleep(",
        "log(",
    ] {
        assert!(text.contains(&format!("`{f}")), "doc misses {f}");
    }
    let json: serde_json::Value =
        serde_json::from_str(Run::from(bin().args(["doc", "--json"]).output().unwrap()).ok())
            .unwrap();
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .all(|d| !d["doc"].as_str().unwrap().is_empty()));
}

#[test]
fn shared_modules_come_from_redis_trib_path_then_the_stdlib() {
    let team = tempfile::tempdir().unwrap();
    std::fs::write(
        team.path().join("team.rhai"),
        "fn greet(n) { `hello ${n}` }\n",
    )
    .unwrap();
    let (_d, path) = script(
        "use.rhai",
        "import \"team\" as team;\nimport \"balance\" as b;\nprint(team::greet(\"ops\"));\nprint(`stdlib ${b::total_slots([])}`);\n",
    );
    let out = Run::from(
        bin()
            .args(["run", path.to_str().unwrap()])
            .env("REDIS_TRIB_PATH", team.path())
            .output()
            .unwrap(),
    );
    assert_eq!(out.ok(), "hello ops\nstdlib 0\n");
    // Without the path, the team module is not found, and the error says which.
    let out = Run::from(
        bin()
            .args(["run", path.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    out.fails_with("team");
}
