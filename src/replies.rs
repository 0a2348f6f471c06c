//! Printing command replies: one reply as redis-cli shows it (or JSON), and one reply
//! per node as `addr: reply` lines (or a JSON object by address).

use crate::cli::settings::Settings;
use crate::output::Output;
use anyhow::Result;
use redis_trib::keyspace::Reply;
use redis_trib::render::{reply_json, reply_text};

/// One node's answer: its reply, or why it has none.
pub type NodeAnswer = (String, redis_trib::keyspace::NodeReply);

/// Prints what a cluster handle answered; returns how many nodes of a fan-out failed
/// (their lines say why).
pub fn print_reply(out: &Output, s: &Settings, reply: Reply) -> Result<usize> {
    match reply {
        Reply::One(v) if s.json => out.data(&serde_json::to_string_pretty(&reply_json(&v))?),
        Reply::One(v) => out.data(reply_text(&v).trim_end()),
        Reply::PerNode(answers) => return print_per_node(out, s, &answers),
    }
    Ok(0)
}

/// Prints one answer per node; returns how many were errors.
pub fn print_per_node(out: &Output, s: &Settings, answers: &[NodeAnswer]) -> Result<usize> {
    let mut doc = serde_json::Map::new();
    let mut failed = 0;
    for (addr, answer) in answers {
        match answer {
            Ok(v) if s.json => {
                doc.insert(addr.clone(), reply_json(v));
            }
            Ok(v) => match reply_text(v).trim_end() {
                t if t.contains('\n') => out.data(&format!("{addr}:\n{t}")),
                t => out.data(&format!("{addr}: {t}")),
            },
            Err(e) => {
                failed += 1;
                if s.json {
                    doc.insert(addr.clone(), serde_json::json!({ "error": e }));
                } else {
                    out.data(&format!("{addr}: (error) {e}"));
                }
            }
        }
    }
    if s.json {
        out.data(&serde_json::to_string_pretty(&doc)?);
    }
    Ok(failed)
}
