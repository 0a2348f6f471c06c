//! A pool of open connections, one per node address, reopened after an I/O error.

use crate::addr::Addr;
use crate::conn::{ConnOpts, NodeConn};
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

    /// Runs `f` on the connection to each of `addrs` (opened as needed) on at most
    /// `threads` scoped threads, and returns one result per address, in order. A
    /// failure stays with its node (and drops its connection, as [`Pool::with`]); a
    /// worker that panics becomes an error naming the node.
    pub fn each<T: Send>(
        &mut self,
        addrs: &[Addr],
        threads: usize,
        f: impl Fn(&mut NodeConn) -> Result<T> + Sync,
    ) -> Vec<Result<T>> {
        if addrs.len() <= 1 || threads <= 1 {
            return addrs.iter().map(|a| self.with(a, &f)).collect();
        }
        // Each address's connection (if open) and, once done, its result.
        type Slot<T> = Mutex<(Option<NodeConn>, Option<Result<T>>)>;
        let slots: Vec<Slot<T>> = addrs
            .iter()
            .map(|a| Mutex::new((self.conns.remove(a), None)))
            .collect();
        let next = AtomicUsize::new(0);
        let opts = &self.opts;
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let (Some(addr), Some(slot)) = (addrs.get(i), slots.get(i)) else {
                return;
            };
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            let conn = match slot.0.take() {
                Some(c) => Ok(c),
                None => NodeConn::open(addr, opts),
            };
            let (conn, result) = match conn {
                Ok(mut c) => {
                    let r = f(&mut c);
                    (r.is_ok().then_some(c), r)
                }
                Err(e) => (None, Err(e)),
            };
            *slot = (conn, Some(result));
        };
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads.min(addrs.len()))
                .map(|_| s.spawn(work))
                .collect();
            for w in workers {
                // A panic leaves its node without a result, reported below.
                let _ = w.join();
            }
        });
        addrs
            .iter()
            .zip(slots)
            .map(|(addr, slot)| {
                let (conn, result) = slot.into_inner().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = conn {
                    self.conns.insert(addr.clone(), c);
                }
                result.unwrap_or_else(|| {
                    Err(anyhow!("{addr}: reading the node failed (worker panicked)"))
                })
            })
            .collect()
    }

    /// Drops the connection to `addr` (after a reset, say).
    pub fn forget(&mut self, addr: &Addr) {
        self.conns.remove(addr);
    }
}
