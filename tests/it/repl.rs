//! The shell (`redis-trib repl`): piped sessions (variables, functions and imports
//! that persist, values printed, help, errors, dry run) and one real terminal
//! session on a pseudo-terminal (continuation lines, completion, hints, Ctrl-C,
//! history across sessions).

use crate::support::*;
use redis_trib::backend::sim::Sim;
use redis_trib::script::{Limits, ScriptEngine, ScriptIo, Target};
use redis_trib::topology::Topology;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `redis-trib repl ARGS` with `input` piped in, from `dir`, with a HOME and a
/// REDIS_TRIB_HISTORY that must stay untouched (piped sessions write no history).
fn repl_in(dir: &Path, args: &[&str], input: &str) -> Run {
    let home = tempfile::tempdir().unwrap();
    let history = home.path().join("history");
    let mut child = bin()
        .arg("repl")
        .args(args)
        .current_dir(dir)
        .env("HOME", home.path())
        .env("REDIS_TRIB_HISTORY", &history)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-trib repl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        !history.exists(),
        "a piped session wrote {}",
        history.display()
    );
    assert!(!home.path().join(".redis_trib_history").exists());
    run
}

/// Runs `redis-trib repl ARGS` with `input` piped in, from a fresh directory.
pub(crate) fn repl(args: &[&str], input: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    repl_in(dir.path(), args, input)
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().collect()
}

#[test]
fn variables_and_functions_persist_between_statements() {
    let lab = lab(3);
    lab.cluster(3);
    let input = r#"
let x = 40;
fn add2(n) {
    n + 2
}
add2(x)
cluster
list_masters(cluster).len()
let total = 0;
for m in list_masters(cluster) { total += m.slot_count; }
total
"plain text"
x = add2(x) + 1;
x
PARAMS.who + " " + ARGS.len()
fn add2(n) { n + 200 }
add2(0)
list_masters(cluster)
.quit
"never shown"
"#;
    let out = repl(&["--set", "who=ops", &lab.at(0)], input);
    let got = lines(out.ok());
    assert_eq!(
        got[..8],
        [
            "42",
            lab.at(0).as_str(),
            "3",
            "16384",
            "plain text",
            "43",
            "ops 0",
            "200"
        ],
        "stderr:\n{}",
        out.stderr
    );
    // A list of nodes: one per line, as Node's to_string shows it; `.quit` ends.
    assert_eq!(got.len(), 11, "{got:?}");
    for i in 0..3 {
        let me = format!("M {} ", lab.at(i));
        assert!(
            got[8..]
                .iter()
                .any(|l| l.starts_with(&me) && l.ends_with(" slots")),
            "{got:?}"
        );
    }
}

#[test]
fn imports_stay_imported_on_later_lines() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.rhai"),
        "fn twice(n) { n * 2 }\nfn greet(who) { `hello ${who}` }\n",
    )
    .unwrap();
    let input = "import \"m\" as m;\nm::twice(21)\nfn via_module(v) { m::twice(v) + 1 }\nvia_module(1)\nm::greet(\"ops\")\n";
    let out = repl_in(dir.path(), &[], input);
    assert_eq!(
        lines(out.ok()),
        vec!["42", "3", "hello ops"],
        "stderr:\n{}",
        out.stderr
    );
    // The stdlib resolves too, and a module not found is an error with its line.
    let out = repl_in(dir.path(), &[], "1 + 1\nimport \"no_such_module\" as x;\n");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("<stdin>:2:"), "{}", out.stderr);
    assert!(out.stderr.contains("no_such_module"), "{}", out.stderr);
}

#[test]
fn help_lists_every_function_from_the_engine() {
    let quiet: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|_| {});
    let engine = ScriptEngine::new(
        Target::Sim(Sim::offline(&Topology::default())),
        ScriptIo {
            print: quiet.clone(),
            log: quiet,
        },
        Vec::new(),
        &Limits::default(),
    );
    let out = repl(&[], "help()\n.help\nhelp(\"migrate_slots\")\n");
    let text = out.ok();
    assert!(text.contains("join_cluster("), "{text}");
    assert!(text.contains("migrate_slots("), "{text}");
    let shown: Vec<&str> = text.lines().map(str::trim).collect();
    for d in engine.docs() {
        let times = shown.iter().filter(|l| **l == d.signature).count();
        let want = if d.name == "migrate_slots" { 3 } else { 2 };
        assert_eq!(times, want, "{} shown {times} times:\n{text}", d.signature);
        assert!(shown.contains(&d.doc.as_str()), "doc of {} missing", d.name);
    }
    assert!(text.contains(".dry on"), "{text}");
    assert!(text.contains("slot_count"), "node fields: {text}");
}

#[test]
fn an_error_reports_its_position_and_fails_the_run() {
    // A runtime error: what ran before stays done, nothing after runs.
    let input = "print(\"before\");\nlet y = 1;\n\nno_such_function(y)\nprint(\"after\");\n";
    let out = repl(&[], input);
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("before") && !out.stdout.contains("after"));
    assert!(out.stderr.contains("error: <stdin>:4:1:"), "{}", out.stderr);
    assert!(out.stderr.contains("no_such_function"), "{}", out.stderr);
    assert!(
        out.stderr.contains("4 | no_such_function(y)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("| ^"), "{}", out.stderr);

    // A syntax error anywhere: nothing runs.
    let out = repl(&[], "print(\"side effect\");\nlet z = (1 +* 2);\n");
    assert_ne!(out.code, 0);
    assert!(!out.stdout.contains("side effect"), "{}", out.stdout);
    assert!(out.stderr.contains("<stdin>:2:"), "{}", out.stderr);

    // Thrown in a function defined earlier: the call chain is shown.
    let out = repl(&[], "fn boom() {\n  throw \"kaput\";\n}\n\nboom()\n");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("kaput"), "{}", out.stderr);
    assert!(out.stderr.contains("in function boom"), "{}", out.stderr);

    // An open block at the end, an unknown shell command.
    let out = repl(&[], "fn never_closed() {\n  1\n");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("<stdin>:"), "{}", out.stderr);
    repl(&[], "1\n.frobnicate\n").fails_with("unknown shell command `.frobnicate`");
}

#[test]
fn dry_run_plans_and_leaves_the_nodes_untouched() {
    let lab = lab(4);
    lab.cluster(3);
    let before = lab.snapshot();
    let input = format!(
        r#"is_dry_run()
.dry on
is_dry_run()
join_no_load(cluster, "{new}")
migrate_slots(cluster, "{dst}", [0, 1, 2])
list_masters(cluster).len()
.plan
.dry off
is_dry_run()
list_masters(cluster).len()
"#,
        new = lab.at(3),
        dst = lab.at(1)
    );
    // The free node is not the shell's cluster's: allowed by name.
    let out = repl(&[&lab.at(0), "--allow-host", &lab.at(3)], &input);
    let text = out.ok();
    let got = lines(text);
    assert_eq!(got[..4], ["false", "true", "0", "4"], "{text}");
    assert_eq!(got[got.len() - 2..], ["false", "3"], "{text}");
    let plan = text
        .split_once("Plan (")
        .unwrap_or_else(|| panic!("no plan:\n{text}"))
        .1;
    assert!(
        plan.lines()
            .any(|l| l.contains(&lab.at(3)) && l.contains("CLUSTER MEET")),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("move 3 slots to {}", lab.at(1))),
        "{plan}"
    );
    assert_eq!(lab.snapshot(), before, "the dry run changed the nodes");

    // `repl --dry-run` starts dry.
    let input = format!(".dry\njoin_no_load(cluster, \"{}\")\n.plan\n", lab.at(3));
    let out = repl(
        &["--dry-run", &lab.at(0), "--allow-host", &lab.at(3)],
        &input,
    );
    let text = out.ok();
    assert!(text.starts_with("dry run:"), "{text}");
    assert!(text.contains("Plan ("), "{text}");
    assert_eq!(lab.snapshot(), before, "the dry run changed the nodes");
}

#[test]
fn dry_on_and_off_keep_the_migration_options() {
    let lab = lab(2);
    lab.cluster(2);
    let before = lab.snapshot();
    let toggled = format!(
        ".dry on\n.dry off\n.dry on\nmigrate_slots(cluster, \"{}\", [0])\n.plan\n",
        lab.at(1)
    );
    // The default engine (auto) plans the key engine on Redis 7.0, and says so.
    let text = repl(&[&lab.at(0)], &toggled).ok().to_string();
    assert!(text.contains("engine keys"), "{text}");
    // --engine atomic, after the backend was rebuilt three times, is still the
    // engine: the move is refused as the real one would be (a dropped option would
    // plan the key engine).
    let out = repl(&["--engine", "atomic", &lab.at(0)], &toggled);
    out.fails_with("has no CLUSTER MIGRATESLOTS");
    assert!(!out.stdout.contains("engine keys"), "{}", out.stdout);
    // The same from a shell that starts dry.
    let out = repl(&["--dry-run", "--engine", "atomic", &lab.at(0)], &toggled);
    out.fails_with("has no CLUSTER MIGRATESLOTS");
    assert_eq!(lab.snapshot(), before, "the dry runs changed the nodes");
}

#[test]
fn ctrl_c_stops_a_running_statement() {
    let mut child = bin()
        .arg("repl")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"print(\"started\");\nloop { sleep(50); }\nprint(\"never\");\n")
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first[..7], b"started");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("<stdin>:2:"), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

/// What the line editor writes once it has turned the terminal raw for a new line
/// (bracketed paste on; rustyline does on every terminal but a dumb one).
const RAW_MODE_ON: &str = "\x1b[?2004h";

/// A child process on a pseudo-terminal, its output collected by a thread that also
/// answers the cursor-position queries a line editor sends.
struct Pty {
    child: Child,
    input: File,
    output: Arc<Mutex<Vec<u8>>>,
    seen: usize,
}

impl Pty {
    fn spawn(mut cmd: Command) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: 250,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills in two new descriptors, owned by the Files below.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are open and ours alone.
        let (master, slave) = unsafe { (File::from_raw_fd(master), File::from_raw_fd(slave)) };
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a pty");
        drop(cmd); // closes our copies of the terminal side
        let output = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, mut answer) = (master.try_clone().unwrap(), master.try_clone().unwrap());
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut queries = 0;
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut all = sink.lock().unwrap();
                all.extend_from_slice(&buf[..n]);
                let asked = all.windows(4).filter(|w| w == b"\x1b[6n").count();
                drop(all);
                for _ in queries..asked {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                queries = asked;
            }
        });
        Pty {
            child,
            input: master,
            output,
            seen: 0,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Types `keys`.
    fn send(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits until `needle` shows after what was already waited for.
    fn wait_for(&mut self, needle: &str) {
        let start = Instant::now();
        loop {
            let text = self.text();
            if let Some(i) = text.get(self.seen..).and_then(|t| t.find(needle)) {
                self.seen += i + needle.len();
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {needle:?}; the terminal shows:\n{}",
                text.replace('\x1b', "<ESC>")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types a line and waits for the output `marker`, then for the next prompt.
    fn line(&mut self, keys: &str, marker: &str) {
        self.send(keys);
        self.wait_for(marker);
        self.prompt("redis-trib> ");
    }

    /// Waits for a new line's `prompt`: the editor turns the terminal raw and says
    /// so (it switches bracketed paste on, `ESC[?2004h`), then draws the prompt.
    /// Only then are typed keys its own: the prompt alone also shows in every redraw
    /// of the line being edited, and keys sent while the line ends are lost.
    fn prompt(&mut self, prompt: &str) {
        self.wait_for(RAW_MODE_ON);
        self.wait_for(prompt);
    }

    fn exit_code(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the shell did not exit:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shell(home: &Path, node: &str) -> Pty {
    let mut cmd = bin();
    cmd.env_remove("NO_COLOR")
        .env_remove("REDIS_TRIB_HISTORY")
        .env("HOME", home)
        .env("TERM", "xterm")
        .current_dir(home)
        .args(["repl", node]);
    let mut pty = Pty::spawn(cmd);
    pty.prompt("redis-trib> ");
    pty
}

#[test]
fn terminal_session_continues_completes_cancels_and_keeps_history() {
    let lab = lab(3);
    lab.cluster(3);
    let home = tempfile::tempdir().unwrap();
    let mut sh = shell(home.path(), &lab.at(0));

    // Values print; markers are computed so the echo of the typed line never matches.
    sh.line("let x = 2 * 2; \"ok-\" + x\r", "ok-4");
    // An open block continues on a `...>` line; the function persists.
    sh.send("fn times(a) {\r");
    sh.wait_for("...>");
    sh.send("a * 3\r");
    sh.wait_for("...>");
    sh.send("}\r");
    sh.prompt("redis-trib> ");
    sh.line("\"ok-\" + times(10)\r", "ok-30");
    // Tab completes a function name (the only one starting so) with its `(`.
    sh.send("\"ok-\" + list_ma\t");
    sh.wait_for("list_masters(");
    sh.line("cluster).len()\r", "ok-3");
    // The hint shows the parameters; Ctrl-C drops the line without running it.
    sh.send("join_no_load(");
    sh.wait_for("cluster: String, new: String | Array) -> ()");
    sh.send("\x03");
    sh.prompt("redis-trib> ");
    sh.send("1000 + 7");
    sh.wait_for("7");
    sh.send("\x03");
    sh.prompt("redis-trib> ");
    // Ctrl-C during a statement stops it; the session goes on.
    sh.send("print(\"sle\" + \"eping\"); sleep(3000000)\r");
    // Printed by the statement: the editor has given the terminal back its normal
    // mode, where Ctrl-C is a SIGINT for the shell.
    sh.wait_for("sleeping");
    sh.send("\x03");
    sh.wait_for("interrupted");
    sh.prompt("redis-trib> ");
    sh.line("\"ok-\" + times(x)\r", "ok-12");
    // The dry-run prompt.
    sh.send(".dry on\r");
    sh.prompt("redis-trib[dry]> ");
    sh.send(".dry off\r");
    sh.prompt("redis-trib> ");
    sh.line("\"ok-\" + (90 + 9)\r", "ok-99");
    // Ctrl-D leaves.
    sh.send("\x04");
    assert_eq!(sh.exit_code(), 0, "{}", sh.text());
    let all = sh.text();
    assert!(!all.contains("1007"), "a cancelled line ran:\n{all}");

    let history =
        std::fs::read_to_string(home.path().join(".redis_trib_history")).expect("the history file");
    assert!(history.contains("let x = 2 * 2"), "{history}");
    assert!(history.contains("fn times(a) {"), "{history}");
    assert!(history.contains("(90 + 9)"), "{history}");
    assert!(!history.contains("1000 + 7"), "{history}");

    // A new session recalls the last line with the Up arrow.
    let mut sh = shell(home.path(), &lab.at(0));
    sh.send("\x1b[A");
    sh.wait_for("(90 + 9)");
    sh.line("\r", "ok-99");
    sh.send("\x04");
    assert_eq!(sh.exit_code(), 0, "{}", sh.text());
}

/// A snapshot of two masters: A (10.0.0.1:7000) holds the even slots and B the odd
/// ones (8192 ranges each), 100 keys each.
fn striped_snapshot(dir: &Path) -> std::path::PathBuf {
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    let slots = |odd: u16| -> Vec<String> {
        (0..16384u16)
            .filter(|s| s % 2 == odd)
            .map(|s| s.to_string())
            .collect()
    };
    let node = |id: &str, port: u16, odd: u16| {
        serde_json::json!({
            "node_id": id, "host": "10.0.0.1", "port": port, "cport": port + 10000,
            "hostname": null, "flags": ["master"], "role_in_cluster": "master",
            "master_id": null, "ping_sent": 0, "pong_recv": 0, "config_epoch": port - 6999,
            "connected": true, "assigned_slots": slots(odd), "slots_migrating": [],
            "slots_importing": [], "used_memory": 2_000_000, "maxmemory": 0, "keys": 100
        })
    };
    let doc = serde_json::json!({
        "entry_id": a,
        "nodes": [node(&a, 7000, 0), node(&b, 7001, 1)],
        "keys": { a.clone(): 100, b.clone(): 100 },
        "states": {}, "unreachable": {}
    });
    let path = dir.join("striped.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

#[test]
fn offline_shell_loads_files_suggests_names_and_summarises_slots() {
    let dir = tempfile::tempdir().unwrap();
    let snap = striped_snapshot(dir.path());
    std::fs::write(
        dir.path().join("helpers.rhai"),
        "fn masters_of(c) { list_masters(c) }\nlet loaded = 42;\n",
    )
    .unwrap();
    let topo = snap.to_str().unwrap();
    // .load keeps the file's functions and variables; `>` says there are no nodes.
    let out = repl_in(
        dir.path(),
        &["--topology", topo],
        ".load helpers.rhai\nloaded\nmasters_of(\"10.0.0.1:7000\").len()\n> DBSIZE\n",
    );
    out.fails_with("an offline shell (--topology) has no nodes to send DBSIZE to");
    assert!(!out.stderr.contains("127.0.0.1"), "{}", out.stderr);
    assert_eq!(lines(&out.stdout), vec!["42", "2"]);
    // Unknown functions and node fields: did you mean.
    repl_in(
        dir.path(),
        &["--topology", topo],
        "lst_masters(\"10.0.0.1:7000\")\n",
    )
    .fails_with("(did you mean list_masters?)");
    repl_in(
        dir.path(),
        &["--topology", topo],
        "node(\"10.0.0.1:7000\").slot_cont\n",
    )
    .fails_with("(did you mean slot_count?)");
    // Plans summarise long slot lists unless all are asked for.
    let out = repl_in(
        dir.path(),
        &["--topology", topo],
        "migrate_slots(\"10.0.0.1:7000\", \"10.0.0.1:7001\", parse_slots(\"0-99\").filter(|s| s % 2 == 0))\n.plan\n.plan all\n",
    );
    let text = out.ok();
    assert!(text.contains("(50 slots in 50 ranges)"), "{text}");
    assert!(text.contains("0,2,4,6,8,10,12,14,16,18,20"), "{text}");
}

#[test]
fn list_summarises_long_slot_lists_unless_all_slots() {
    let lab = lab(2);
    lab.cluster(2);
    // Every other slot of node 0's first 40 goes to node 1: node 0 holds 21 ranges.
    let odd: Vec<String> = (0..40)
        .filter(|s| s % 2 == 1)
        .map(|s: u16| s.to_string())
        .collect();
    let mut args = vec!["migrate_slots".to_string(), lab.at(0), lab.at(1)];
    args.extend(odd);
    lab.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let short = lab.run(&["list", &lab.at(0)]).ok().to_string();
    assert!(short.contains("(8172 slots in 21 ranges)"), "{short}");
    let all = lab
        .run(&["list", &lab.at(0), "--all-slots"])
        .ok()
        .to_string();
    assert!(all.contains("36,38,40-8191"), "{all}");
}
