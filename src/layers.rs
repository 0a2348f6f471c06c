//! The one-way flow of the library, checked: every module may name only modules of
//! its own layer or below (see the README's architecture section). A `use` that
//! points up fails this test with the file and the module it named.

use std::path::Path;

/// The library's top-level modules by layer, bottom up.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "pure",
        &[
            "addr",
            "slots",
            "topology",
            "error",
            "commands",
            "interrupt",
            "balance",
        ],
    ),
    ("connections", &["conn"]),
    ("engines", &["engine", "lease", "keyspace"]),
    ("backend", &["backend"]),
    ("operations", &["ops"]),
    ("interface", &["script", "render", "lab", "labcerts"]),
];

/// The layer index of a top-level module.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// `crate::name` references outside comments.
fn named_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_names_only_its_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    let mut checked = 0;
    for path in all {
        let rel = path.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_string();
        // The tests that cross every layer on purpose, and this file.
        if ["fuzz", "layers", "lib"].contains(&top.as_str()) || rel.ends_with("sim_tests.rs") {
            continue;
        }
        let Some(mine) = layer_of(&top) else {
            continue; // the binary's modules (cli, repl, ...) sit above everything
        };
        checked += 1;
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        for named in named_modules(&text) {
            if let Some(theirs) = layer_of(&named) {
                if theirs > mine {
                    upward.push(format!(
                        "{} ({}) names crate::{named} ({})",
                        rel.display(),
                        LAYERS[mine].0,
                        LAYERS[theirs].0
                    ));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} library files were checked");
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports pointing up a layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scanner_finds_what_it_must() {
    let text = "use crate::ops::wait;\n// crate::backend in a comment\nlet x = crate::engine::keys::f(); // crate::cli";
    assert_eq!(named_modules(text), vec!["ops", "engine"]);
}
