//! Node addresses: parsing `HOST:PORT` (IPv6 in brackets), formatting them back,
//! and resolving a host name to the IP address `CLUSTER MEET` needs.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::str::FromStr;

/// A Redis node's address as the user or the cluster spells it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Addr {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// TCP port of the Redis client interface.
    pub port: u16,
}

impl Addr {
    /// Builds an address from its parts.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Addr {
            host: host.into(),
            port,
        }
    }

    /// Parses `HOST:PORT`, `[IPV6]:PORT` or a bare `IPV6` with a trailing `:PORT`.
    pub fn parse(text: &str) -> Result<Addr> {
        let text = text.trim();
        let bad = || format!("invalid address '{text}': expected HOST:PORT, e.g. 127.0.0.1:7000");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').with_context(bad)?;
            let port = after.strip_prefix(':').with_context(bad)?;
            (host, port)
        } else {
            text.rsplit_once(':').with_context(bad)?
        };
        if host.is_empty() {
            bail!("{}: the host is empty", bad());
        }
        if host.contains(':') && !text.starts_with('[') {
            // An unbracketed IPv6 address: the last colon separates the port.
            host.parse::<std::net::Ipv6Addr>().with_context(|| {
                format!("{}: IPv6 addresses go in brackets, e.g. [::1]:7000", bad())
            })?;
        }
        let port: u32 = port
            .parse()
            .with_context(|| format!("{}: port '{port}' is not a number", bad()))?;
        if port == 0 || port > 65535 {
            bail!("{}: port {port} is out of range 1..65535", bad());
        }
        Ok(Addr::new(host, port as u16))
    }

    /// The IP address of this host: the host itself when it is one, else the first
    /// IPv4 address it resolves to (then any address). `CLUSTER MEET` accepts IPs only.
    pub fn resolve_ip(&self) -> Result<IpAddr> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(ip);
        }
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve host '{}'", self.host))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .map(|a| a.ip())
            .with_context(|| format!("host '{}' resolves to no address", self.host))
    }

    /// The cluster bus port Redis uses by default (port + 10000).
    pub fn default_bus_port(&self) -> Option<u16> {
        self.port.checked_add(10000)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Addr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Addr::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_port() {
        assert_eq!(
            Addr::parse("127.0.0.1:7000").unwrap(),
            Addr::new("127.0.0.1", 7000)
        );
        assert_eq!(
            Addr::parse(" localhost:1 ").unwrap(),
            Addr::new("localhost", 1)
        );
    }

    #[test]
    fn parses_ipv6() {
        assert_eq!(Addr::parse("[::1]:7000").unwrap(), Addr::new("::1", 7000));
        assert_eq!(Addr::parse("::1:7000").unwrap(), Addr::new("::1", 7000));
        assert_eq!(Addr::new("::1", 7000).to_string(), "[::1]:7000");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "7000",
            "host",
            ":7000",
            "host:",
            "host:0",
            "host:65536",
            "host:x",
            "[::1]7000",
            "[::1",
        ] {
            let err = Addr::parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid address"), "{bad}: {err}");
        }
    }

    #[test]
    fn resolves_localhost_to_ipv4() {
        assert_eq!(
            Addr::new("localhost", 7000)
                .resolve_ip()
                .unwrap()
                .to_string(),
            "127.0.0.1"
        );
    }
}
