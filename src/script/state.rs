//! State between runs: a workflow that undoes itself later ("drain for maintenance,
//! bring it back") keeps what it needs as a *restore token* (a short text it prints,
//! passed back with `--set token=...`) or in the `--state FILE` of the run (under an
//! `--allow-write` directory). Slot lists in the state are kept as ranges, so a token
//! stays short.

use super::convert::{err, slots_of};
use super::host::Host;
use super::registry::{api, Registry};
use crate::slots::format_ranges;
use rhai::{Dynamic, EvalAltResult, Map, INT};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What every restore token starts with (and its format's version).
pub const TOKEN_PREFIX: &str = "rt1.";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding.
fn encode64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// The bytes of a base64url text (padding tolerated); `None` when it is not one.
fn decode64(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u32> = text
        .trim_end_matches('=')
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c).map(|p| p as u32))
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | d << (18 - 6 * i));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Whether a state key holds slots (`slots`, `*_slots`): kept as ranges.
fn is_slots_key(k: &str) -> bool {
    k == "slots" || k.ends_with("_slots")
}

/// A state map as JSON, slot lists as range text.
fn to_json(state: &Map) -> Result<serde_json::Value, Box<EvalAltResult>> {
    let mut compact = Map::new();
    for (k, v) in state {
        let v = if is_slots_key(k) && !v.is_string() {
            Dynamic::from(format_ranges(&slots_of(v)?))
        } else {
            v.clone()
        };
        compact.insert(k.clone(), v);
    }
    serde_json::to_value(Dynamic::from_map(compact))
        .map_err(|e| err(format!("the state cannot be saved: {e}")))
}

/// A state map from its JSON, slot lists back as arrays.
fn from_json(doc: serde_json::Value, what: &str) -> Result<Map, Box<EvalAltResult>> {
    let mut state: Map = rhai::serde::to_dynamic(doc)?
        .try_cast::<Map>()
        .ok_or_else(|| err(format!("{what} does not hold a state map")))?;
    for (k, v) in state.iter_mut() {
        if is_slots_key(k) && v.is_string() {
            let slots = if v.to_string() == "-" {
                Vec::new()
            } else {
                slots_of(v)?
            };
            *v = slots
                .into_iter()
                .map(|s| Dynamic::from_int(s as INT))
                .collect::<rhai::Array>()
                .into();
        }
    }
    Ok(state)
}

/// The restore token of a state map.
pub fn token_of(state: &Map) -> Result<String, Box<EvalAltResult>> {
    let json = to_json(state)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        encode64(json.to_string().as_bytes())
    ))
}

/// The state map a restore token holds.
pub fn state_of(token: &str) -> Result<Map, Box<EvalAltResult>> {
    let bad = || {
        err(format!(
            "'{}' is not a restore token (they start with {TOKEN_PREFIX}; pass the whole text the first run printed)",
            token.chars().take(24).collect::<String>()
        ))
    };
    let body = token.trim().strip_prefix(TOKEN_PREFIX).ok_or_else(bad)?;
    let bytes = decode64(body).ok_or_else(bad)?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    from_json(doc, "the restore token")
}

/// Registers `state_token`, `token_state`, `save_state` and `load_state`.
pub(super) fn register(reg: &mut Registry<'_>, host: Arc<Host>) {
    api!(reg, "state_token", ["state: Map"] -> "String",
        "A restore token for a state map (a short text to print and pass to a later run with --set token=...): slot lists under `slots` or `*_slots` keys are kept as ranges.",
        |state: Map| -> Result<String, Box<EvalAltResult>> { token_of(&state) });
    api!(reg, "token_state", ["token: String"] -> "Map",
        "The state map a restore token holds (slot lists back as arrays).",
        |token: &str| -> Result<Map, Box<EvalAltResult>> { state_of(token) });
    let h = host.clone();
    api!(reg, "save_state", ["state: Map"] -> "bool",
        "Write a state map to the run's --state FILE (under an --allow-write directory); false when the run has no --state, or in a dry run (nothing is written).",
    move |state: Map| -> Result<bool, Box<EvalAltResult>> {
        let Some(file) = h.state_file() else { return Ok(false) };
        let dir = file.parent().map(|d| d.display().to_string()).unwrap_or_else(|| ".".into());
        let dir = h.sandbox.writable("save_state", if dir.is_empty() { "." } else { &dir }).map_err(err)?;
        let json = to_json(&state)?;
        if h.dry.load(Ordering::SeqCst) {
            (h.io.log)(&format!("dry run: the state is not written to {}", file.display()));
            return Ok(false);
        }
        let name = file.file_name().ok_or_else(|| err(format!("save_state: --state {} names no file", file.display())))?;
        let path = dir.join(name);
        let text = serde_json::to_string_pretty(&json).map_err(|e| err(format!("save_state: {e}")))?;
        crate::engine::rdb::write_file(&path, text.as_bytes())
            .map_err(|e| err(format!("save_state: {e:#}")))?;
        Ok(true)
    });
    let h = host;
    api!(reg, "load_state", [] -> "Map",
        "The state map in the run's --state FILE (written by an earlier run's save_state).",
    move || -> Result<Map, Box<EvalAltResult>> {
        let file = h.state_file().ok_or_else(|| err("load_state: give the run a --state FILE (the file an earlier run saved)"))?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| err(format!("load_state: cannot read {}: {e}", file.display())))?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(format!("load_state: {} is not a saved state: {e}", file.display())))?;
        from_json(doc, &file.display().to_string())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for text in ["", "a", "ab", "abc", "abcd", "{\"slots\":\"0-5460\"}"] {
            let enc = encode64(text.as_bytes());
            assert!(!enc.contains(['+', '/', '=']));
            assert_eq!(decode64(&enc).unwrap(), text.as_bytes(), "{text}");
        }
        assert!(decode64("a").is_none());
        assert!(decode64("a*b").is_none());
    }

    #[test]
    fn tokens_keep_slots_as_ranges_and_come_back() {
        let mut state = Map::new();
        state.insert("node".into(), "127.0.0.1:7002".into());
        let slots: rhai::Array = (0..5461).chain([6000]).map(Dynamic::from_int).collect();
        state.insert("slots".into(), slots.clone().into());
        let token = token_of(&state).unwrap();
        assert!(
            token.starts_with(TOKEN_PREFIX) && token.len() < 80,
            "{token}"
        );
        let back = state_of(&token).unwrap();
        assert_eq!(back["node"].to_string(), "127.0.0.1:7002");
        assert_eq!(back["slots"].clone().into_array().unwrap().len(), 5462);
        assert!(state_of("rt1.!!").is_err());
        assert!(state_of("hello")
            .unwrap_err()
            .to_string()
            .contains("not a restore token"));
    }
}
