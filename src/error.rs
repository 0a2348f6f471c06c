//! The error kinds code decides on. Library functions return `anyhow::Error`s whose
//! message is for people; where a caller must act on *what* went wrong (stop other
//! moves, retry, pick an exit code), the error carries one of these kinds, attached
//! with `anyhow::Error::new(kind)` (or `.context(kind)`) and found again with
//! [`kind_of`]. Never decide on an error's text.

use std::fmt;

/// A failure code decides on. Its `Display` is the one-line message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The operator asked to stop (Ctrl-C); `what` says what was done and what is left.
    Interrupted(String),
    /// A move stopped because another move of the same operation failed.
    MoveStopped(String),
    /// The cluster is not healthy enough for the operation (`check` exit code 3).
    Unhealthy(String),
    /// A key exists on both sides of a migration (`BUSYKEY`).
    BusyKey {
        /// The slot being moved.
        slot: u16,
        /// The key (lossy UTF-8).
        key: String,
        /// The node that already holds it.
        node: String,
        /// The full message.
        message: String,
    },
    /// The node is not cluster-enabled.
    NotClusterEnabled(String),
    /// Authentication failed on a node.
    Auth(String),
    /// A node stopped answering within `--timeout`.
    TimedOut {
        /// The node that stopped answering.
        node: String,
        /// The full message.
        message: String,
    },
    /// Another operation holds the cluster's lease.
    LeaseHeld {
        /// Who holds it (operation, host, pid, since when).
        holder: String,
        /// The full message.
        message: String,
    },
    /// The operation's lease on the cluster was lost while it ran.
    LeaseLost(String),
    /// Something else (another tool, a person) changed what the operation was about to
    /// change; the operation stopped cleanly.
    Conflict(String),
    /// A node answered a command with an error (or the command failed on the way):
    /// `reply` says what, without the node, which `node` names.
    Server {
        /// The node (`host:port`).
        node: String,
        /// `CMD failed: <the error>`.
        reply: String,
        /// The full message (node first).
        message: String,
    },
    /// A script asked to exit with this code (`exit(n)`); no message is printed.
    ScriptExit(i32),
    /// A script gave up with `fail(msg)`: one line, exit code 1.
    ScriptFailed(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Interrupted(m)
            | Kind::MoveStopped(m)
            | Kind::Unhealthy(m)
            | Kind::NotClusterEnabled(m)
            | Kind::Auth(m)
            | Kind::LeaseLost(m)
            | Kind::Conflict(m)
            | Kind::ScriptFailed(m) => f.write_str(m),
            Kind::ScriptExit(code) => write!(f, "the script exited with code {code}"),
            Kind::BusyKey { message, .. }
            | Kind::TimedOut { message, .. }
            | Kind::LeaseHeld { message, .. }
            | Kind::Server { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Kind {}

impl Kind {
    /// The same kind with another message (for a kind that carries one).
    pub fn with_message(self, text: String) -> Kind {
        match self {
            Kind::Interrupted(_) => Kind::Interrupted(text),
            Kind::MoveStopped(_) => Kind::MoveStopped(text),
            Kind::Unhealthy(_) => Kind::Unhealthy(text),
            Kind::NotClusterEnabled(_) => Kind::NotClusterEnabled(text),
            Kind::Auth(_) => Kind::Auth(text),
            Kind::LeaseLost(_) => Kind::LeaseLost(text),
            Kind::Conflict(_) => Kind::Conflict(text),
            Kind::ScriptFailed(_) => Kind::ScriptFailed(text),
            Kind::ScriptExit(code) => Kind::ScriptExit(code),
            Kind::BusyKey {
                slot, key, node, ..
            } => Kind::BusyKey {
                slot,
                key,
                node,
                message: text,
            },
            Kind::TimedOut { node, .. } => Kind::TimedOut {
                node,
                message: text,
            },
            Kind::LeaseHeld { holder, .. } => Kind::LeaseHeld {
                holder,
                message: text,
            },
            Kind::Server { node, reply, .. } => Kind::Server {
                node,
                reply,
                message: text,
            },
        }
    }
}

/// `e`'s whole message followed by `detail`, keeping the kind `e` carries.
pub fn with_detail(e: anyhow::Error, detail: &str) -> anyhow::Error {
    let text = format!("{e:#}{detail}");
    match kind_of(&e).cloned() {
        Some(k) => error(k.with_message(text)),
        None => anyhow::anyhow!(text),
    }
}

/// The kind an error carries, if any (looked for through its whole chain).
pub fn kind_of(e: &anyhow::Error) -> Option<&Kind> {
    e.chain().find_map(|c| c.downcast_ref::<Kind>())
}

/// An `anyhow::Error` carrying `kind`.
pub fn error(kind: Kind) -> anyhow::Error {
    anyhow::Error::new(kind)
}

/// Process exit codes, decided in one place.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// An operation or script failed.
    pub const FAILED: i32 = 1;
    /// Bad usage (arguments).
    pub const USAGE: i32 = 2;
    /// `check` found the cluster unhealthy (it was reachable and answered).
    pub const UNHEALTHY: i32 = 3;
    /// Another operation holds the cluster's lease.
    pub const BUSY: i32 = 4;
    /// Stopped by Ctrl-C.
    pub const INTERRUPTED: i32 = 130;
}

/// The exit code for an error.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    match kind_of(e) {
        Some(Kind::Unhealthy(_)) => exit::UNHEALTHY,
        Some(Kind::LeaseHeld { .. }) => exit::BUSY,
        Some(Kind::Interrupted(_)) => exit::INTERRUPTED,
        Some(Kind::ScriptExit(code)) => *code,
        _ => exit::FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn a_kind_is_found_through_context_and_picks_the_exit_code() {
        let e = error(Kind::LeaseHeld {
            holder: "join by ops@host pid 7".into(),
            message: "busy".into(),
        });
        let wrapped = Err::<(), _>(e).context("cannot join").unwrap_err();
        assert!(matches!(kind_of(&wrapped), Some(Kind::LeaseHeld { .. })));
        assert_eq!(exit_code(&wrapped), exit::BUSY);
        assert_eq!(exit_code(&anyhow::anyhow!("plain")), exit::FAILED);
        let timed = error(Kind::TimedOut {
            node: "127.0.0.1:7003".into(),
            message: "127.0.0.1:7003 timed out".into(),
        });
        assert_eq!(timed.to_string(), "127.0.0.1:7003 timed out");
    }
}
