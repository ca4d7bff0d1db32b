//! Which private parameters are secret: until plugins can declare it, any whose name contains
//! password, secret, key or token (in any case). Their values never reach a log line or an event.

/// Whether a parameter of this name holds a secret.
pub fn is_secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "secret", "key", "token"]
        .iter()
        .any(|word| lower.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_say_secret_are_secret() {
        for name in [
            "password",
            "DbPassword",
            "client_secret",
            "TsigKeyFile",
            "ApiToken",
        ] {
            assert!(is_secret_param(name), "{name}");
        }
        for name in ["path", "port", "Address"] {
            assert!(!is_secret_param(name), "{name}");
        }
    }
}
