//! The password settled while the command line is resolved: `--askpass` reads it
//! without echo, and a password given on the command line is warned about.

use anyhow::{Context, Result};

/// The password settled: asked for on the terminal with `--askpass`; a password
/// given on the command line (visible in `ps`) is warned about once, as redis-cli
/// does.
pub fn settle(password: Option<String>, askpass: bool) -> Result<Option<String>> {
    if askpass {
        return Ok(Some(ask_password("Please input password: ")?));
    }
    if (password.is_some() && on_command_line("--password")) || on_command_line("--from-password") {
        eprintln!("{PASSWORD_WARNING}");
    }
    Ok(password)
}

/// What redis-cli says when a password is given on its command line.
pub const PASSWORD_WARNING: &str =
    "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.";

/// Whether `flag` was given on the command line (`--flag VALUE` or `--flag=VALUE`,
/// before any `--`).
fn on_command_line(flag: &str) -> bool {
    std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// Reads a password: from the terminal without echo when stdin is one, else the first
/// line of stdin.
fn ask_password(prompt: &str) -> Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let _echo = NoEcho::on(0);
        stdin.lock().read_line(&mut line)?;
        eprintln!();
    } else {
        stdin
            .lock()
            .read_line(&mut line)
            .context("--askpass: cannot read the password from stdin")?;
    }
    let pass = line.trim_end_matches(['\r', '\n']).to_string();
    if pass.is_empty() {
        anyhow::bail!("--askpass: no password was given");
    }
    Ok(pass)
}

/// Terminal echo off while it lives (restored on drop).
struct NoEcho {
    fd: i32,
    saved: Option<libc::termios>,
}

impl NoEcho {
    fn on(fd: i32) -> NoEcho {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is an open descriptor and `t` a valid termios.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return NoEcho { fd, saved: None };
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
        NoEcho {
            fd,
            saved: Some(saved),
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restores the settings read in `on`.
            unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, t) };
        }
    }
}
