//! Backups: each master's RDB fetched over the replication protocol (as
//! `redis-cli --rdb` does: `SYNC`, with `REPLCONF rdb-only 1` where the server knows
//! it, so nothing is left streaming), written to a file with its SHA-256, and a
//! manifest describing the cluster at the time.

use crate::addr::Addr;
use crate::conn::{ConnOpts, TlsOpts};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

/// The manifest's format tag.
pub const FORMAT: &str = "redis-trib-backup/1";
/// The manifest's file name inside a backup directory.
pub const MANIFEST: &str = "manifest.json";

/// What a backup directory holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the backup started (RFC 3339, UTC).
    pub created: String,
    /// The node the backup entered the cluster through.
    pub cluster: String,
    /// One entry per master: its RDB file.
    pub masters: Vec<MasterBackup>,
    /// Every node and the file holding its `CLUSTER NODES` view.
    pub nodes: Vec<NodeBackup>,
}

/// One master's RDB in a backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MasterBackup {
    /// Node id.
    pub id: String,
    /// Address.
    pub addr: String,
    /// The slots it served, as ranges.
    pub slots: String,
    /// How many slots.
    pub slot_count: usize,
    /// `DBSIZE` just before the RDB was taken.
    pub keys: u64,
    /// The RDB file, relative to the backup directory.
    pub rdb: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// The server and version that wrote it (`valkey 9.1.2`), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The RDB format version from the file's header (`REDIS0011`: 11). A server
    /// loads only the versions it knows: Redis 7.0 up to 10, Valkey 8.x and 9.x up
    /// to 11, Redis 8.2 up to 12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdb_version: Option<u32>,
    /// The header's magic word: `REDIS`, or `VALKEY` for a Valkey-only format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdb_magic: Option<String>,
}

/// The magic word and format version of an RDB file's 9-byte header: `REDIS0011`
/// gives (`REDIS`, 11), `VALKEY080` gives (`VALKEY`, 80). None when the header is
/// neither (or the bytes are too few).
pub fn rdb_header(head: &[u8]) -> Option<(String, u32)> {
    for magic in ["REDIS", "VALKEY"] {
        let Some(rest) = head.strip_prefix(magic.as_bytes()) else {
            continue;
        };
        let digits = rest.get(..9 - magic.len())?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let version = std::str::from_utf8(digits).ok()?.parse().ok()?;
        return Some((magic.to_string(), version));
    }
    None
}

/// [`rdb_header`] of the file at `path` (None when it cannot be read: a dry run
/// writes none).
pub fn rdb_file_header(path: &Path) -> Option<(String, u32)> {
    let mut head = [0u8; 9];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .ok()?;
    rdb_header(&head)
}

/// One node's configuration in a backup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeBackup {
    /// Node id.
    pub id: String,
    /// Address.
    pub addr: String,
    /// `master` or `replica`.
    pub role: String,
    /// The master it replicates (replicas).
    pub master_id: Option<String>,
    /// Its config epoch.
    pub config_epoch: u64,
    /// The file holding its `CLUSTER NODES` reply, relative to the backup directory.
    pub nodes_file: String,
}

/// A file written by a backup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Bytes written.
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes `content` to `path` (through a temporary file, synced, then renamed),
/// creating its directory if needed.
pub fn write_file(path: &Path, content: &[u8]) -> Result<Written> {
    atomic_write(path, |w| {
        w.write_all(content)?;
        Ok(())
    })
}

/// Fetches the RDB of the node at `addr` into `path`.
pub fn fetch_rdb(addr: &Addr, opts: &ConnOpts, path: &Path) -> Result<Written> {
    let ip = addr.resolve_ip()?;
    let tcp = TcpStream::connect_timeout(&SocketAddr::new(ip, addr.port), opts.timeout)
        .map_err(|e| anyhow!("cannot connect to {addr}: {e}"))?;
    tcp.set_read_timeout(Some(opts.timeout))?;
    tcp.set_write_timeout(Some(opts.timeout))?;
    let stream: Box<dyn Stream> = match &opts.tls {
        None => Box::new(tcp),
        Some(tls) => Box::new(tls_stream(addr, tls, tcp)?),
    };
    let mut conn = Sync {
        addr: addr.clone(),
        stream: BufReader::with_capacity(1 << 16, stream),
    };
    if let Some(pass) = &opts.password {
        let reply = match &opts.user {
            Some(user) => conn.call(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?,
            None => conn.call(&[b"AUTH", pass.as_bytes()])?,
        };
        if !reply.starts_with('+') {
            bail!("{addr}: authentication failed ({reply}); check --password / --user");
        }
    }
    // Redis 7+: send the RDB only, no command stream after it; then the RDB may come
    // straight from the fork (diskless, end marked by a 40-byte tag).
    let rdb_only = conn
        .call(&[b"REPLCONF", b"rdb-only", b"1"])?
        .starts_with('+');
    if rdb_only {
        conn.call(&[b"REPLCONF", b"capa", b"eof"])?;
    }
    conn.send(&[b"SYNC"])?;
    let header = loop {
        // The master sends bare newlines while it prepares the RDB.
        let line = conn.line()?;
        if !line.is_empty() {
            break line;
        }
    };
    let Some(size) = header.strip_prefix('$') else {
        bail!("{addr}: SYNC refused: {header}");
    };
    let written = atomic_write(path, |w| match size.strip_prefix("EOF:") {
        Some(mark) => conn.copy_until_mark(mark.as_bytes(), w),
        None => {
            let len: u64 = size
                .parse()
                .map_err(|_| anyhow!("{addr}: bad SYNC header {header:?}"))?;
            conn.copy_exact(len, w)
        }
    })
    .with_context(|| format!("{addr}: cannot fetch the RDB"))?;
    Ok(written)
}

/// Writes through `path.tmp`, hashing what is written; syncs and renames on success.
/// Backups hold every key: the file is readable by its owner only (0600), and the
/// directories created for it too (0700).
fn atomic_write(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<Written> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    // A leftover temporary file would keep its mode: start from a new one.
    let _ = std::fs::remove_file(&tmp);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Sha256::new(),
        bytes: 0,
    };
    let result = fill(&mut w).and_then(|_| {
        w.inner.flush()?;
        w.inner.get_ref().sync_all()?;
        Ok(())
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Written {
        bytes: w.bytes,
        sha256: hex(&w.hash.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A byte stream to a node: plain TCP or TLS.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// TLS over `tcp` with the same trust and client certificate as every other
/// connection (see [`TlsOpts`]).
fn tls_stream(
    addr: &Addr,
    tls: &TlsOpts,
    tcp: TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    crate::conn::install_tls_provider();
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.context("--cacert holds no readable PEM certificate")?)
                    .context("--cacert")?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match &tls.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<std::result::Result<Vec<_>, _>>()
                .context("--cert holds no readable PEM certificate")?;
            let key =
                PrivateKeyDer::from_pem_slice(key).context("--key holds no readable PEM key")?;
            builder
                .with_client_auth_cert(chain, key)
                .context("--cert/--key")?
        }
    };
    let name = ServerName::try_from(addr.host.clone())
        .map_err(|e| anyhow!("{addr}: not a name TLS can verify: {e}"))?;
    let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| anyhow!("{addr}: cannot set up TLS: {e}"))?;
    Ok(rustls::StreamOwned::new(session, tcp))
}

/// A raw replication-protocol connection.
struct Sync {
    addr: Addr,
    stream: BufReader<Box<dyn Stream>>,
}

impl Sync {
    fn send(&mut self, args: &[&[u8]]) -> Result<()> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        // Writes go around the read buffer (it buffers nothing to write).
        let stream = self.stream.get_mut();
        stream
            .write_all(&buf)
            .and_then(|_| stream.flush())
            .map_err(|e| anyhow!("{}: {e}", self.addr))
    }

    /// Sends a command and returns its one-line reply (`+OK`, `-ERR ...`).
    fn call(&mut self, args: &[&[u8]]) -> Result<String> {
        self.send(args)?;
        self.line()
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self
            .stream
            .read_line(&mut line)
            .map_err(|e| anyhow!("{}: {e}", self.addr))?;
        if n == 0 {
            bail!("{}: the connection closed", self.addr);
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    fn copy_exact(&mut self, len: u64, w: &mut dyn Write) -> Result<()> {
        let copied = std::io::copy(&mut (&mut self.stream).take(len), w)?;
        if copied != len {
            bail!("the RDB ended after {copied} of {len} bytes");
        }
        Ok(())
    }

    fn copy_until_mark(&mut self, mark: &[u8], w: &mut dyn Write) -> Result<()> {
        let mut held: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                bail!("the connection closed before the end of the RDB");
            }
            held.extend_from_slice(&buf[..n]);
            if held.ends_with(mark) {
                w.write_all(&held[..held.len() - mark.len()])?;
                return Ok(());
            }
            if held.len() > mark.len() {
                let keep = held.len() - mark.len();
                w.write_all(&held[..keep])?;
                held.drain(..keep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdb_headers_give_magic_and_version() {
        // Headers of the RDBs each server of the matrix writes over SYNC.
        for (head, v) in [
            (&b"REDIS0010"[..], 10), // Redis 7.0.15
            (b"REDIS0012", 12),      // Redis 8.2.3
            (b"REDIS0011", 11),      // Valkey 8.1.8 and 9.1.2
        ] {
            assert_eq!(rdb_header(head), Some(("REDIS".to_string(), v)));
        }
        assert_eq!(rdb_header(b"VALKEY080"), Some(("VALKEY".to_string(), 80)));
        assert_eq!(rdb_header(b"REDIS00"), None);
        assert_eq!(rdb_header(b"REDIS00x1"), None);
        assert_eq!(rdb_header(b"\x00\x01junk...."), None);
    }

    #[test]
    fn files_are_written_whole_with_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        let w = write_file(&path, b"abc").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(w.bytes, 3);
        assert_eq!(
            w.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn backup_files_and_new_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/deeper/manifest.json");
        write_file(&path, b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&dir.path().join("new/deeper")), 0o700);
        // A file left over from an earlier run is rewritten private too.
        let old = dir.path().join("old.txt");
        std::fs::write(&old, b"x").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_file(&old, b"y").unwrap();
        assert_eq!(mode(&old), 0o600);
    }
}
