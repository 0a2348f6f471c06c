//! Raw Redis commands in the shell: a line starting with `>` is a Redis command for
//! the whole cluster (`> SET foo bar`, `> MGET a b`), split into arguments the way
//! redis-cli splits them.

/// Splits a command line as redis-cli does: words separated by blanks; `"..."`
/// with `\n \r \t \b \a \\ \" \xHH` escapes; `'...'` with `\'` only. A closing
/// quote must end the word.
pub(super) fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        let mut word: Vec<u8> = Vec::new();
        let push = |w: &mut Vec<u8>, c: char| {
            let mut buf = [0u8; 4];
            w.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        };
        if first == '"' || first == '\'' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unbalanced quotes in the command line".into()),
                    Some(c) if c == first => break,
                    Some('\\') if first == '\'' => match chars.peek() {
                        Some('\'') => {
                            chars.next();
                            word.push(b'\'');
                        }
                        _ => word.push(b'\\'),
                    },
                    Some('\\') => match chars.next() {
                        Some('n') => word.push(b'\n'),
                        Some('r') => word.push(b'\r'),
                        Some('t') => word.push(b'\t'),
                        Some('b') => word.push(8),
                        Some('a') => word.push(7),
                        Some('x') => {
                            let hex: String = chars.clone().take(2).collect();
                            match u8::from_str_radix(&hex, 16) {
                                Ok(b) if hex.len() == 2 => {
                                    chars.next();
                                    chars.next();
                                    word.push(b);
                                }
                                _ => word.push(b'x'),
                            }
                        }
                        Some(c) => push(&mut word, c),
                        None => return Err("unbalanced quotes in the command line".into()),
                    },
                    Some(c) => push(&mut word, c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("a closing quote must be followed by a space".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                push(&mut word, c);
                chars.next();
            }
        }
        args.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_args(line)
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn splits_like_redis_cli() {
        assert_eq!(words("  SET  foo bar "), ["SET", "foo", "bar"]);
        assert_eq!(words(r#"SET k "a b\n\"c\"""#), ["SET", "k", "a b\n\"c\""]);
        assert_eq!(words(r"SET k 'it\'s \n'"), ["SET", "k", "it's \\n"]);
        assert_eq!(words(r#"SET k "\x41\x4a""#), ["SET", "k", "AJ"]);
        assert_eq!(words(r#"SET k """#), ["SET", "k", ""]);
        assert!(words("").is_empty());
        assert!(split_args(r#"SET k "open"#)
            .unwrap_err()
            .contains("unbalanced"));
        assert!(split_args(r#"SET "k"x"#)
            .unwrap_err()
            .contains("closing quote"));
    }
}
