//! Splits a command line into words the way a POSIX shell quotes them (whitespace separates,
//! '…' is literal, "…" keeps spaces and takes \" \\ \$ \` escapes, a backslash outside quotes
//! escapes the next character), with no expansion of any kind: no variables, globs, pipes or
//! redirections. Not a shell: a user who wants one writes `sh -c '…'`.

/// The words of `line`, or what is wrong with it (an unterminated quote or a trailing backslash).
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let quoted = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => quoted.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                let quoted = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => quoted.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                quoted.push('\\');
                                quoted.push(other);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => quoted.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a backslash at the end".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_split_on_whitespace_and_quotes_group_them() {
        assert_eq!(split("  sleep   1000 ").unwrap(), ["sleep", "1000"]);
        assert_eq!(
            split(r#"sh -c 'trap "" TERM; sleep 100'"#).unwrap(),
            ["sh", "-c", r#"trap "" TERM; sleep 100"#]
        );
        assert_eq!(
            split(r#"echo "a \"b\" \$HOME \n" c\ d ''"#).unwrap(),
            ["echo", r#"a "b" $HOME \n"#, "c d", ""]
        );
        assert_eq!(split("a'b'\"c\"d").unwrap(), ["abcd"]);
        assert!(split("").unwrap().is_empty());
        assert!(split(" \t\n").unwrap().is_empty());
    }

    #[test]
    fn unterminated_quotes_are_refused() {
        assert_eq!(split("echo 'a").unwrap_err(), "unterminated single quote");
        assert_eq!(split("echo \"a").unwrap_err(), "unterminated double quote");
        assert_eq!(split("echo a\\").unwrap_err(), "a backslash at the end");
    }
}
