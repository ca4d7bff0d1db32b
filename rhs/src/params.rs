//! A resource's parameters as the plugin is given them: checked against the type's declared schema
//! (a refusal names the parameter, never a secret's value), declared defaults filled in, and kept
//! both as the JSON object and as the sorted key/value C strings of a `KeelsonParams`, alive as
//! long as the resource. A type that declares nothing gets its JSON unchanged. Not reading the
//! declaration (declared.rs) nor the check's rules (`keelson_types::TypeSchema`).

use keelson_abi::{KeelsonParam, KeelsonParams};
use keelson_types::TypeSchema;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::{c_char, CString};

/// The parameters of one open resource, in both forms the ABI passes.
pub struct ParamBlock {
    json: CString,
    _pairs: Vec<(CString, CString)>,
    items: Vec<KeelsonParam>,
}

impl ParamBlock {
    /// The block for `params_json` under `schema`: refused when a declared schema refuses it (or
    /// when it is not an object of text values); passed through unchanged for a type that
    /// declares nothing.
    pub fn prepare(schema: &TypeSchema, params_json: &str) -> Result<ParamBlock, String> {
        if !schema.declared {
            let pairs = text_pairs(params_json).unwrap_or_default();
            return ParamBlock::build(params_json.to_string(), pairs);
        }
        let given = text_pairs(params_json)?;
        schema.check(&given).map_err(|e| e.to_string())?;
        let filled = schema.with_defaults(&given);
        let json = serde_json::to_string(&filled).expect("a map of strings serializes");
        ParamBlock::build(json, filled)
    }

    fn build(json: String, pairs: BTreeMap<String, String>) -> Result<ParamBlock, String> {
        let json = CString::new(json).map_err(|_| "parameters contain a NUL byte".to_string())?;
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| match (CString::new(k.as_str()), CString::new(v)) {
                (Ok(k), Ok(v)) => Ok((k, v)),
                _ => Err(format!("parameter '{k}' contains a NUL byte")),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let items = pairs
            .iter()
            .map(|(k, v)| KeelsonParam {
                key: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        Ok(ParamBlock {
            json,
            _pairs: pairs,
            items,
        })
    }

    /// The JSON object, NUL-terminated.
    pub fn json(&self) -> *const c_char {
        self.json.as_ptr()
    }

    /// The `KeelsonParams` for `open2`/`validate2`; valid while this block lives.
    pub fn raw(&self) -> KeelsonParams {
        KeelsonParams {
            json: self.json.as_ptr(),
            items: self.items.as_ptr(),
            count: self.items.len(),
        }
    }
}

/// The JSON object as text values (numbers and booleans rendered, nulls left out); an empty text
/// is no parameters.
fn text_pairs(params_json: &str) -> Result<BTreeMap<String, String>, String> {
    if params_json.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let map = match serde_json::from_str::<Value>(params_json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err("parameters must be a JSON object".into()),
        Err(e) => return Err(format!("parameters are not valid JSON: {e}")),
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("parameter '{key}': expected a text value"))
            }
        };
        out.insert(key, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_types::{ParamKind, ParamSpec};
    use std::ffi::CStr;

    fn schema() -> TypeSchema {
        let spec = |name: &str, kind, default: Option<&str>| ParamSpec {
            name: name.into(),
            kind,
            required: false,
            default: default.map(str::to_string),
            secret: false,
            description: String::new(),
        };
        TypeSchema {
            declared: true,
            params: vec![
                spec(
                    "port",
                    ParamKind::Integer {
                        min: Some(1),
                        max: Some(65535),
                    },
                    None,
                ),
                spec("mode", ParamKind::String, Some("safe")),
            ],
            defaults: Default::default(),
        }
    }

    fn pairs(block: &ParamBlock) -> Vec<(String, String)> {
        let raw = block.raw();
        // SAFETY: `count` items at `items`, owned by `block`, with NUL-terminated strings.
        let items = unsafe { std::slice::from_raw_parts(raw.items, raw.count) };
        items
            .iter()
            .map(|p| {
                // SAFETY: as above.
                let (k, v) = unsafe { (CStr::from_ptr(p.key), CStr::from_ptr(p.value)) };
                (k.to_str().unwrap().into(), v.to_str().unwrap().into())
            })
            .collect()
    }

    #[test]
    fn declared_params_are_checked_and_defaulted_in_both_forms() {
        let block = ParamBlock::prepare(&schema(), r#"{"port":"80"}"#).unwrap();
        // SAFETY: NUL-terminated, owned by `block`.
        let json = unsafe { CStr::from_ptr(block.json()) }.to_str().unwrap();
        assert_eq!(json, r#"{"mode":"safe","port":"80"}"#);
        assert_eq!(
            pairs(&block),
            [("mode".into(), "safe".into()), ("port".into(), "80".into())]
        );
        let refused = |json: &str| ParamBlock::prepare(&schema(), json).err().unwrap();
        assert_eq!(
            refused(r#"{"port":"0"}"#),
            "parameter 'port'=\"0\": expected an integer in 1..=65535"
        );
        assert_eq!(
            refused(r#"{"colour":"red"}"#),
            "unknown parameter 'colour' (known: port, mode)"
        );
        assert_eq!(
            refused(r#"{"port":[1]}"#),
            "parameter 'port': expected a text value"
        );
        assert_eq!(refused("[1]"), "parameters must be a JSON object");
    }

    #[test]
    fn undeclared_params_pass_unchanged() {
        let json = r#"{"anything": 5, "b": "x"}"#;
        let block = ParamBlock::prepare(&TypeSchema::default(), json).unwrap();
        // SAFETY: NUL-terminated, owned by `block`.
        let passed = unsafe { CStr::from_ptr(block.json()) };
        assert_eq!(passed.to_str().unwrap(), json);
        assert_eq!(
            pairs(&block),
            [("anything".into(), "5".into()), ("b".into(), "x".into())]
        );
        let odd = ParamBlock::prepare(&TypeSchema::default(), "not json").unwrap();
        assert_eq!(odd.raw().count, 0, "the plugin's own validate decides");
    }
}
