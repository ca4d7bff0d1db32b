//! The parameters of `keelson plugin test`: the `--param K=V` set, the `--expect-invalid K=V`
//! cases and the `--second-param K=V` overrides, each parsed once with one error naming the flag
//! and the pair. Not what the plugin makes of them (it gets them as a JSON object of strings).

use anyhow::{bail, Result};
use std::collections::BTreeMap;

/// A set of private parameters, every value a string (as the plugin receives them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamSet(BTreeMap<String, String>);

/// One `K=V` pair from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub key: String,
    pub value: String,
}

impl Pair {
    /// Parses `K=V` given to `--{flag}`; the value may contain `=`.
    pub fn parse(flag: &str, pair: &str) -> Result<Pair> {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--{flag} '{pair}': expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--{flag} '{pair}': the key is empty");
        }
        Ok(Pair {
            key: k.to_string(),
            value: v.to_string(),
        })
    }

    pub fn parse_all(flag: &str, pairs: &[String]) -> Result<Vec<Pair>> {
        pairs.iter().map(|p| Pair::parse(flag, p)).collect()
    }
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

impl ParamSet {
    /// The set of `--param` pairs (a later pair with the same key wins).
    pub fn from_pairs(pairs: &[Pair]) -> ParamSet {
        ParamSet::default().with(pairs)
    }

    /// This set with each of `pairs` set (added or replaced).
    pub fn with(&self, pairs: &[Pair]) -> ParamSet {
        let mut map = self.0.clone();
        for pair in pairs {
            map.insert(pair.key.clone(), pair.value.clone());
        }
        ParamSet(map)
    }

    /// The set as the JSON object of strings the plugin receives.
    pub fn to_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(flag: &str, list: &[&str]) -> Result<Vec<Pair>> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Pair::parse_all(flag, &owned)
    }

    #[test]
    fn params_become_a_json_object_and_bad_pairs_are_named() {
        let set = ParamSet::from_pairs(&pairs("param", &["a=1", "b=x=y"]).unwrap());
        assert_eq!(set.to_json(), r#"{"a":"1","b":"x=y"}"#);
        assert_eq!(ParamSet::default().to_json(), "{}");
        assert_eq!(
            pairs("param", &["oops"]).unwrap_err().to_string(),
            "--param 'oops': expected KEY=VALUE"
        );
        assert!(pairs("expect-invalid", &["=v"])
            .unwrap_err()
            .to_string()
            .contains("--expect-invalid '=v': the key is empty"));
    }

    #[test]
    fn a_case_replaces_one_key_and_keeps_the_rest() {
        let base = ParamSet::from_pairs(&pairs("param", &["port=80", "host=a"]).unwrap());
        let case = Pair::parse("expect-invalid", "port=0").unwrap();
        assert_eq!(case.to_string(), "port=0");
        assert_eq!(
            base.with(std::slice::from_ref(&case)).to_json(),
            r#"{"host":"a","port":"0"}"#
        );
        assert_eq!(base.to_json(), r#"{"host":"a","port":"80"}"#, "unchanged");
    }
}
