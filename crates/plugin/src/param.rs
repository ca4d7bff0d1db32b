//! One declared parameter of a Rust resource type, written as a `const` next to the `Resource`
//! impl (`Param::integer("port").min(1).max(65535).required()`), and its shared form
//! (`keelson_types::ParamSpec`) for the schema check. Not the C arrays the descriptor points at
//! (declared.rs) nor the check itself (`keelson_types::TypeSchema::check`).

use keelson_types::{ParamKind, ParamSpec};

/// The kind of a [`Param`], in a form that can live in a `const`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer { min: Option<i64>, max: Option<i64> },
    Boolean,
    Enum(&'static [&'static str]),
    Path,
    Address,
}

/// One declared parameter. Build it with a kind constructor and chain the rest:
///
/// ```
/// use keelson_plugin::Param;
/// const PARAMS: &[Param] = &[
///     Param::integer("port").min(1).max(65535).required().describe("TCP port to listen on"),
///     Param::one_of("mode", &["fast", "safe"]).default("safe"),
///     Param::string("password").secret(),
/// ];
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub secret: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
}

impl Param {
    const fn of(name: &'static str, kind: Kind) -> Param {
        Param {
            name,
            kind,
            required: false,
            secret: false,
            default: None,
            description: "",
        }
    }

    /// Any text.
    pub const fn string(name: &'static str) -> Param {
        Param::of(name, Kind::String)
    }

    /// A decimal integer (bounded with [`min`](Param::min) and [`max`](Param::max)).
    pub const fn integer(name: &'static str) -> Param {
        Param::of(
            name,
            Kind::Integer {
                min: None,
                max: None,
            },
        )
    }

    /// `true`/`false`, `1`/`0`, `yes`/`no`.
    pub const fn boolean(name: &'static str) -> Param {
        Param::of(name, Kind::Boolean)
    }

    /// Exactly one of `options`.
    pub const fn one_of(name: &'static str, options: &'static [&'static str]) -> Param {
        Param::of(name, Kind::Enum(options))
    }

    /// An absolute file-system path.
    pub const fn path(name: &'static str) -> Param {
        Param::of(name, Kind::Path)
    }

    /// An IPv4 or IPv6 address.
    pub const fn address(name: &'static str) -> Param {
        Param::of(name, Kind::Address)
    }

    /// The smallest value an integer may take (a compile error on other kinds in a `const`).
    pub const fn min(self, min: i64) -> Param {
        match self.kind {
            Kind::Integer { max, .. } => Param {
                kind: Kind::Integer {
                    min: Some(min),
                    max,
                },
                ..self
            },
            _ => panic!("min() applies to Param::integer only"),
        }
    }

    /// The largest value an integer may take (a compile error on other kinds in a `const`).
    pub const fn max(self, max: i64) -> Param {
        match self.kind {
            Kind::Integer { min, .. } => Param {
                kind: Kind::Integer {
                    min,
                    max: Some(max),
                },
                ..self
            },
            _ => panic!("max() applies to Param::integer only"),
        }
    }

    /// A resource must set it (unless it has a default).
    pub const fn required(self) -> Param {
        Param {
            required: true,
            ..self
        }
    }

    /// Never echoed, logged or audited in clear.
    pub const fn secret(self) -> Param {
        Param {
            secret: true,
            ..self
        }
    }

    /// The value the plugin is given when the resource sets none.
    pub const fn default(self, value: &'static str) -> Param {
        Param {
            default: Some(value),
            ..self
        }
    }

    /// One line for `keelson plugin describe`.
    pub const fn describe(self, description: &'static str) -> Param {
        Param {
            description,
            ..self
        }
    }

    /// The shared form the schema check and the host use.
    pub fn spec(&self) -> ParamSpec {
        let kind = match self.kind {
            Kind::String => ParamKind::String,
            Kind::Integer { min, max } => ParamKind::Integer { min, max },
            Kind::Boolean => ParamKind::Boolean,
            Kind::Enum(options) => ParamKind::Enum {
                options: options.iter().map(|o| o.to_string()).collect(),
            },
            Kind::Path => ParamKind::Path,
            Kind::Address => ParamKind::Address,
        };
        ParamSpec {
            name: self.name.to_string(),
            kind,
            required: self.required,
            default: self.default.map(str::to_string),
            secret: self.secret,
            description: self.description.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: Param = Param::integer("port")
        .min(1)
        .max(65535)
        .required()
        .describe("TCP port");

    #[test]
    fn a_const_declaration_becomes_the_shared_spec() {
        let spec = PORT.spec();
        assert_eq!(spec.name, "port");
        assert_eq!(
            spec.kind,
            ParamKind::Integer {
                min: Some(1),
                max: Some(65535)
            }
        );
        assert!(spec.required && !spec.secret);
        assert_eq!(spec.description, "TCP port");
        let mode = Param::one_of("mode", &["a", "b"])
            .default("b")
            .secret()
            .spec();
        assert_eq!(
            mode.kind,
            ParamKind::Enum {
                options: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(mode.default.as_deref(), Some("b"));
        assert!(mode.secret && !mode.required);
    }

    #[test]
    #[should_panic(expected = "min() applies to Param::integer only")]
    fn a_bound_on_a_non_integer_is_refused() {
        let _ = Param::string("x").min(1);
    }
}
