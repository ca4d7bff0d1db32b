//! The values of secret private parameters, so that no log line, event or refusal ever carries one:
//! a plugin that echoes its password in an error message gets it written as `***`. A parameter is
//! secret when its type declares it so, or when its name says so (keelson_types::is_secret_param);
//! the caller says which (it knows the type's schema). Values shorter than MIN_LEN are not searched
//! for (they would blank out ordinary words); the README says so. Not the audit trail, which never
//! records any parameter value at all (api.rs).

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
    /// Records the values of `params` of `resource` that `is_secret` names (replacing what it had).
    pub fn update(
        &mut self,
        resource: &str,
        params: &BTreeMap<String, String>,
        is_secret: impl Fn(&str) -> bool,
    ) {
        let values: Vec<String> = params
            .iter()
            .filter(|(k, v)| is_secret(k) && v.len() >= MIN_LEN)
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
        redact_values(text, self.by_resource.values().flatten())
    }
}

/// `text` with each of `values` (of at least MIN_LEN bytes) replaced by `***`: for what is said about
/// parameters no resource holds yet (a refused create).
pub fn redact_values<'a, 'v>(
    text: &'a str,
    values: impl IntoIterator<Item = &'v String>,
) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for value in values.into_iter().filter(|v| v.len() >= MIN_LEN) {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), "***"));
        }
    }
    out
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
        let named = keelson_types::is_secret_param;
        s.update(
            "db",
            &params(&[
                ("password", "hunter22"),
                ("ApiToken", "t0k3n!"),
                ("path", "/srv"),
            ]),
            named,
        );
        assert_eq!(
            s.redact("login hunter22 failed with t0k3n! at /srv"),
            "login *** failed with *** at /srv"
        );
        s.update("db", &params(&[("path", "/srv")]), named);
        assert_eq!(s.redact("hunter22"), "hunter22");
        s.update("x", &params(&[("secret", "abc")]), named);
        assert_eq!(s.redact("abc"), "abc", "shorter than MIN_LEN");
    }

    #[test]
    fn a_declared_secret_is_blanked_whatever_its_name() {
        let mut s = Secrets::default();
        s.update(
            "web",
            &params(&[("pin", "824613"), ("port", "8080")]),
            |k| k == "pin",
        );
        assert_eq!(s.redact("pin 824613 on 8080"), "pin *** on 8080");
        let values = ["824613".to_string(), "abc".to_string()];
        assert_eq!(
            redact_values("824613 abc", &values),
            "*** abc",
            "shorter than MIN_LEN"
        );
    }
}
