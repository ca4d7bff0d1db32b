//! A resource's private parameters, parsed from the JSON object the host passes, with their text
//! form for the schema check and declared defaults filled in. Not the check itself
//! (`keelson_types::TypeSchema`) nor any type's own rules (its `validate`/`open`).

use keelson_types::TypeSchema;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Private parameters: a JSON object. Values given on a command line arrive as strings, so the
/// typed getters accept both `5` and `"5"`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(Map<String, Value>);

impl Params {
    /// Parses a JSON object; an empty string is an empty object.
    pub fn parse(json: &str) -> Result<Params, String> {
        if json.trim().is_empty() {
            return Ok(Params::default());
        }
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Ok(Params(map)),
            Ok(other) => Err(format!("parameters must be a JSON object, got {other}")),
            Err(e) => Err(format!("parameters are not valid JSON: {e}")),
        }
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Every parameter.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// `key` as a string; numbers and booleans are rendered as text.
    pub fn str(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// `key` as a non-negative integer, or `default` when absent; an error names the key otherwise.
    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("parameter {key}={n}: expected a non-negative integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("parameter {key}={s:?}: expected a non-negative integer")),
            Some(other) => Err(format!(
                "parameter {key}={other}: expected a non-negative integer"
            )),
        }
    }

    /// `key` as a boolean (`true/false/1/0/yes/no`), or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => {
                let text = match other {
                    Value::String(s) => s.to_ascii_lowercase(),
                    v => v.to_string(),
                };
                match text.as_str() {
                    "true" | "1" | "yes" => Ok(true),
                    "false" | "0" | "no" => Ok(false),
                    _ => Err(format!("parameter {key}={other}: expected true or false")),
                }
            }
        }
    }

    /// Fails naming the first key not in `known`, so typos are caught at open/validate.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(format!(
                "unknown parameter '{k}' (known: {})",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}

impl Params {
    /// Every parameter as text, as the schema checks it (and as the host always sends them):
    /// numbers and booleans rendered, JSON nulls left out.
    pub fn text_map(&self) -> BTreeMap<String, String> {
        self.0
            .keys()
            .filter_map(|k| self.str(k).map(|v| (k.clone(), v)))
            .collect()
    }

    /// Checks these parameters against `schema` and returns them with its defaults filled in; an
    /// undeclared schema accepts them as they are.
    pub fn checked(mut self, schema: &TypeSchema) -> Result<Params, String> {
        schema.check(&self.text_map()).map_err(|e| e.to_string())?;
        for spec in &schema.params {
            if let (Some(default), None | Some(Value::Null)) =
                (&spec.default, self.0.get(&spec.name))
            {
                self.0
                    .insert(spec.name.clone(), Value::String(default.clone()));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_accept_strings_and_name_bad_keys() {
        let p = Params::parse(r#"{"a":"5","b":7,"c":"x","d":"yes"}"#).unwrap();
        assert_eq!(p.u64_or("a", 0).unwrap(), 5);
        assert_eq!(p.u64_or("b", 0).unwrap(), 7);
        assert_eq!(p.u64_or("zz", 3).unwrap(), 3);
        assert!(p.u64_or("c", 0).unwrap_err().contains("c="));
        assert!(p.bool_or("d", false).unwrap());
        assert!(p
            .reject_unknown(&["a", "b", "c"])
            .unwrap_err()
            .contains("'d'"));
        assert!(Params::parse("[1]").is_err());
        assert!(Params::parse("{").is_err());
        assert_eq!(Params::parse("").unwrap(), Params::default());
    }

    #[test]
    fn checked_params_are_refused_by_name_or_get_their_defaults() {
        use keelson_types::{ParamKind, ParamSpec};
        let schema = TypeSchema {
            declared: true,
            params: vec![ParamSpec {
                name: "port".into(),
                kind: ParamKind::Integer {
                    min: Some(1),
                    max: None,
                },
                required: false,
                default: Some("80".into()),
                secret: false,
                description: String::new(),
            }],
            defaults: Default::default(),
        };
        let filled = Params::parse("{}").unwrap().checked(&schema).unwrap();
        assert_eq!(filled.u64_or("port", 0).unwrap(), 80);
        let given = Params::parse(r#"{"port":8080}"#)
            .unwrap()
            .checked(&schema)
            .unwrap();
        assert_eq!(given.u64_or("port", 0).unwrap(), 8080);
        let err = Params::parse(r#"{"port":"0"}"#)
            .unwrap()
            .checked(&schema)
            .unwrap_err();
        assert_eq!(err, "parameter 'port'=\"0\": expected an integer in 1..");
        let err = Params::parse(r#"{"colour":"red"}"#)
            .unwrap()
            .checked(&schema)
            .unwrap_err();
        assert_eq!(err, "unknown parameter 'colour' (known: port)");
        let anything = Params::parse(r#"{"colour":"red"}"#).unwrap();
        assert!(anything.checked(&TypeSchema::default()).is_ok());
    }
}
