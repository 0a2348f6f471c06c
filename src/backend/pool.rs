//! A pool of open connections, one per node address, reopened after an I/O error.

use crate::addr::Addr;
use crate::conn::{ConnOpts, NodeConn};
use anyhow::Result;
use std::collections::HashMap;

/// Open connections by address.
pub struct Pool {
    opts: ConnOpts,
    conns: HashMap<Addr, NodeConn>,
}

impl Pool {
    /// An empty pool that will connect with `opts`.
    pub fn new(opts: ConnOpts) -> Pool {
        Pool {
            opts,
            conns: HashMap::new(),
        }
    }

    /// Connection options in use.
    pub fn opts(&self) -> &ConnOpts {
        &self.opts
    }

    /// The connection to `addr`, opened on first use.
    pub fn get(&mut self, addr: &Addr) -> Result<&mut NodeConn> {
        if !self.conns.contains_key(addr) {
            let conn = NodeConn::open(addr, &self.opts)?;
            self.conns.insert(addr.clone(), conn);
        }
        Ok(self.conns.get_mut(addr).expect("inserted above"))
    }

    /// Runs `f` on the connection to `addr`; on failure the connection is dropped so
    /// the next use reconnects (a timed-out reply would otherwise arrive late).
    pub fn with<T>(
        &mut self,
        addr: &Addr,
        f: impl FnOnce(&mut NodeConn) -> Result<T>,
    ) -> Result<T> {
        let result = f(self.get(addr)?);
        if result.is_err() {
            self.conns.remove(addr);
        }
        result
    }

    /// Opens (or reuses) connections to several nodes and hands them out together,
    /// so work on distinct nodes can run on scoped threads.
    pub fn many(&mut self, addrs: &[Addr]) -> Result<Vec<&mut NodeConn>> {
        for a in addrs {
            self.get(a)?;
        }
        let mut out: Vec<&mut NodeConn> = self
            .conns
            .iter_mut()
            .filter(|(a, _)| addrs.contains(a))
            .map(|(_, c)| c)
            .collect();
        out.sort_by_key(|c| addrs.iter().position(|a| a == c.addr()));
        Ok(out)
    }

    /// Drops the connection to `addr` (after a reset, say).
    pub fn forget(&mut self, addr: &Addr) {
        self.conns.remove(addr);
    }
}
