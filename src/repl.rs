//! The interactive shell (placeholder until the full REPL lands).

use crate::cli::Global;
use crate::output::Output;
use anyhow::Result;
use redis_trib::addr::Addr;
use redis_trib::script::ScriptEngine;
use std::collections::BTreeMap;
use std::io::Read;

/// Runs the shell: script text from stdin.
pub fn run(
    engine: ScriptEngine,
    node: Option<Addr>,
    params: BTreeMap<String, String>,
    _g: &Global,
    _out: &Output,
) -> Result<()> {
    let mut scope = ScriptEngine::scope(&[], &params);
    if let Some(n) = node {
        scope.push("cluster", n.to_string());
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let _ = engine
        .run("<stdin>", &text, &mut scope)
        .map_err(anyhow::Error::msg)?;
    Ok(())
}
