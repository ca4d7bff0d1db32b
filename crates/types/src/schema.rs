//! A resource type's declared parameters (name, type, required, default, secret, description) and
//! its own defaults for poll intervals and timeouts, with the pure check every side runs: the Rust
//! SDK before `validate`, rhs before `open`, rcm before it commits a create or a `resource set`.
//! Not the C layout (crates/abi) nor how a type's defaults are merged with a resource's properties
//! (rcm's catalogue). The derives are plain (no flattening, tags or skipped fields) because these
//! types travel in the host protocol's postcard frames; views render them for JSON.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// The type of one parameter's value. Values always travel as strings; the type says which
/// strings are valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// Any text.
    String,
    /// A decimal integer, within `min..=max` when given.
    Integer { min: Option<i64>, max: Option<i64> },
    /// `true`/`false`, `1`/`0` or `yes`/`no`, in any case.
    Boolean,
    /// One of `options`, exactly.
    Enum { options: Vec<String> },
    /// An absolute file-system path.
    Path,
    /// An IPv4 or IPv6 address.
    Address,
}

impl ParamKind {
    /// The kind's name as `plugin describe` prints it.
    pub fn name(&self) -> &'static str {
        match self {
            ParamKind::String => "string",
            ParamKind::Integer { .. } => "integer",
            ParamKind::Boolean => "boolean",
            ParamKind::Enum { .. } => "enum",
            ParamKind::Path => "path",
            ParamKind::Address => "address",
        }
    }

    /// Why `value` is not of this kind, or None when it is.
    pub fn refuse(&self, value: &str) -> Option<String> {
        match self {
            ParamKind::String => None,
            ParamKind::Integer { min, max } => match value.trim().parse::<i64>() {
                Err(_) => Some("expected an integer".into()),
                Ok(n) if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) => {
                    Some(format!("expected an integer in {}", range_text(*min, *max)))
                }
                Ok(_) => None,
            },
            ParamKind::Boolean => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "false" | "1" | "0" | "yes" | "no" => None,
                _ => Some("expected true or false (or 1/0, yes/no)".into()),
            },
            ParamKind::Enum { options } => (!options.iter().any(|o| o == value))
                .then(|| format!("expected one of {}", options.join(", "))),
            ParamKind::Path => (!value.starts_with('/') || value.contains('\0'))
                .then(|| "expected an absolute path".into()),
            ParamKind::Address => value
                .trim()
                .parse::<IpAddr>()
                .is_err()
                .then(|| "expected an IPv4 or IPv6 address".into()),
        }
    }
}

fn range_text(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a}..={b}"),
        (Some(a), None) => format!("{a}.."),
        (None, Some(b)) => format!("..={b}"),
        (None, None) => "any".into(),
    }
}

/// One declared parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub kind: ParamKind,
    pub required: bool,
    /// The value the plugin sees when the resource sets none.
    pub default: Option<String>,
    /// Never echoed, logged or audited in clear.
    pub secret: bool,
    /// One line for `plugin describe`.
    pub description: String,
}

/// A type's own defaults for the resource properties of the same names, used where a resource
/// sets none (WSFC's resource-type properties). None: keelson's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeDefaults {
    pub looks_alive_poll_interval_ms: Option<u64>,
    pub is_alive_poll_interval_ms: Option<u64>,
    pub pending_timeout_ms: Option<u64>,
    pub deadlock_timeout_ms: Option<u64>,
}

/// What a type declares about its parameters. A type that declares nothing (`declared` false:
/// an ABI-1 plugin without a schema) accepts any parameters, and its own `validate` decides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeSchema {
    pub declared: bool,
    pub params: Vec<ParamSpec>,
    pub defaults: TypeDefaults,
}

/// Why parameters were refused: names the parameter, never a secret's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaError {
    Unknown {
        name: String,
        known: Vec<String>,
    },
    Missing {
        name: String,
    },
    Invalid {
        name: String,
        shown: String,
        reason: String,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Unknown { name, known } if known.is_empty() => {
                write!(
                    f,
                    "unknown parameter '{name}' (the type takes no parameters)"
                )
            }
            SchemaError::Unknown { name, known } => {
                write!(
                    f,
                    "unknown parameter '{name}' (known: {})",
                    known.join(", ")
                )
            }
            SchemaError::Missing { name } => write!(f, "missing required parameter '{name}'"),
            SchemaError::Invalid {
                name,
                shown,
                reason,
            } => write!(f, "parameter '{name}'={shown}: {reason}"),
        }
    }
}

impl std::error::Error for SchemaError {}

impl TypeSchema {
    /// The declared parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether the value of parameter `name` must be kept out of logs, events and audit lines:
    /// declared secret, or (for a type that declares nothing) named like a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        match self.param(name) {
            Some(p) => p.secret || crate::is_secret_param(name),
            None => crate::is_secret_param(name),
        }
    }

    /// Checks a resource's whole parameter set: no unknown names, every required one present
    /// (or defaulted), every value of its kind. The first problem, in parameter order, is returned.
    pub fn check(&self, params: &BTreeMap<String, String>) -> Result<(), SchemaError> {
        if !self.declared {
            return Ok(());
        }
        if let Some(name) = params.keys().find(|k| self.param(k).is_none()) {
            return Err(SchemaError::Unknown {
                name: name.clone(),
                known: self.params.iter().map(|p| p.name.clone()).collect(),
            });
        }
        for spec in &self.params {
            match params.get(&spec.name) {
                None if spec.required && spec.default.is_none() => {
                    return Err(SchemaError::Missing {
                        name: spec.name.clone(),
                    })
                }
                None => {}
                Some(value) => {
                    if let Some(reason) = spec.kind.refuse(value) {
                        let shown = if spec.secret || crate::is_secret_param(&spec.name) {
                            "<secret>".to_string()
                        } else {
                            format!("{value:?}")
                        };
                        return Err(SchemaError::Invalid {
                            name: spec.name.clone(),
                            shown,
                            reason,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// `params` with the declared defaults of the parameters it does not set: what the plugin is
    /// given.
    pub fn with_defaults(&self, params: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut out = params.clone();
        for spec in &self.params {
            if let Some(default) = &spec.default {
                out.entry(spec.name.clone())
                    .or_insert_with(|| default.clone());
            }
        }
        out
    }

    /// Checks the declaration itself (for the SDK and rhs): unique names that pass
    /// `check_param_key`, defaults of their own kind, enums with options, min <= max.
    pub fn check_declaration(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for spec in &self.params {
            crate::check_param_key(&spec.name)
                .map_err(|e| format!("declared parameter '{}': {e}", spec.name))?;
            if !seen.insert(spec.name.as_str()) {
                return Err(format!("parameter '{}' is declared twice", spec.name));
            }
            match &spec.kind {
                ParamKind::Enum { options } if options.is_empty() => {
                    return Err(format!("enum parameter '{}' has no options", spec.name))
                }
                ParamKind::Integer {
                    min: Some(a),
                    max: Some(b),
                } if a > b => {
                    return Err(format!("integer parameter '{}' has min > max", spec.name))
                }
                _ => {}
            }
            if let Some(reason) = spec.default.as_deref().and_then(|d| spec.kind.refuse(d)) {
                return Err(format!(
                    "the default of parameter '{}' is not valid: {reason}",
                    spec.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: ParamKind) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            kind,
            required: false,
            default: None,
            secret: false,
            description: String::new(),
        }
    }

    fn web() -> TypeSchema {
        let mut port = spec(
            "port",
            ParamKind::Integer {
                min: Some(1),
                max: Some(65535),
            },
        );
        port.required = true;
        let mut password = spec("password", ParamKind::String);
        password.secret = true;
        let mut mode = spec(
            "mode",
            ParamKind::Enum {
                options: vec!["fast".into(), "safe".into()],
            },
        );
        mode.default = Some("safe".into());
        TypeSchema {
            declared: true,
            params: vec![
                port,
                password,
                mode,
                spec("root", ParamKind::Path),
                spec("addr", ParamKind::Address),
                spec("tls", ParamKind::Boolean),
            ],
            defaults: TypeDefaults::default(),
        }
    }

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn refusals_name_the_parameter_and_the_rule() {
        let s = web();
        assert!(s.check(&params(&[("port", "80")])).is_ok());
        let cases = [
            (
                vec![("port", "0")],
                "parameter 'port'=\"0\": expected an integer in 1..=65535",
            ),
            (
                vec![("port", "abc")],
                "parameter 'port'=\"abc\": expected an integer",
            ),
            (vec![], "missing required parameter 'port'"),
            (
                vec![("port", "1"), ("colour", "red")],
                "unknown parameter 'colour' (known: port, password, mode, root, addr, tls)",
            ),
            (
                vec![("port", "1"), ("mode", "slow")],
                "parameter 'mode'=\"slow\": expected one of fast, safe",
            ),
            (
                vec![("port", "1"), ("root", "rel/x")],
                "parameter 'root'=\"rel/x\": expected an absolute path",
            ),
            (
                vec![("port", "1"), ("addr", "192.0.2.300")],
                "parameter 'addr'=\"192.0.2.300\": expected an IPv4 or IPv6 address",
            ),
            (
                vec![("port", "1"), ("tls", "maybe")],
                "parameter 'tls'=\"maybe\": expected true or false (or 1/0, yes/no)",
            ),
        ];
        for (given, want) in cases {
            assert_eq!(s.check(&params(&given)).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn a_secret_value_is_never_shown() {
        let mut s = web();
        s.params[1].kind = ParamKind::Integer {
            min: None,
            max: None,
        };
        let err = s
            .check(&params(&[("port", "1"), ("password", "hunter2")]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "parameter 'password'=<secret>: expected an integer");
        assert!(s.is_secret("password") && !s.is_secret("port"));
    }

    #[test]
    fn undeclared_types_accept_anything_and_defaults_fill_in() {
        let none = TypeSchema::default();
        assert!(none.check(&params(&[("anything", "x")])).is_ok());
        let filled = web().with_defaults(&params(&[("port", "8")]));
        assert_eq!(filled.get("mode").map(String::as_str), Some("safe"));
    }

    #[test]
    fn bad_declarations_are_refused() {
        let mut s = web();
        s.params[2].default = Some("slow".into());
        assert!(s
            .check_declaration()
            .unwrap_err()
            .contains("default of parameter 'mode'"));
        let mut s = web();
        s.params.push(spec("port", ParamKind::String));
        assert!(s
            .check_declaration()
            .unwrap_err()
            .contains("declared twice"));
        assert!(web().check_declaration().is_ok());
    }

    #[test]
    fn the_schema_round_trips_through_json() {
        let s = web();
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains(r#""integer":{"min":1,"max":65535}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<TypeSchema>(&text).unwrap(), s);
    }
}
