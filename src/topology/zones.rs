//! Zones (availability zones, racks) as data: the `--zones` file operators give
//! ([`ZoneFile`]) and what is known of each node's zone ([`ZoneBook`]: the file,
//! then what servers said). Each backend carries its own book, so nothing about
//! zones is process-wide; reading zones from servers is `crate::ops::zones`'.

use crate::addr::Addr;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A `--zones` file: node → zone. Two formats, told apart by the first character:
///
/// * lines `HOST:PORT ZONE` or `HOST ZONE` (a host alone names every port on it: a
///   rack of nodes at once), `#` starts a comment, blank lines are skipped;
/// * a JSON object `{"HOST:PORT": "ZONE", "HOST": "ZONE"}`.
///
/// `HOST:PORT` wins over `HOST`. Hosts match as written, or by the address they
/// resolve to (`localhost` names `127.0.0.1`).
#[derive(Clone, Debug, Default)]
pub struct ZoneFile {
    /// Where it was read from (named in errors).
    pub path: PathBuf,
    by_addr: BTreeMap<(String, u16), String>,
    by_host: BTreeMap<String, String>,
    /// Resolved address of each host key, for matching a node announced by IP.
    resolved: Vec<(IpAddr, Option<u16>, String)>,
}

impl ZoneFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ZoneFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--zones {}: cannot read it", path.display()))?;
        ZoneFile::parse(path, &text)
    }

    /// Parses `text` (the content of `path`, named in errors with the line).
    pub fn parse(path: &Path, text: &str) -> Result<ZoneFile> {
        let shown = path.display();
        let mut entries: Vec<(usize, String, String)> = Vec::new();
        if text.trim_start().starts_with('{') {
            let map: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(text).map_err(|e| {
                    anyhow::anyhow!(
                        "{shown}:{}: not a JSON object of \"host:port\": \"zone\" ({e})",
                        e.line()
                    )
                })?;
            for (k, v) in map {
                let line = text
                    .lines()
                    .position(|l| l.contains(&format!("\"{k}\"")))
                    .map_or(1, |i| i + 1);
                match v {
                    serde_json::Value::String(z) => entries.push((line, k, z)),
                    other => {
                        bail!("{shown}:{line}: the zone of {k:?} must be a string, not {other}")
                    }
                }
            }
        } else {
            for (i, raw) in text.lines().enumerate() {
                let line = raw.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() != 2 {
                    bail!(
                        "{shown}:{}: expected `HOST:PORT ZONE` or `HOST ZONE`, got {line:?}",
                        i + 1
                    );
                }
                entries.push((i + 1, words[0].to_string(), words[1].to_string()));
            }
        }
        let mut f = ZoneFile {
            path: path.to_path_buf(),
            ..ZoneFile::default()
        };
        for (line, key, zone) in entries {
            if zone.is_empty() || zone.chars().any(char::is_whitespace) {
                bail!("{shown}:{line}: zone {zone:?} of {key} must be one word");
            }
            let (host, port) =
                split_key(&key).with_context(|| format!("{shown}:{line}: bad node {key:?}"))?;
            let earlier = match port {
                Some(p) => f.by_addr.insert((host.clone(), p), zone.clone()),
                None => f.by_host.insert(host.clone(), zone.clone()),
            };
            if let Some(z) = earlier.filter(|z| *z != zone) {
                bail!("{shown}:{line}: {key} is given zone {zone} here and {z} earlier");
            }
            if let Ok(ip) = Addr::new(host.clone(), port.unwrap_or(0)).resolve_ip() {
                f.resolved.push((ip, port, zone));
            }
        }
        Ok(f)
    }

    /// The zone the file gives `addr`: by `HOST:PORT`, then by `HOST`, then by the
    /// address either resolves to.
    pub fn lookup(&self, addr: &Addr) -> Option<&str> {
        if let Some(z) = self.by_addr.get(&(addr.host.clone(), addr.port)) {
            return Some(z);
        }
        if let Some(z) = self.by_host.get(&addr.host) {
            return Some(z);
        }
        if self.resolved.is_empty() {
            return None;
        }
        let ip = addr.resolve_ip().ok()?;
        let find = |port: Option<u16>| {
            self.resolved
                .iter()
                .find(|(i, p, _)| *i == ip && *p == port)
                .map(|(_, _, z)| z.as_str())
        };
        find(Some(addr.port)).or_else(|| find(None))
    }

    /// How many nodes and hosts it names.
    pub fn len(&self) -> usize {
        self.by_addr.len() + self.by_host.len()
    }

    /// True when it names nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `host:port`, `[v6]:port`, or a host alone.
fn split_key(key: &str) -> Result<(String, Option<u16>)> {
    if let Some(rest) = key.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').context("unclosed [")?;
        return match tail.strip_prefix(':') {
            Some(p) => Ok((host.to_string(), Some(p.parse().context("bad port")?))),
            None if tail.is_empty() => Ok((host.to_string(), None)),
            None => bail!("unexpected {tail:?} after ]"),
        };
    }
    match key.rsplit_once(':') {
        // More than one colon and no brackets: an IPv6 address alone.
        Some((h, _)) if h.contains(':') => Ok((key.to_string(), None)),
        Some((h, p)) if !h.is_empty() => Ok((h.to_string(), Some(p.parse().context("bad port")?))),
        Some(_) => bail!("no host"),
        None => Ok((key.to_string(), None)),
    }
}

/// What is known of nodes' zones: the `--zones` file's, else what each server said
/// of its own `availability-zone` (remembered once it answered).
#[derive(Clone, Debug, Default)]
pub struct ZoneBook {
    file: Option<Arc<ZoneFile>>,
    /// `host:port` → the server's availability-zone (None: it has none).
    server: BTreeMap<String, Option<String>>,
}

impl ZoneBook {
    /// A book that starts from `file` (the `--zones` file, if one was given).
    pub fn with_file(file: Option<Arc<ZoneFile>>) -> ZoneBook {
        ZoneBook {
            file,
            server: BTreeMap::new(),
        }
    }

    /// The `--zones` file, if one was given.
    pub fn file(&self) -> Option<&Arc<ZoneFile>> {
        self.file.as_ref()
    }

    /// The zone of `addr` as far as known without asking it: the file's, else what
    /// its server said.
    pub fn known(&self, addr: &Addr) -> Option<String> {
        if let Some(z) = self.file.as_ref().and_then(|f| f.lookup(addr)) {
            return Some(z.to_string());
        }
        self.server.get(&addr.to_string()).cloned().flatten()
    }

    /// Whether asking `addr` would tell nothing new: the file names it, or its
    /// server already answered.
    pub fn settled(&self, addr: &Addr) -> bool {
        self.file.as_ref().and_then(|f| f.lookup(addr)).is_some()
            || self.server.contains_key(&addr.to_string())
    }

    /// Remembers what `addr`'s server said of its zone (None: it has none).
    pub fn remember(&mut self, addr: &Addr, zone: Option<String>) {
        self.server.insert(addr.to_string(), zone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ZoneFile> {
        ZoneFile::parse(Path::new("zones.txt"), text)
    }

    #[test]
    fn lines_by_addr_and_by_host() {
        let f = parse(
            "# rack map\n10.0.0.1:7000 a\n10.0.0.1 b  # the rest of that host\n\n[::1]:7001 c\n",
        )
        .unwrap();
        assert_eq!(f.lookup(&Addr::new("10.0.0.1", 7000)), Some("a"));
        assert_eq!(f.lookup(&Addr::new("10.0.0.1", 7001)), Some("b"));
        assert_eq!(f.lookup(&Addr::new("::1", 7001)), Some("c"));
        assert_eq!(f.lookup(&Addr::new("10.0.0.2", 7000)), None);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn json_object_and_resolved_hosts() {
        let f = ZoneFile::parse(
            Path::new("z.json"),
            "{\n  \"localhost:7000\": \"east\",\n  \"localhost\": \"west\"\n}",
        )
        .unwrap();
        assert_eq!(f.lookup(&Addr::new("127.0.0.1", 7000)), Some("east"));
        assert_eq!(f.lookup(&Addr::new("127.0.0.1", 7002)), Some("west"));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let e = parse("10.0.0.1:7000 a\n10.0.0.1:7001\n").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("zones.txt:2: expected"),
            "{e:#}"
        );
        let e = parse("10.0.0.1:x a\n").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("zones.txt:1: bad node"),
            "{e:#}"
        );
        let e = parse("h:1 a\nh:1 b\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("zones.txt:2: h:1 is given zone b here and a earlier"),
            "{e:#}"
        );
        let e = ZoneFile::parse(Path::new("z.json"), "{\"h:1\": 3}").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("z.json:1: the zone of \"h:1\" must be a string"),
            "{e:#}"
        );
        let e = ZoneFile::parse(Path::new("z.json"), "{\n\"h:1\": \"a\",,}").unwrap_err();
        assert!(
            format!("{e:#}").starts_with("z.json:2: not a JSON object"),
            "{e:#}"
        );
    }
}

#[cfg(test)]
mod book_tests {
    use super::*;

    #[test]
    fn the_file_wins_and_answers_are_remembered() {
        let file = ZoneFile::parse(Path::new("z"), "10.0.0.1:1 a\n").unwrap();
        let mut book = ZoneBook::with_file(Some(Arc::new(file)));
        let (one, two) = (Addr::new("10.0.0.1", 1), Addr::new("10.0.0.1", 2));
        assert_eq!(book.known(&one).as_deref(), Some("a"));
        assert!(book.settled(&one) && !book.settled(&two));
        book.remember(&one, Some("b".into()));
        book.remember(&two, None);
        assert_eq!(book.known(&one).as_deref(), Some("a"), "the file wins");
        assert!(book.settled(&two));
        assert_eq!(book.known(&two), None);
        assert_eq!(ZoneBook::default().known(&one), None);
    }
}
