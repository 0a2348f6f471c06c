//! The global options resolved into what the run needs: connection options, and the
//! live backend built from every connection, migration and lease option.

use super::args::Global;
use crate::output::Output;
use anyhow::{Context, Result};
use redis_trib::backend::live::Live;
use redis_trib::conn::{ConnOpts, TlsOpts};
use redis_trib::migrate::MigrateOpts;
use std::time::Duration;

impl Global {
    /// A live backend with every connection, migration and lease option of the flags
    /// (`replace`: MIGRATE ... REPLACE).
    pub fn live(&self, replace: bool, out: &Output) -> Result<Live> {
        let migrate = MigrateOpts {
            replace,
            parallel: self.parallel.max(1),
            batch_slots: self.batch_slots.max(1),
            keys_per_migrate: self.keys_per_migrate.max(1),
            slots_in_flight: self.slots_in_flight.max(1),
            engine: self.engine,
            ..MigrateOpts::default()
        };
        let wait = Duration::try_from_secs_f64(self.wait_lease)
            .map_err(|_| anyhow::anyhow!("--wait-lease must be a number of seconds, 0 or more"))?;
        Ok(Live::new(self.conn_opts()?, migrate, out.sink()).with_lease_wait(wait))
    }

    /// Connection options from the flags.
    pub fn conn_opts(&self) -> Result<ConnOpts> {
        // Bounded so that deadlines (now + timeout) stay representable.
        const MAX_TIMEOUT_SECS: f64 = 1e9;
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero() && t.as_secs_f64() <= MAX_TIMEOUT_SECS)
            .with_context(|| {
                format!(
                    "--timeout must be a positive number of seconds, at most {MAX_TIMEOUT_SECS:e} (got {:?})",
                    self.timeout
                )
            })?;
        let tls = if self.tls {
            Some(TlsOpts::from_files(
                self.cacert.as_deref(),
                self.cert.as_deref(),
                self.key.as_deref(),
            )?)
        } else {
            None
        };
        Ok(ConnOpts {
            password: self.password.clone().filter(|p| !p.is_empty()),
            user: self.user.clone(),
            timeout,
            tls,
        })
    }
}
