//! The shell's help: `help()` / `help("name")` from the engine's own record of its
//! functions, and `.help` with the shell commands.

use redis_trib::script::{ApiDoc, ScriptEngine, NODE_FIELDS};
use rhai::FuncRegistration;

/// Shell commands: what `.help` shows and `.` completes.
pub(super) const DOT_COMMANDS: &[(&str, &str)] = &[
    (".help", "functions, node fields and these commands"),
    (
        ".dry on",
        "plan only: operations change an in-memory copy of the cluster",
    ),
    (
        ".dry off",
        "operations change the cluster again (the plan is dropped)",
    ),
    (".dry", "whether operations are planned or applied"),
    (
        ".plan [all]",
        "the plan recorded since `.dry on` (all: every slot range)",
    ),
    (
        ".load FILE",
        "run a script file in this session (its functions and variables stay)",
    ),
    (".quit", "leave (also .exit, Ctrl-D)"),
    (
        "> CMD ARGS",
        "a Redis command for the cluster `cluster` names (routed by slot)",
    ),
];

/// Registers `help()` and `help("name")`, printing from the engine's API record.
pub(super) fn register_help(engine: &mut ScriptEngine) {
    let docs = engine.reference();
    let all = full_help(&docs);
    FuncRegistration::new("help")
        .with_volatility(true)
        .register_into_engine(engine.engine_mut(), move || println!("{}", all.trim_end()));
    FuncRegistration::new("help")
        .with_volatility(true)
        .register_into_engine(engine.engine_mut(), move |name: &str| {
            println!("{}", help_for(&docs, name).trim_end())
        });
}

/// Every API function (signature and one line of doc), node fields, shell commands.
pub(crate) fn full_help(docs: &[ApiDoc]) -> String {
    let mut s = String::from("Cluster functions (help(\"name\") shows one):\n");
    for d in docs {
        s.push_str(&format!("  {}\n      {}\n", d.signature, d.doc));
    }
    s.push_str(&format!("\nNode fields: {}.\n", NODE_FIELDS.join(", ")));
    s.push_str(
        "\nThe stdlib modules' functions and topics (ARGS, PARAMS, Cluster, check map, info map, \
         node_info map, slot_stats array, topology map, state token, Rhai traps) are above: \
         help(\"topology map\") shows one.\n",
    );
    s.push_str("\nShell commands:\n");
    for (cmd, what) in DOT_COMMANDS {
        s.push_str(&format!("  {cmd:<10} {what}\n"));
    }
    s.push_str(
        "\nVariables, functions and imports persist between inputs; an open block \
         continues on the next line. Tab completes, Ctrl-C cancels, Ctrl-D leaves.\n",
    );
    s
}

/// The functions called `name`, or the names that come close.
pub(crate) fn help_for(docs: &[ApiDoc], name: &str) -> String {
    let hits: Vec<&ApiDoc> = docs.iter().filter(|d| d.name == name).collect();
    if !hits.is_empty() {
        return hits
            .iter()
            .map(|d| format!("{}\n    {}\n", d.signature, d.doc))
            .collect();
    }
    let lower = name.to_lowercase();
    let mut close: Vec<&str> = docs
        .iter()
        .map(|d| d.name.as_str())
        .filter(|n| !lower.is_empty() && n.to_lowercase().contains(&lower))
        .collect();
    close.dedup();
    if close.is_empty() {
        format!("no function named {name:?}: help() lists them all")
    } else {
        format!(
            "no function named {name:?}; did you mean {}?",
            close.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::offline_engine;

    #[test]
    fn help_lists_every_function_from_the_engine() {
        let engine = offline_engine();
        let text = full_help(engine.docs());
        for d in engine.docs() {
            assert!(text.contains(&d.signature), "{} missing", d.signature);
            assert!(text.contains(&d.doc), "{} doc missing", d.name);
        }
        let one = help_for(engine.docs(), "migrate_slots");
        assert!(one.starts_with("migrate_slots(src: String"), "{one}");
        assert!(!one.contains("join_cluster"));
        assert!(help_for(engine.docs(), "migrate").contains("migrate_slots"));
        assert!(help_for(engine.docs(), "zzz").contains("no function named"));
    }
}
