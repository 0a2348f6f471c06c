//! Cutting shell input into statements and shell commands, and telling complete
//! input from input that needs more lines.

use rhai::{Engine, EvalAltResult, LexError, ParseError, ParseErrorType, Position};

// ---------------------------------------------------------------------------------
// Cutting input into statements.

/// One statement or shell command of an input.
#[derive(Debug, PartialEq)]
pub(super) enum Piece {
    /// A shell command line (`.dry on`), on line `line` (0-based).
    Command { line: usize, text: String },
    /// A raw Redis command (the line after its `>`), on line `line` (0-based).
    Raw { line: usize, text: String },
    /// Rhai code starting on line `line` (0-based).
    Code { line: usize, text: String },
}

/// An input cut into pieces, or why it cannot be.
#[derive(Debug)]
pub(super) enum Split {
    /// Every statement is complete.
    Done(Vec<Piece>),
    /// The last statement needs more lines.
    Incomplete(Box<EvalAltResult>),
    /// A syntax error (positions count from the start of the input).
    Invalid(Box<EvalAltResult>),
}

/// Whether an input is ready to run.
#[derive(Debug, PartialEq)]
pub(super) enum Check {
    /// Every statement is complete (or it is a shell command).
    Complete,
    /// A statement is still open: the input continues on the next line.
    Incomplete,
    /// A syntax error: run it to see the report.
    Invalid,
}

/// Whether `input` is complete, still open, or wrong.
pub(super) fn check(engine: &Engine, input: &str) -> Check {
    match split(engine, input) {
        Split::Done(_) => Check::Complete,
        Split::Incomplete(_) => Check::Incomplete,
        Split::Invalid(_) => Check::Invalid,
    }
}

pub(super) fn is_command(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('.') && t[1..].starts_with(|c: char| c.is_ascii_alphabetic())
}

/// Whether a line is a raw Redis command (`> SET foo bar`).
pub(super) fn is_raw(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Cuts `text` into statements: lines are added to a statement until it parses; a
/// statement followed by a line starting with `else`, `catch` or an indented `.`
/// (a method chain) continues there. Shell commands and raw commands stand on their
/// own lines.
pub(super) fn split(engine: &Engine, text: &str) -> Split {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut pieces = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if open.is_none() {
            if line.trim().is_empty() {
                continue;
            }
            if is_command(line) {
                pieces.push(Piece::Command {
                    line: i,
                    text: line.trim().to_string(),
                });
                continue;
            }
            if is_raw(line) {
                pieces.push(Piece::Raw {
                    line: i,
                    text: line.trim_start()[1..].trim().to_string(),
                });
                continue;
            }
        }
        let (start, code) = open.get_or_insert_with(|| (i, String::new()));
        if i > *start {
            code.push('\n');
        }
        code.push_str(line);
        match parse(engine, *start, code) {
            Parsed::Complete if continues(&lines[i + 1..]) => {}
            Parsed::Complete => {
                let (line, text) = open.take().expect("an open statement");
                pieces.push(Piece::Code { line, text });
            }
            Parsed::Incomplete(_) => {}
            Parsed::Invalid(e) => return Split::Invalid(e),
        }
    }
    match open {
        None => Split::Done(pieces),
        Some((start, code)) => match parse(engine, start, &code) {
            Parsed::Complete => {
                pieces.push(Piece::Code {
                    line: start,
                    text: code,
                });
                Split::Done(pieces)
            }
            Parsed::Incomplete(e) => Split::Incomplete(e),
            Parsed::Invalid(e) => Split::Invalid(e),
        },
    }
}

/// Whether the next line with text continues the statement before it.
pub(super) fn continues(rest: &[&str]) -> bool {
    let Some(next) = rest.iter().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let t = next.trim_start();
    let word = |w: &str| t.strip_prefix(w).is_some_and(|r| !r.starts_with(is_ident));
    word("else")
        || word("catch")
        || (t.len() < next.len() && (t.starts_with('.') || t.starts_with("?.")))
}

pub(super) enum Parsed {
    Complete,
    Incomplete(Box<EvalAltResult>),
    Invalid(Box<EvalAltResult>),
}

/// Parses the statement `code` that starts on line `start`.
pub(super) fn parse(engine: &Engine, start: usize, code: &str) -> Parsed {
    let text = pad(start, code);
    if in_block_comment(code) {
        // Rhai reads an unclosed comment to the end without complaint.
        let line = text.split('\n').count();
        let col = text.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let at = Position::new(clamp(line), clamp(col));
        return Parsed::Incomplete(ParseError(Box::new(ParseErrorType::UnexpectedEOF), at).into());
    }
    match engine.compile(&text) {
        Ok(_) => Parsed::Complete,
        Err(e) if needs_more(&e, &text) => Parsed::Incomplete(e.into()),
        Err(e) => Parsed::Invalid(e.into()),
    }
}

pub(super) fn clamp(n: usize) -> u16 {
    n.min(u16::MAX as usize) as u16
}

/// Whether a parse error only says the text stops too early: the end of input came
/// while a block, call, list or multi-line string was open, or after doc comments
/// (the function they describe comes next).
pub(super) fn needs_more(e: &ParseError, text: &str) -> bool {
    if e.position().is_none() {
        return matches!(e.err_type(), ParseErrorType::UnexpectedEOF);
    }
    let offset = offset_of(e.position(), text);
    let end = text.trim_end().chars().count();
    match e.err_type() {
        ParseErrorType::UnexpectedEOF => true,
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            // A `back-tick` string, or a "string" continued with a `\` at line end.
            let opener = offset.and_then(|o| text.chars().nth(o));
            opener == Some('`') || text.trim_end().ends_with('\\')
        }
        ParseErrorType::BadInput(_) => false,
        ParseErrorType::WrongDocComment => text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with("//")
        }),
        _ => offset.is_none_or(|o| o >= end),
    }
}

/// Whether `code` ends inside a `/* block comment */` (they nest in Rhai).
pub(super) fn in_block_comment(code: &str) -> bool {
    let c: Vec<char> = code.chars().collect();
    let (mut i, mut depth) = (0, 0usize);
    let mut quote: Option<char> = None;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if depth > 0 {
            match (c[i], next) {
                ('/', Some('*')) => (depth, i) = (depth + 1, i + 1),
                ('*', Some('/')) => (depth, i) = (depth - 1, i + 1),
                _ => {}
            }
        } else if let Some(q) = quote {
            if c[i] == '\\' && q != '`' {
                i += 1;
            } else if c[i] == q {
                quote = None;
            }
        } else {
            match (c[i], next) {
                ('/', Some('/')) => {
                    while i + 1 < c.len() && c[i + 1] != '\n' {
                        i += 1;
                    }
                }
                ('/', Some('*')) => (depth, i) = (1, i + 1),
                ('"' | '`' | '\'', _) => quote = Some(c[i]),
                _ => {}
            }
        }
        i += 1;
    }
    depth > 0
}

/// The character offset of `pos` in `text`; `None` past its end.
pub(super) fn offset_of(pos: Position, text: &str) -> Option<usize> {
    let (line, col) = (pos.line()?, pos.position().unwrap_or(1));
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            return Some(offset + col.saturating_sub(1));
        }
        offset += l.chars().count() + 1;
    }
    None
}

pub(super) fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `code` moved down to line `line` (0-based), so positions count from the input's start.
pub(super) fn pad(line: usize, code: &str) -> String {
    "\n".repeat(line) + code
}

/// The `import "name" as alias` statements of `code` (as the regex
/// `import\s+"([^"]+)"\s+as\s+(\w+)` finds them).
pub(crate) fn imports_in(code: &str) -> Vec<(String, String)> {
    fn blanks(s: &str) -> Option<&str> {
        let t = s.trim_start();
        (t.len() < s.len()).then_some(t)
    }
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("import") {
        let after = &rest[i + "import".len()..];
        let starts_word = !rest[..i].chars().next_back().is_some_and(is_ident);
        rest = after;
        let Some(quoted) = blanks(after).filter(|_| starts_word) else {
            continue;
        };
        let Some(quoted) = quoted.strip_prefix('"') else {
            continue;
        };
        let Some(end) = quoted.find('"').filter(|&e| e > 0) else {
            continue;
        };
        let name = &quoted[..end];
        let Some(alias) = blanks(&quoted[end + 1..])
            .and_then(|s| s.strip_prefix("as"))
            .and_then(blanks)
        else {
            continue;
        };
        let alias: String = alias.chars().take_while(|&c| is_ident(c)).collect();
        if !alias.is_empty() {
            found.push((name.to_string(), alias));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripting::offline_engine;
    use redis_trib::script::report;

    #[test]
    fn parse_errors_at_the_end_continue() {
        let engine = offline_engine();
        let e = engine.engine();
        for open in [
            "fn f(a) {",
            "fn f(a) {\n  let x = a;",
            "if true {",
            "if x { 1 } else {",
            "let x = [1, 2,",
            "join_cluster(cluster,",
            "let m = #{ a: 1,",
            "let x = 1 +",
            "for n in list_masters(cluster) {\n  print(n);\n",
            "let s = `multi\nline",
            "while true { // forever",
            "let x = (1 + 2",
            "/* a comment\n  still the comment",
            "5 /* a /* nested */ comment",
            "/// doubles\n/// a number",
        ] {
            assert_eq!(check(e, open), Check::Incomplete, "{open:?}");
        }
        for done in [
            "1 + 2",
            "let x = 1;",
            "fn f(a) { a + 1 }",
            "fn f(a) {\n  a + 1\n}",
            "list_masters(cluster).len()",
            "if x { 1 }\nelse { 2 }",
            ".dry on",
            "",
            "let s = `multi\nline`;",
            "let a = 1\nlet b = 2",
            "import \"balance\" as b;",
            "// just a comment",
            "/* a\n comment */ 5",
            "let s = \"/*\"; // /*",
            "/// doubles\nfn d(x) {\n  x * 2\n}",
        ] {
            assert_eq!(check(e, done), Check::Complete, "{done:?}");
        }
        for wrong in [
            "let = 5;",
            "1 +* 2",
            "fn f( { 1 }",
            "let x = 1 +* 2;\nfn f() {",
            "\"open",
        ] {
            assert_eq!(check(e, wrong), Check::Invalid, "{wrong:?}");
        }
    }

    #[test]
    fn input_is_cut_into_statements_and_commands() {
        let engine = offline_engine();
        let text =
            ".dry on\nlet x = 1\n\nfn f(a) {\n  a + x\n}\nif x > 0 { 1 }\nelse { 2 }\n.plan\nf(1)";
        let Split::Done(pieces) = split(engine.engine(), text) else {
            panic!("not done");
        };
        let code = |line: usize, text: &str| Piece::Code {
            line,
            text: text.into(),
        };
        assert_eq!(
            pieces,
            vec![
                Piece::Command {
                    line: 0,
                    text: ".dry on".into()
                },
                code(1, "let x = 1"),
                code(3, "fn f(a) {\n  a + x\n}"),
                code(6, "if x > 0 { 1 }\nelse { 2 }"),
                Piece::Command {
                    line: 8,
                    text: ".plan".into()
                },
                code(9, "f(1)"),
            ]
        );
        // A syntax error is reported at its line in the whole input.
        let Split::Invalid(e) = split(engine.engine(), "let a = 1;\n\nlet b = a +* 2;") else {
            panic!("not invalid");
        };
        assert_eq!(e.position().line(), Some(3), "{e}");
        let report = report::report(&e, "<stdin>", "let a = 1;\n\nlet b = a +* 2;");
        assert!(report.starts_with("<stdin>:3:"), "{report}");
    }

    #[test]
    fn import_statements_are_found() {
        assert_eq!(
            imports_in("import \"balance\" as b; let x = 1;\nimport  \"m\"  as   my_mod;"),
            vec![
                ("balance".to_string(), "b".to_string()),
                ("m".to_string(), "my_mod".to_string())
            ]
        );
        assert!(imports_in("reimport \"m\" as x").is_empty());
        assert!(imports_in("import m as x; import \"\" as y; import \"m\" x").is_empty());
    }
}
