//! The values of secret private parameters, so that no log line or event ever carries one: a plugin
//! that echoes its password in an error message gets it written as `***`. A parameter is secret when
//! its name says so (keelson_types::is_secret_param) until plugins can declare it. Values shorter
//! than MIN_LEN are not searched for (they would blank out ordinary words); the README says so.
//! Not the audit trail, which never records any parameter value at all (api.rs).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// Shorter secret values are not redacted from free text.
pub const MIN_LEN: usize = 4;

/// Secret values by resource name.
#[derive(Default)]
pub struct Secrets {
    by_resource: HashMap<String, Vec<String>>,
}

impl Secrets {
    /// Records the secret values among `params` of `resource` (replacing what it had).
    pub fn update(&mut self, resource: &str, params: &BTreeMap<String, String>) {
        let values: Vec<String> = params
            .iter()
            .filter(|(k, v)| keelson_types::is_secret_param(k) && v.len() >= MIN_LEN)
            .map(|(_, v)| v.clone())
            .collect();
        if values.is_empty() {
            self.by_resource.remove(resource);
        } else {
            self.by_resource.insert(resource.to_string(), values);
        }
    }

    /// Forgets a deleted resource.
    pub fn remove(&mut self, resource: &str) {
        self.by_resource.remove(resource);
    }

    /// `text` with every known secret value replaced by `***`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for value in self.by_resource.values().flatten() {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), "***"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secret_values_are_blanked_and_others_are_not() {
        let mut s = Secrets::default();
        s.update(
            "db",
            &params(&[
                ("password", "hunter22"),
                ("ApiToken", "t0k3n!"),
                ("path", "/srv"),
            ]),
        );
        assert_eq!(
            s.redact("login hunter22 failed with t0k3n! at /srv"),
            "login *** failed with *** at /srv"
        );
        s.update("db", &params(&[("path", "/srv")]));
        assert_eq!(s.redact("hunter22"), "hunter22");
        s.update("x", &params(&[("secret", "abc")]));
        assert_eq!(s.redact("abc"), "abc", "shorter than MIN_LEN");
    }
}
