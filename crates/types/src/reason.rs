//! An I/O error worded as the reason in a sentence: `no space left on device`, not
//! `No space left on device (os error 28)`. One wording for every message keelson shows.

/// The error's text without its `(os error N)` tail, first letter kept: `cluster.log.1: Is a directory`.
pub fn io_reason_keep_case(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The same, starting lower-case, to follow a colon: `no space left on device`.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = io_reason_keep_case(e);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_plain_sentences() {
        let e = std::io::Error::from_raw_os_error(28);
        assert_eq!(io_reason(&e), "no space left on device");
        assert_eq!(io_reason(&std::io::Error::other("Odd")), "odd");
        let named = std::io::Error::other("cluster.log.1: Is a directory (os error 21)");
        assert_eq!(io_reason_keep_case(&named), "cluster.log.1: Is a directory");
    }
}
