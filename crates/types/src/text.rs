//! Untrusted text made safe to show: escaping for log lines (so a plugin message, a peer's text or a
//! request field can never forge a line or drive a terminal), the checks rcm applies to every name
//! and parameter key a client sends, and which parameters count as secret. Not where these are
//! applied (rcm's log sinks and request validation).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest name or parameter key accepted, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// Characters that render as nothing or reorder what follows: zero-width spaces and joiners, the
/// bidirectional embeddings, overrides and isolates, the Unicode line and paragraph separators,
/// invisible operators and the byte-order mark.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Whether `c` must not appear raw in a log line: a control character (C0, DEL, C1 — which
/// covers ESC and so every terminal escape sequence) or an invisible/bidi character.
fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible(c)
}

/// `s` with newlines, CR, tabs, every control character and every invisible or bidirectional
/// character replaced by a visible escape (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`). A backslash is
/// left alone, so paths and ordinary messages read as written: a literal `\n` in the input can look
/// like an escape but can never end a line. Borrowed when nothing needed escaping.
pub fn escape_for_log(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Checks a resource or group name: 1 to 128 characters, no control character, no quote, no
/// invisible or bidirectional character (two names that look the same must be the same name). The
/// error names the kind and shows the name escaped.
pub fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "{kind} name must be 1 to {MAX_NAME_CHARS} characters (got {chars})"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| needs_escape(c) || c == '\'' || c == '"')
    {
        return Err(format!(
            "{kind} name '{}' contains {}: names must be printable, without quotes or invisible characters",
            escape_for_log(name),
            describe_char(c)
        ));
    }
    Ok(())
}

/// Checks a private parameter key: 1 to 128 characters, no whitespace, no `=`, no control,
/// invisible or bidirectional character. The error shows the key escaped.
pub fn check_param_key(key: &str) -> Result<(), String> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(format!(
            "parameter name must be 1 to {MAX_NAME_CHARS} characters (got {chars})"
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|&c| needs_escape(c) || c.is_whitespace() || c == '=')
    {
        return Err(format!(
            "parameter name '{}' contains {}: parameter names must be printable, without spaces or '='",
            escape_for_log(key),
            describe_char(c)
        ));
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        '\'' | '"' | '=' => format!("'{c}'"),
        c if c.is_whitespace() && !c.is_control() && !is_invisible(c) => {
            format!("whitespace (U+{:04X})", c as u32)
        }
        c => format!("the invisible or control character U+{:04X}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_character_that_could_forge_a_line_or_drive_a_terminal() {
        assert!(matches!(
            escape_for_log("plain text /a\\b"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_for_log("a\nERR [RCM] forged\r\tx"),
            "a\\nERR [RCM] forged\\r\\tx"
        );
        assert_eq!(escape_for_log("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_for_log("\u{7f}\u{85}\u{0}"), "\\u{7f}\\u{85}\\u{0}");
        for c in [
            '\u{200B}', '\u{200F}', '\u{202A}', '\u{202E}', '\u{2028}', '\u{2029}', '\u{2060}',
            '\u{2064}', '\u{2066}', '\u{2069}', '\u{FEFF}',
        ] {
            let raw = format!("x{c}y");
            let escaped = escape_for_log(&raw);
            assert_eq!(escaped, format!("x\\u{{{:x}}}y", c as u32));
            assert!(escaped.chars().all(|c| c.is_ascii_graphic()));
        }
        // Ordinary non-ASCII text stays as it is.
        assert_eq!(escape_for_log("Zürich 東京"), "Zürich 東京");
    }

    #[test]
    fn names_are_bounded_printable_and_visible() {
        assert!(check_name("group", "web-01 (prod)").is_ok());
        assert!(check_name("group", &"é".repeat(128)).is_ok());
        let long = check_name("group", &"x".repeat(129)).unwrap_err();
        assert!(long.contains("group name must be 1 to 128"), "{long}");
        assert!(check_name("resource", "").is_err());
        for bad in [
            "a\nb",
            "a'b",
            "a\"b",
            "a\u{200B}b",
            "a\u{202E}b",
            "a\u{2028}b",
            "\u{1b}",
        ] {
            let e = check_name("resource", bad).unwrap_err();
            assert!(e.starts_with("resource name '"), "{e}");
            assert!(!e.contains('\n') && !e.contains('\u{202E}'), "{e:?}");
        }
        let e = check_name("resource", "a\u{202E}b").unwrap_err();
        assert!(e.contains("a\\u{202e}b") && e.contains("U+202E"), "{e}");
    }

    #[test]
    fn parameter_keys_have_no_space_equals_or_invisible_character() {
        assert!(check_param_key("slow_ms").is_ok());
        assert!(check_param_key("dns.server-1").is_ok());
        for bad in [
            "",
            "a b",
            "a=b",
            "a\nERR [RCM] forged",
            "a\u{2028}",
            "a\u{a0}b",
        ] {
            let e = check_param_key(bad).unwrap_err();
            assert!(e.starts_with("parameter name"), "{e}");
            assert!(!e.contains('\n'), "{e:?}");
        }
        assert!(check_param_key(&"k".repeat(129)).is_err());
    }
}
