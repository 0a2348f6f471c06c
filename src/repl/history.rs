//! What the shell's history never keeps: inputs that carry a secret, as redis-cli
//! leaves out `AUTH`, `HELLO ... AUTH`, `ACL SETUSER`, `CONFIG SET` of a password and
//! `MIGRATE ... AUTH/AUTH2`, whether typed as a raw `>` line or inside Rhai
//! (`execute(n, "AUTH", pw)`, `import_keys(..., #{ from_password: ... })`); and where
//! the history file is.

use std::path::PathBuf;

/// Whether `input` (a whole shell input: raw line, statement or several lines) may
/// carry a secret and so must stay out of the history file.
pub(super) fn carries_secret(input: &str) -> bool {
    // The words of the input, upper-cased: commands and arguments inside string
    // literals split the same way as bare words, so both forms are caught.
    let words: Vec<String> = input
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let has = |w: &str| words.iter().any(|x| x == w);
    let secret_param =
        |w: &String| w.contains("PASS") || w.contains("MASTERAUTH") || w.contains("REQUIREPASS");
    // AUTH itself, HELLO ... AUTH and MIGRATE ... AUTH/AUTH2.
    has("AUTH")
        || has("AUTH2")
        || (has("ACL") && has("SETUSER"))
        || (has("CONFIG") && has("SET") && words.iter().any(secret_param))
        // A script option or variable holding a password (from_password, password...).
        || words.iter().any(|w| w.contains("PASSWORD"))
}

/// The history file: `REDIS_TRIB_HISTORY` (empty: none), else `~/.redis_trib_history`.
pub(super) fn history_path() -> Option<PathBuf> {
    match std::env::var_os("REDIS_TRIB_HISTORY") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".redis_trib_history")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_the_history() {
        for secret in [
            "> AUTH s3cret",
            "> auth default s3cret",
            "> HELLO 3 AUTH default s3cret",
            "> ACL SETUSER bob on >pw ~* +@all",
            "> CONFIG SET requirepass s3cret",
            "> config set masterauth s3cret",
            "> CONFIG SET masteruser-password x",
            "> MIGRATE 10.0.0.1 7000 \"\" 0 5000 AUTH pw KEYS a",
            "> MIGRATE 10.0.0.1 7000 \"\" 0 5000 AUTH2 u pw KEYS a",
            "execute(cluster, \"AUTH\", \"s3cret\")",
            "execute(n, \"acl\", \"setuser\", \"bob\", \">pw\")",
            "cluster(cluster).execute(\"CONFIG\", \"SET\", \"requirepass\", pw)",
            "import_keys(cluster, src, #{ from_password: \"pw\" })",
        ] {
            assert!(carries_secret(secret), "{secret}");
        }
        for plain in [
            "> SET author x",
            "> GET authority",
            "> CONFIG SET maxmemory 100mb",
            "> CONFIG GET requirepass",
            "list_masters(cluster)",
            "execute(cluster, \"ACL\", \"LIST\")",
            "let passes = 3;",
        ] {
            assert!(!carries_secret(plain), "{plain}");
        }
    }
}
