//! Scripts teams can trust: the sandbox holds (memory wherever values live, wall-clock
//! time, files only under `--allow-write`, nodes only of the named clusters), secrets
//! stay out of the history and `ps`, and the contract for CI (exit codes, one JSON
//! document, honest dry-run notes, every README example runs).

use crate::support::*;
use redis_trib::lab::LabOpts;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Writes `text` to `name` in a fresh temp dir; returns (dir guard, path).
fn script(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// `redis-trib run FILE ARGS...` with no lab.
fn run(path: &Path, args: &[&str]) -> Run {
    Run::from(
        bin()
            .arg("run")
            .arg(path)
            .args(args)
            .output()
            .expect("run redis-trib"),
    )
}

/// Runs with `input` on stdin.
fn run_with_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
    let mut child = bin()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-trib");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn memory_held_in_closures_and_curried_arguments_is_bounded() {
    // The issue's script: 400 closures over a 2 MB string (833 MB before, growing
    // without bound). It stops at the default budget, naming it.
    let (_d, path) = script(
        "closures.rhai",
        r#"
let s = "x";
while s.len() < 2000000 { s += s; }
let keep = [];
for i in 0..400 { let t = s + i; keep.push(|| t.len()); }
print(keep.len());
"#,
    );
    let out = run(&path, &[]);
    out.fails_with("--max-memory 512 MiB");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert!(!out.stdout.contains("400"), "{}", out.stdout);
    // Curried arguments count too, under a smaller budget.
    let (_d, path) = script(
        "curried.rhai",
        r#"
fn size(t) { t.len() }
let s = "y";
while s.len() < 1000000 { s += s; }
let fns = [];
for i in 0..200 { fns.push(Fn("size").curry(s + i)); }
print(fns.len());
"#,
    );
    run(&path, &["--max-memory", "64"]).fails_with("--max-memory 64 MiB");
    // Within the budget the same script runs.
    assert_eq!(
        run(&path, &["--max-memory", "1024"]).ok().trim(),
        "200",
        "the budget is what stops it"
    );
}

#[test]
fn wall_clock_time_is_bounded_by_max_seconds() {
    for (name, text) in [
        ("sleepy.rhai", "loop { sleep(3600000) }\n"),
        (
            "quadratic.rhai",
            "let a = [];\nfor i in 0..99000 { a.push(i); }\nloop { a.insert(0, 1); a.remove(0); }\n",
        ),
    ] {
        let (_d, path) = script(name, text);
        let start = Instant::now();
        let out = run(&path, &["--max-seconds", "1", "--max-operations", "0"]);
        out.fails_with("ran longer than --max-seconds 1");
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} took {:?}",
            start.elapsed()
        );
    }
    // In the shell the limit is per input, when one is given.
    let out = crate::repl::repl(&["--max-seconds", "1"], "sleep(100)\nsleep(3600000)\n");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("<stdin>:2:") && out.stderr.contains("--max-seconds 1"),
        "{}",
        out.stderr
    );
    // `run` has a default limit; 0 lifts it (a short script still ends on its own).
    let (_d, path) = script("short.rhai", "sleep(10); print(\"done\");\n");
    assert_eq!(run(&path, &["--max-seconds", "0"]).ok().trim(), "done");
}

#[test]
fn the_time_limit_stops_an_operation_between_batches() {
    let lab = lab(2);
    lab.cluster(2);
    let slots = lab.slots_of(0);
    let range = format!("{}-{}", slots[0], slots[slots.len() - 1]);
    let (_d, path) = script(
        "long.rhai",
        "print(migrate_slots(ARGS[0], ARGS[1], ARGS[2]));\n",
    );
    // One slot per batch: thousands of round trips, far more than a second.
    let out = lab.run(&[
        "run",
        path.to_str().unwrap(),
        &lab.at(0),
        &lab.at(1),
        &range,
        "--max-seconds",
        "1",
        "--batch-slots",
        "1",
        "--parallel",
        "1",
    ]);
    out.fails_with("ran longer than --max-seconds 1");
    assert!(
        out.stderr.contains("no slot is left open"),
        "{}",
        out.stderr
    );
    lab.run(&["check", &lab.at(0)]).ok();

    // fail(msg) from a progress callback ends the script as anywhere else: one line.
    let (_d, path) = script(
        "callback.rhai",
        "on_progress(|e| if e.kind == \"moving\" { fail(\"seen a move\") });\nmigrate_slots(ARGS[0], ARGS[1], ARGS[2]);\n",
    );
    let last = slots[slots.len() - 1].to_string();
    let out = lab.run(&["run", path.to_str().unwrap(), &lab.at(0), &lab.at(1), &last]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim_end().lines().last(),
        Some("error: seen a move"),
        "{}",
        out.stderr
    );
}

#[test]
fn scripts_write_only_under_allowed_directories() {
    let lab = lab(2);
    lab.cluster(2);
    lab.write_keys(0, "bk", 50);
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("backups");
    std::fs::create_dir(&allowed).unwrap();
    let (_d, path) = script(
        "backup.rhai",
        "let m = backup_cluster(ARGS[0], ARGS[1]);\nprint(m.masters.len());\n",
    );
    let p = path.to_str().unwrap();
    // Refused before any node is contacted: the node does not even exist.
    let outside = root.path().join("elsewhere");
    let out = lab.run(&["run", p, "127.0.0.1:1", outside.to_str().unwrap()]);
    out.fails_with("not allowed: scripts write only under directories given with --allow-write");
    assert!(!out.stderr.contains("connect"), "{}", out.stderr);
    let escape = allowed.join("../elsewhere");
    let allow = allowed.to_str().unwrap();
    lab.run(&[
        "run",
        p,
        "127.0.0.1:1",
        escape.to_str().unwrap(),
        "--allow-write",
        allow,
    ])
    .fails_with("--allow-write");
    assert!(!outside.exists(), "nothing written outside");
    // Under an allowed directory it works, files 0600 and new directories 0700.
    let target = allowed.join("today/run1");
    let out = lab.run(&[
        "run",
        p,
        &lab.at(0),
        target.to_str().unwrap(),
        "--allow-write",
        allow,
    ]);
    assert_eq!(out.ok().trim(), "2");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&allowed.join("today")), 0o700);
    assert_eq!(mode(&target), 0o700);
    let files: Vec<PathBuf> = std::fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn scripts_reach_only_the_clusters_they_are_given() {
    let lab = lab(4);
    lab.cluster(3);
    let free = lab.at(3);
    let (_d, path) = script(
        "reach.rhai",
        r#"
print(execute(ARGS[0], "PING"));
for m in list_masters(ARGS[0]) { print(`${m.addr} ${execute(m.addr, "PING")}`); }
print(execute(PARAMS.other, "PING"));
"#,
    );
    let p = path.to_str().unwrap();
    let other = format!("other={free}");
    // Nodes of the named cluster are reached; a node outside it is refused.
    let out = lab.run(&["run", p, &lab.at(0), "--set", &other]);
    out.fails_with(&format!(
        "execute: {free} is not a node of the clusters named on the command line"
    ));
    assert!(
        out.stderr.contains("--allow-host 127.0.0.1"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout.matches("PONG").count(), 4, "{}", out.stdout);
    // Named as an argument (a free node), or allowed by host and port: reached.
    let ok = lab.run(&["run", p, &lab.at(0), &free, "--set", &other]);
    assert_eq!(ok.ok().matches("PONG").count(), 5);
    let ok = lab.run(&["run", p, &lab.at(0), "--set", &other, "--allow-host", &free]);
    assert_eq!(ok.ok().matches("PONG").count(), 5);
    // Another port of an allowed host:port is not.
    let port = lab.addr(3).port;
    let wrong = format!("127.0.0.1:{}", port + 1000);
    lab.run(&[
        "run",
        p,
        &lab.at(0),
        "--set",
        &other,
        "--allow-host",
        &wrong,
    ])
    .fails_with("--allow-host");
    // The cluster handle and the operations are guarded the same way.
    let (_d2, path2) = script(
        "handle.rhai",
        "cluster(PARAMS.other).execute(\"DBSIZE\");\n",
    );
    lab.run(&["run", path2.to_str().unwrap(), &lab.at(0), "--set", &other])
        .fails_with("cluster: ");
    // The shell: its cluster and what that knows, nothing else.
    let out = crate::repl::repl(
        &[&lab.at(0)],
        &format!(
            "execute(\"{}\", \"PING\")\nexecute(\"{free}\", \"PING\")\n",
            lab.at(2)
        ),
    );
    assert!(out.stdout.contains("PONG"), "{}", out.stdout);
    assert!(out.stderr.contains("--allow-host"), "{}", out.stderr);
    let out = crate::repl::repl(&[&lab.at(0)], &format!("cluster = \"{free}\"\n> PING\n"));
    assert!(out.stderr.contains("--allow-host"), "{}", out.stderr);
    // Imports name modules, never paths.
    let (_d3, path3) = script("imp.rhai", "import \"../../etc/passwd\" as p;\n");
    run(&path3, &[]).fails_with("name a module");
}

#[test]
fn exit_and_fail_give_the_exit_codes_ci_needs() {
    // exit(n): that code, nothing printed after the script's own output; from inside
    // a function and a try block too.
    let (_d, path) = script(
        "exit.rhai",
        "print(\"before\");\nfn stop(n) { try { exit(n); } catch (e) { print(\"caught\"); } }\nstop(3);\nprint(\"after\");\n",
    );
    let out = run(&path, &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "before");
    assert_eq!(out.stderr, "");
    let (_d, path) = script("zero.rhai", "exit(0);\nprint(\"after\");\n");
    let out = run(&path, &[]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    let (_d, path) = script("bad.rhai", "exit(300);\n");
    run(&path, &[]).fails_with("exit: 300 is not an exit code");
    let (_d, path) = script("text.rhai", "exit(\"done\");\n");
    run(&path, &[]).fails_with("exit: expected an exit code (0-255), got string");
    // fail(msg): exactly one line, no excerpt, exit 1, not caught.
    let (_d, path) = script(
        "fail.rhai",
        "fn check() { fail(\"3 masters without replicas\"); }\ntry { check(); } catch (e) { print(\"caught\"); }\n",
    );
    let out = run(&path, &[]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.trim(), "error: 3 masters without replicas");
    assert_eq!(out.stdout, "");
    // In a dry run too, and from the shell.
    let out = run(&path, &["--dry-run"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("error: 3 masters without replicas"));
    let out = crate::repl::repl(&[], "let x = 1\nexit(4)\nprint(\"after\")\n");
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(!out.stdout.contains("after"));
}

#[test]
fn check_exits_3_when_the_cluster_is_unhealthy() {
    let lab = lab(2);
    lab.cluster(2);
    assert_eq!(lab.run(&["check", &lab.at(0)]).code, 0);
    let slots = lab.slots_of(1);
    let first = slots[0].to_string();
    lab.cmd(1, &["CLUSTER", "DELSLOTS", &first]).unwrap();
    poll(10, "the slot to be uncovered", || {
        !lab.slots_of(0).contains(&slots[0])
    });
    let out = lab.run(&["check", &lab.at(0)]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("problem(s) found"), "{}", out.stderr);
    assert!(!out.stdout.is_empty(), "the report is still printed");
}

#[test]
fn run_json_is_one_document_with_typed_steps() {
    let lab = lab(2);
    lab.cluster(2);
    let owner0 = lab.slots_of(0);
    let (_d, path) = script(
        "plan.rhai",
        "print(\"moving\");\nmigrate_slots(ARGS[0], ARGS[1], \"0-9 20\");\nprint(`done ${is_dry_run()}`);\n",
    );
    let (src, dst) = if owner0.contains(&0) { (0, 1) } else { (1, 0) };
    let out = lab.run(&[
        "run",
        path.to_str().unwrap(),
        &lab.at(src),
        &lab.at(dst),
        "--dry-run",
        "--json",
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(out.ok()).expect("stdout is one JSON document");
    assert_eq!(doc["output"], serde_json::json!(["moving", "done true"]));
    assert_eq!(doc["error"], serde_json::Value::Null);
    let moves: Vec<&serde_json::Value> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] == "move_slots")
        .collect();
    assert_eq!(moves.len(), 1, "{doc:#}");
    let m = moves[0];
    assert_eq!(m["src"], lab.at(src));
    assert_eq!(m["dst"], lab.at(dst));
    assert_eq!(m["slots"], serde_json::json!([[0, 9], [20, 20]]));
    assert_eq!(m["count"], 11);
    assert!(m["keys"].is_u64(), "{m}");
    // A failing script still gives one document, with its error.
    let (_d, path) = script("boom.rhai", "print(\"a\");\nthrow \"boom\";\n");
    let out = lab.run(&["run", path.to_str().unwrap(), "--dry-run", "--json"]);
    assert_eq!(out.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["output"], serde_json::json!(["a"]));
    assert!(doc["error"].as_str().unwrap().contains("boom"), "{doc}");
}

#[test]
fn a_dry_run_says_what_happened_when_nothing_was_planned() {
    for (name, text, note) in [
        (
            "syntax.rhai",
            "let x = 1 +;\n",
            "nothing ran: the script does not compile",
        ),
        (
            "throws.rhai",
            "throw \"no\";\n",
            "the script stopped before planning any change",
        ),
        ("reads.rhai", "print(1 + 1);\n", "no change planned"),
    ] {
        let (_d, path) = script(name, text);
        let out = run(&path, &["--dry-run"]);
        assert!(out.stderr.contains(note), "{name}: {}", out.stderr);
        if name != "reads.rhai" {
            assert!(!out.stderr.contains("no change planned"), "{}", out.stderr);
            assert_eq!(out.code, 1);
        }
    }
}

#[test]
fn passwords_stay_out_of_ps_and_the_history() {
    let lab = lab_with(
        1,
        LabOpts {
            password: Some("s3cret".into()),
            ..LabOpts::default()
        },
    );
    lab.cluster(1);
    let node = lab.at(0);
    const WARNING: &str =
        "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.";
    // On the command line: warned once. From REDISCLI_AUTH: not.
    let out = Run::from(
        bin()
            .args(["--password", "s3cret", "check", &node])
            .output()
            .unwrap(),
    );
    out.ok();
    assert_eq!(out.stderr.matches(WARNING).count(), 1, "{}", out.stderr);
    let out = lab.run(&["check", &node]);
    out.ok();
    assert!(!out.stderr.contains("Warning"), "{}", out.stderr);
    // --askpass: read without it appearing anywhere on the command line.
    run_with_stdin(&["--askpass", "check", &node], &[], "s3cret\n").ok();
    let wrong = run_with_stdin(&["--askpass", "check", &node], &[], "nope\n");
    assert_ne!(wrong.code, 0);
    // import's source password has an environment variable.
    let help = Run::from(bin().args(["import", "--help"]).output().unwrap());
    assert!(
        help.ok().contains("REDIS_TRIB_FROM_PASSWORD"),
        "{}",
        help.stdout
    );

    // The shell on a terminal (a pseudo-terminal through `script`): inputs carrying
    // secrets never reach the history file.
    let home = tempfile::tempdir().unwrap();
    let history = home.path().join("history");
    let shell = format!("{} repl {node}", env!("CARGO_BIN_EXE_redis-trib"));
    let (home_dir, history_file) = (home.path().to_str().unwrap(), history.to_str().unwrap());
    let mut term = Terminal::open(
        &shell,
        &[
            ("REDISCLI_AUTH", "s3cret"),
            ("HOME", home_dir),
            ("REDIS_TRIB_HISTORY", history_file),
        ],
    );
    let lines = [
        "> AUTH s3cret",
        "> CONFIG SET requirepass s3cret",
        "execute(cluster, \"ACL\", \"SETUSER\", \"bob\", \">s3cret\")",
        "let kept = 40 + 2",
        "> HELLO 3 AUTH default s3cret",
        "print(`value ${kept}`)",
        ".quit",
    ];
    for (i, line) in lines.iter().enumerate() {
        term.wait_for_prompts(i + 1);
        term.type_line(line);
    }
    let (_, screen) = term.finish();
    assert!(screen.contains("value 42"), "{screen}");
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.contains("let kept = 40 + 2"), "{kept}");
    assert!(kept.contains("print(`value ${kept}`)"), "{kept}");
    assert!(!kept.contains("s3cret"), "{kept}");
}

#[test]
fn every_rhai_example_of_the_readme_compiles_and_runs() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```rhai") => current = Some(String::new()),
            (Some(b), l) if l.starts_with("```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    assert!(!blocks.is_empty(), "no ```rhai block found");
    let engine = redis_trib::script::ScriptEngine::new(
        redis_trib::script::Target::Sim(redis_trib::backend::sim::Sim::offline(
            &redis_trib::topology::Topology::default(),
        )),
        redis_trib::script::ScriptIo {
            print: std::sync::Arc::new(|_| {}),
            log: std::sync::Arc::new(|_| {}),
        },
        Vec::new(),
        &redis_trib::script::Limits::default(),
    );
    let scope = redis_trib::script::ScriptEngine::scope(&[], &Default::default());
    for b in &blocks {
        if let Err(e) = engine.compile(&scope, b) {
            panic!("a README example does not compile: {e}\n{b}");
        }
    }
    // Each runs for real: ARGS are a three-master cluster and a free node.
    let lab = lab(4);
    lab.cluster(3);
    for (i, b) in blocks.iter().enumerate() {
        let (_d, path) = script(&format!("readme{i}.rhai"), b);
        let out = lab.run(&["run", path.to_str().unwrap(), &lab.at(0), &lab.at(3)]);
        assert_eq!(
            out.code, 0,
            "README example {i} failed: {}\n{b}",
            out.stderr
        );
    }
    // The weighted join gave the new node twice the share of the others.
    let n = lab.slots_of(3).len();
    assert!((6553..=6554).contains(&n), "the new node has {n} slots");
}

/// A command on a pseudo-terminal (util-linux `script`): what it shows, as it shows it.
struct Terminal {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    screen: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    fn open(command: &str, env: &[(&str, &str)]) -> Terminal {
        let mut child = std::process::Command::new("script")
            .args(["-q", "-e", "-c", command, "/dev/null"])
            .env("NO_COLOR", "1")
            .env_remove("REDISCLI_AUTH")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
        let mut stdout = child.stdout.take().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let shown = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                shown.lock().unwrap().push_str(&text);
            }
        });
        Terminal {
            stdin: child.stdin.take(),
            child,
            screen,
            reader: Some(reader),
        }
    }

    fn wait_for(&self, text: &str) {
        poll(30, text, || self.screen.lock().unwrap().contains(text));
    }

    /// Waits for the line editor's `n`th prompt: it drops what is typed ahead of its
    /// prompt, so a line is typed per prompt (each prompt turns bracketed paste on
    /// once; redraws of the line do not).
    fn wait_for_prompts(&self, n: usize) {
        poll(30, "the shell's prompt", || {
            self.screen.lock().unwrap().matches("\x1b[?2004h").count() >= n
        });
    }

    /// Types `line` and Enter (a carriage return on a terminal).
    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        write!(stdin, "{line}\r").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the command to end: its exit code and everything it showed.
    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        drop(self.stdin.take());
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        let screen = self.screen.lock().unwrap().clone();
        (status.code().unwrap_or(-1), screen)
    }
}

#[test]
fn askpass_reads_the_terminal_without_echo() {
    let lab = lab_with(
        1,
        LabOpts {
            password: Some("t0psecret".into()),
            ..LabOpts::default()
        },
    );
    lab.cluster(1);
    let cmd = format!(
        "{} --askpass check {}",
        env!("CARGO_BIN_EXE_redis-trib"),
        lab.at(0)
    );
    let mut term = Terminal::open(&cmd, &[]);
    term.wait_for("password: ");
    term.type_line("t0psecret");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("[OK]"), "{screen}");
    assert!(!screen.contains("t0psecret"), "echoed: {screen}");
}

#[test]
fn import_takes_the_source_password_from_the_environment() {
    let cluster = lab(1);
    cluster.cluster(1);
    let source = lab_with(
        1,
        LabOpts {
            password: Some("src-pw".into()),
            extra_args: vec!["--cluster-enabled".into(), "no".into()],
            ..LabOpts::default()
        },
    );
    for i in 0..20 {
        raw(
            &source.addr(0),
            Some("src-pw"),
            &["SET", &format!("env:{i}"), "v"],
        )
        .unwrap();
    }
    let from = source.at(0);
    // Without it the source refuses; with it (and no password on the command line,
    // so no warning) every key moves.
    cluster
        .run(&["import", &cluster.at(0), "--from", &from])
        .fails_with("");
    let out = Run::from(
        bin()
            .args(["import", &cluster.at(0), "--from", &from])
            .env("REDIS_TRIB_FROM_PASSWORD", "src-pw")
            .output()
            .unwrap(),
    );
    out.ok();
    assert!(!out.stderr.contains("Warning"), "{}", out.stderr);
    let keys = raw(&cluster.addr(0), None, &["DBSIZE"]).unwrap();
    assert_eq!(redis::from_redis_value::<i64>(keys).unwrap(), 20);
}
