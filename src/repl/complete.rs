//! Completion and hints: what the session knows (functions, variables, modules),
//! the word being typed, and the signature shown once a function's `(` is typed.

use super::help::DOT_COMMANDS;
use super::input::{is_command, is_ident, is_raw};
use redis_trib::script::resolver::{is_closure_name, Resolver, STDLIB};
use redis_trib::script::{ScriptEngine, NODE_FIELDS};
use rhai::{Module, Scope, Shared, AST};
use rustyline::completion::Pair;
use rustyline::hint::Hint;
use std::path::PathBuf;

/// Rhai keywords and built-in functions that completion offers.
const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "switch", "while", "loop", "for", "in", "do", "until",
    "break", "continue", "return", "throw", "try", "catch", "import", "export", "as", "private",
    "true", "false", "this", "global",
];

/// Built-in functions completion offers (with their `(`).
const BUILTINS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "is_def_var",
    "is_def_fn",
    "Fn",
    "call",
    "curry",
];

// ---------------------------------------------------------------------------------
// Completion and hints.

/// What completion and hints offer: the engine's functions, the session's variables,
/// functions and modules, and the modules `import` can find.
#[derive(Clone, Debug, Default)]
pub(super) struct Names {
    /// `(name, signature)` of every function: API, `help`, script-defined, and
    /// `alias::name` for imported modules. Signatures are `name(params) -> type`.
    pub(super) functions: Vec<(String, String)>,
    /// Variable names in scope.
    pub(super) vars: Vec<String>,
    /// Aliases of imported modules.
    pub(super) aliases: Vec<String>,
    /// Module names `import` can load.
    pub(super) modules: Vec<String>,
}

impl Names {
    /// From an engine, a scope, the functions defined so far and imported modules.
    pub(super) fn new(
        engine: &ScriptEngine,
        scope: &Scope,
        functions: &AST,
        modules: &[(String, Shared<Module>)],
    ) -> Names {
        let mut fns: Vec<(String, String)> = engine
            .docs()
            .iter()
            .map(|d| (d.name.clone(), d.signature.clone()))
            .collect();
        fns.push(("help".into(), "help() -> ()".into()));
        fns.push(("help".into(), "help(name: String) -> ()".into()));
        // Closures are functions named `anon$…`: nothing to offer.
        for f in functions
            .iter_functions()
            .filter(|f| !is_closure_name(f.name))
        {
            fns.push((
                f.name.to_string(),
                format!("{}({})", f.name, f.params.join(", ")),
            ));
        }
        for (alias, m) in modules {
            for sig in m.gen_fn_signatures_with_mapper(|s| s.into()) {
                if let Some((name, _)) = sig.split_once('(').filter(|(n, _)| !is_closure_name(n)) {
                    fns.push((format!("{alias}::{name}"), format!("{alias}::{sig}")));
                }
            }
        }
        let mut vars: Vec<String> = scope.iter_raw().map(|(n, ..)| n.to_string()).collect();
        vars.sort();
        vars.dedup();
        Names {
            functions: fns,
            vars,
            aliases: modules.iter().map(|(a, _)| a.clone()).collect(),
            modules: importable(),
        }
    }

    fn function_names(&self, qualified: bool) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .functions
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.contains("::") == qualified)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Module names `import` finds from here: `*.rhai` in `.` and `REDIS_TRIB_PATH`, then
/// the stdlib.
pub(super) fn importable() -> Vec<String> {
    let mut dirs = vec![PathBuf::from(".")];
    dirs.extend(Resolver::env_paths());
    let mut names: Vec<String> = STDLIB.iter().map(|(n, _)| n.to_string()).collect();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "rhai") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.push(stem.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Where the word at `pos` starts and what may complete it.
pub(super) fn complete(names: &Names, line: &str, pos: usize) -> (usize, Vec<Pair>) {
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(pos, |(i, _)| i);
    let word = &before[start..];
    let lead = &before[..start];
    let this_line = lead.rsplit('\n').next().unwrap_or("");
    let plain = |s: &str| Pair {
        display: s.to_string(),
        replacement: s.to_string(),
    };
    let call = |s: &str| Pair {
        display: s.to_string(),
        replacement: format!("{s}("),
    };
    let mut found: Vec<Pair> = Vec::new();
    if is_raw(this_line) {
        // A raw Redis command: nothing of Rhai completes it.
    } else if let Some(quote) = open_string(this_line) {
        let context = this_line[..quote].trim_end();
        if context.ends_with("help(") {
            found.extend(names.function_names(false).into_iter().map(plain));
        } else if context.ends_with("import") {
            found.extend(names.modules.iter().map(|m| plain(m)));
        }
    } else if is_command(this_line) || this_line.trim_start().starts_with('.') {
        if lead.len() == this_line.len() {
            match this_line.trim() {
                "." => found.extend(["help", "dry", "plan", "load", "quit", "exit"].map(plain)),
                ".dry" => found.extend(["on", "off"].map(plain)),
                ".plan" => found.push(plain("all")),
                _ => {}
            }
        }
    } else if let Some(path) = lead.strip_suffix("::") {
        let alias = trailing_ident(path);
        let prefix = format!("{alias}::");
        found.extend(
            names
                .function_names(true)
                .into_iter()
                .filter_map(|n| n.strip_prefix(&prefix))
                .map(call),
        );
    } else if let Some(object) = lead.strip_suffix('.') {
        let number = object
            .chars()
            .rev()
            .take_while(|&c| is_ident(c))
            .all(|c| c.is_ascii_digit());
        let after_value = object.ends_with([')', ']']) || object.ends_with(is_ident);
        if after_value && !(number && object.ends_with(|c: char| c.is_ascii_digit())) {
            found.extend(NODE_FIELDS.iter().map(|f| plain(f)));
        }
    } else {
        // Variables first: where a variable and a function share a name (`cluster`),
        // the one the user made wins.
        found.extend(names.vars.iter().map(|v| plain(v)));
        found.extend(names.function_names(false).into_iter().map(call));
        found.extend(BUILTINS.iter().map(|b| call(b)));
        found.extend(KEYWORDS.iter().map(|k| plain(k)));
        found.extend(names.aliases.iter().map(|a| Pair {
            display: format!("{a}::"),
            replacement: format!("{a}::"),
        }));
    }
    found.retain(|p| p.display.starts_with(word));
    found.sort_by(|a, b| a.display.cmp(&b.display));
    found.dedup_by(|a, b| a.replacement == b.replacement);
    (start, found)
}

/// The byte index of the `"` that opens a string still open at the end of `line`.
pub(super) fn open_string(line: &str) -> Option<usize> {
    let mut open = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (open, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(_), '"') => open = None,
            (None, '"') => open = Some(i),
            _ => {}
        }
    }
    open
}

/// A hint: what is shown after the cursor, and what the right arrow inserts (if any).
#[derive(Debug, PartialEq)]
pub(super) struct ReplHint {
    pub(super) display: String,
    pub(super) insert: Option<String>,
}

impl Hint for ReplHint {
    fn display(&self) -> &str {
        &self.display
    }

    fn completion(&self) -> Option<&str> {
        self.insert.as_deref()
    }
}

/// The hint for `line` with the cursor at `pos`: a function's parameters right after
/// `name(`, the rest of the only function a word can start, a command's arguments.
pub(super) fn hint(names: &Names, line: &str, pos: usize) -> Option<ReplHint> {
    if pos != line.len() || line.trim().is_empty() {
        return None;
    }
    let this_line = line.rsplit('\n').next().unwrap_or(line);
    if this_line.trim_start().starts_with('.') {
        let typed = this_line.trim();
        let rest = match typed {
            ".dry" => " on|off",
            ".dry " => "on|off",
            _ => {
                let mut hits = DOT_COMMANDS
                    .iter()
                    .map(|(c, _)| c.split(' ').next().unwrap_or(c))
                    .filter(|c| c.starts_with(typed) && *c != typed);
                let only = hits.next()?;
                if hits.any(|c| c != only) {
                    return None;
                }
                return Some(ReplHint {
                    display: only[typed.len()..].to_string(),
                    insert: Some(only[typed.len()..].to_string()),
                });
            }
        };
        return Some(ReplHint {
            display: rest.into(),
            insert: None,
        });
    }
    if open_string(this_line).is_some() {
        return None;
    }
    if let Some(callee) = this_line.strip_suffix('(') {
        let name: String = callee
            .chars()
            .rev()
            .take_while(|&c| is_ident(c) || c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let params: Vec<&str> = names
            .functions
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, sig)| sig.split_once('(').map(|(_, p)| p))
            .collect();
        if params.is_empty() {
            return None;
        }
        return Some(ReplHint {
            display: params.join("   or   ("),
            insert: None,
        });
    }
    let word = trailing_ident(this_line);
    let lead = &this_line[..this_line.len() - word.len()];
    if word.chars().count() < 2
        || lead.ends_with(['.', ':'])
        || word.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let mut hits = names
        .function_names(false)
        .into_iter()
        .filter(|n| n.starts_with(&word) && *n != word);
    let only = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    let rest = format!("{}(", &only[word.len()..]);
    Some(ReplHint {
        display: rest.clone(),
        insert: Some(rest),
    })
}

/// The identifier `text` ends with (empty when it ends with anything else).
fn trailing_ident(text: &str) -> String {
    let start = text
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident(c))
        .last()
        .map_or(text.len(), |(i, _)| i);
    text[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::offline_engine;
    use std::collections::BTreeMap;

    fn names() -> Names {
        let engine = offline_engine();
        let mut scope = ScriptEngine::scope(&[], &BTreeMap::new());
        scope.push("cluster", "127.0.0.1:7000".to_string());
        scope.push("my_masters", 3_i64);
        let functions = engine
            .compile(&scope, "fn my_weight(node, factor) { 1 }")
            .unwrap();
        Names::new(&engine, &scope, &functions, &[])
    }

    fn words(found: (usize, Vec<Pair>)) -> Vec<String> {
        found.1.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn completes_functions_keywords_and_variables() {
        let n = names();
        let got = words(complete(&n, "list_", 5));
        assert_eq!(got, vec!["list_masters(", "list_nodes("]);
        assert_eq!(complete(&n, "let x = join_c", 14).0, 8);
        assert_eq!(
            words(complete(&n, "let x = join_c", 14)),
            vec!["join_cluster("]
        );
        // The variable and the function `cluster(addr)` are both offered.
        assert_eq!(words(complete(&n, "clu", 3)), vec!["cluster", "cluster("]);
        assert_eq!(
            words(complete(&n, "my_", 3)),
            vec!["my_masters", "my_weight("]
        );
        assert!(words(complete(&n, "whi", 3)).contains(&"while".to_string()));
        assert!(words(complete(&n, "PAR", 3)).contains(&"PARAMS".to_string()));
        assert!(words(complete(&n, "he", 2)).contains(&"help(".to_string()));
        // Every API function is offered.
        let all = words(complete(&n, "", 0));
        for d in offline_engine().docs() {
            assert!(all.contains(&format!("{}(", d.name)), "{} missing", d.name);
        }
    }

    #[test]
    fn completes_node_fields_after_a_dot() {
        let n = names();
        let line = "list_masters(cluster)[0].slot";
        assert_eq!(
            words(complete(&n, line, line.len())),
            vec!["slot_count", "slots_importing", "slots_migrating"]
        );
        let line = "for m in masters { print(m.";
        let got = words(complete(&n, line, line.len()));
        assert_eq!(got.len(), NODE_FIELDS.len());
        assert!(got.contains(&"node_id".to_string()));
        // Not after a number.
        assert!(words(complete(&n, "1.", 2)).is_empty());
    }

    #[test]
    fn completes_commands_strings_and_modules() {
        let n = names();
        assert_eq!(words(complete(&n, ".d", 2)), vec!["dry"]);
        assert_eq!(words(complete(&n, ".dry o", 6)), vec!["off", "on"]);
        assert_eq!(
            words(complete(&n, "help(\"migr", 10)),
            vec!["migrate_slots"]
        );
        assert!(words(complete(&n, "import \"bal", 11)).contains(&"balance".to_string()));
        assert!(words(complete(&n, "print(\"list_", 12)).is_empty());

        let engine = offline_engine();
        let scope = ScriptEngine::scope(&[], &BTreeMap::new());
        let module = engine.module("balance").unwrap();
        let with_module = Names::new(
            &engine,
            &scope,
            &AST::empty(),
            &[("bal".to_string(), module)],
        );
        let fns = words(complete(&with_module, "bal::", 5));
        assert!(
            !fns.is_empty() && fns.iter().all(|f| f.ends_with('(')),
            "{fns:?}"
        );
        assert!(words(complete(&with_module, "ba", 2)).contains(&"bal::".to_string()));
    }

    #[test]
    fn hints_show_signatures() {
        let n = names();
        let h = hint(&n, "join_no_load(", 13).unwrap();
        assert_eq!(h.display, "cluster: String, new: String | Array) -> ()");
        assert_eq!(h.insert, None);
        let h = hint(&n, "join_cluster(", 13).unwrap();
        assert!(h.display.contains("options: Map"), "{}", h.display);
        let h = hint(&n, "x = my_weight(", 14).unwrap();
        assert_eq!(h.display, "node, factor)");
        let h = hint(&n, "rescue_c", 8).unwrap();
        assert_eq!(h.insert.as_deref(), Some("luster("));
        assert_eq!(hint(&n, ".dry", 4).unwrap().display, " on|off");
        assert_eq!(hint(&n, ".pl", 3).unwrap().insert.as_deref(), Some("an"));
        assert!(hint(&n, "list_", 5).is_none(), "two functions start so");
        assert!(hint(&n, "nothing_like_this(", 18).is_none());
        assert!(hint(&n, "join_no_load(", 3).is_none(), "only at the end");
    }
}
