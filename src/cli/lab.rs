//! `redis-trib lab up|down|status`: local redis-server nodes for trying things out.

use super::args::LabCommand;
use crate::output::Output;
use anyhow::{Context, Result};
use redis_trib::lab::{Lab, LabOpts};

/// `lab` commands; `tls` (the global `--tls`) makes `lab up` start TLS-only nodes.
pub fn lab(cmd: LabCommand, tls: bool, out: &Output) -> Result<()> {
    match cmd {
        LabCommand::Up {
            count,
            base_port,
            node_timeout,
            dir,
        } => {
            if let Ok(old) = Lab::load(&dir.dir) {
                if old.nodes.iter().any(Lab::is_running) {
                    anyhow::bail!(
                        "a lab is already running in {} (ports {}); `redis-trib lab down` first",
                        dir.dir.display(),
                        old.nodes
                            .iter()
                            .map(|n| n.port.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            let opts = LabOpts {
                base_port: Some(base_port),
                node_timeout_ms: node_timeout,
                owned: false,
                tls,
                ..LabOpts::default()
            };
            let lab = Lab::start(&dir.dir, count, opts)?;
            lab.save()?;
            for n in &lab.nodes {
                out.data(&n.addr().to_string());
            }
            out.done(&format!(
                "{count} free nodes running; state in {}",
                dir.dir.display()
            ));
            if let Some(certs) = &lab.tls {
                out.note(&format!(
                    "TLS only: reach them with {}",
                    certs.client_flags().join(" ")
                ));
            }
        }
        LabCommand::Down { dir } => {
            let mut lab = Lab::load(&dir.dir)?;
            let n = lab.nodes.len();
            lab.stop()?;
            std::fs::remove_dir_all(&dir.dir)
                .with_context(|| format!("cannot remove {}", dir.dir.display()))?;
            out.done(&format!(
                "stopped {n} nodes and removed {}",
                dir.dir.display()
            ));
        }
        LabCommand::Status { dir } => {
            let lab = Lab::load(&dir.dir)?;
            if let Some(certs) = &lab.tls {
                out.note(&format!("TLS only: {}", certs.client_flags().join(" ")));
            }
            for n in &lab.nodes {
                let state = if Lab::is_running(n) {
                    "running"
                } else {
                    "stopped"
                };
                out.data(&format!("{}  pid {}  {state}", n.addr(), n.pid));
            }
        }
    }
    Ok(())
}
