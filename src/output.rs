//! Where the binary's output goes: data on stdout; steps, warnings and progress on
//! stderr (a progress bar on a terminal, throttled lines otherwise, nothing with
//! `--quiet`).

use crate::cli::settings::Settings;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use redis_trib::backend::live::EventSink;
use redis_trib::backend::Event;
use redis_trib::render::{event_line, Painter};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Output settings of one run.
#[derive(Clone, Copy)]
pub struct Output {
    painter: Painter,
    err_painter: Painter,
    quiet: bool,
    bar: bool,
}

impl Output {
    /// From the settings (`--no-color`, `--quiet`) and the terminals we write to.
    pub fn new(s: &Settings) -> Output {
        let stderr_tty = std::io::stderr().is_terminal();
        Output {
            painter: Painter::new(!s.no_color, std::io::stdout().is_terminal()),
            err_painter: Painter::new(!s.no_color, stderr_tty),
            quiet: s.quiet,
            bar: stderr_tty && !s.quiet,
        }
    }

    /// The painter for stdout.
    pub fn painter(&self) -> Painter {
        self.painter
    }

    /// Prints data (stdout); see [`print_data`].
    pub fn data(&self, text: &str) {
        print_data(text);
    }

    /// Reports success (stderr, so stdout stays data).
    pub fn done(&self, text: &str) {
        if !self.quiet {
            print_err(&format!("{} {text}", self.err_painter.good("OK")));
        }
    }

    /// A remark on stderr (script `log` lines), unless `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            print_err(text);
        }
    }

    /// Prints an error (stderr).
    pub fn error(painter_off: bool, text: &str) {
        let p = Painter::new(!painter_off, std::io::stderr().is_terminal());
        print_err(&format!("{} {text}", p.bad("error:")));
    }

    /// An event sink for the backend: one progress bar per move on a terminal
    /// (moves may run in parallel), throttled lines otherwise.
    pub fn sink(&self) -> EventSink {
        let out = *self;
        let multi = MultiProgress::new();
        let mut bars: HashMap<(String, String), ProgressBar> = HashMap::new();
        let mut last_line: HashMap<(String, String), Instant> = HashMap::new();
        Box::new(move |event: Event| {
            if out.quiet {
                return;
            }
            // Progress of one job: (which job, done, total, unit, label, finished).
            let progress = match &event {
                Event::Progress(p) => Some((
                    (p.src.clone(), p.dst.clone()),
                    p.slots_done as u64,
                    p.slots_total as u64,
                    "slots",
                    format!("{} -> {}, {} keys", p.src, p.dst, p.keys_moved),
                    p.slots_done == p.slots_total,
                )),
                Event::Keys(k) => Some((
                    (k.label.clone(), String::new()),
                    k.done,
                    k.total,
                    "keys",
                    k.label.clone(),
                    k.finished,
                )),
                _ => None,
            };
            match progress {
                Some((key, done, total, unit, msg, finished)) if out.bar => {
                    let b = bars
                        .entry(key.clone())
                        .or_insert_with(|| multi.add(new_bar(total, unit)));
                    b.set_length(total);
                    b.set_position(done);
                    b.set_message(msg);
                    if finished {
                        b.finish_and_clear();
                        bars.remove(&key);
                    }
                }
                Some((key, done, _, _, _, finished)) => {
                    let due = last_line
                        .get(&key)
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                    if finished || (done > 0 && due) {
                        print_err(&event_line(&event, out.err_painter));
                        last_line.insert(key, Instant::now());
                    }
                }
                None => {
                    let line = event_line(&event, out.err_painter);
                    if bars.is_empty() {
                        print_err(&line);
                    } else {
                        let _ = multi.println(line);
                    }
                }
            }
        })
    }
}

/// Prints one line of data on stdout. When the reader has gone (`| head -1` closed the
/// pipe) the run ends there, quietly and successfully, as `grep` or `rg` do: nothing
/// printed after would be read. Any other failure to write ends it with one error
/// line on stderr and exit code 1. (Data is printed between operations, never in the
/// middle of a slot move.)
pub fn print_data(text: &str) {
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{text}").and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            print_err(&format!("error: cannot write to stdout: {e}"));
            std::process::exit(1);
        }
    }
}

/// Prints one line on stderr; a stderr that cannot be written to is ignored (there
/// is nowhere left to say so).
fn print_err(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn new_bar(len: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("    [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}  {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
