//! Syntax of `Prop=Value` arguments (common properties) and `--param k=v` options (private
//! parameters): split, name checked, duplicates refused, each error naming the argument. Not
//! validating values or names against what exists: the node service does that and answers Error.

use anyhow::{bail, Result};
use keelson_proto::Assignments;

/// Parses `Prop=Value` arguments. A property name is ASCII letters and digits (PascalCase, e.g.
/// `DeadlockTimeout`); the value is everything after the first `=` and may be empty.
pub fn properties(args: &[String]) -> Result<Assignments> {
    let mut out = Assignments::new();
    for arg in args {
        let Some((name, value)) = arg.split_once('=') else {
            bail!("bad property argument '{arg}': expected Prop=Value, e.g. DeadlockTimeout=5000");
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!(
                "bad property argument '{arg}': '{name}' is not a property name (PascalCase letters and digits, e.g. RestartThreshold)"
            );
        }
        push_once(&mut out, name, value, "property")?;
    }
    Ok(out)
}

/// Parses `--param k=v` values. A key is non-empty without whitespace; the value may be empty (an
/// empty string is a value: a parameter is removed with `--unset-param k`).
pub fn params(args: &[String]) -> Result<Assignments> {
    let mut out = Assignments::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("bad --param '{arg}': expected KEY=VALUE, e.g. --param path=/srv/data");
        };
        check_key(key, &format!("--param '{arg}'"))?;
        push_once(&mut out, key, value, "parameter")?;
    }
    Ok(out)
}

/// Parses `--unset-param k` values: keys as for `--param`, each once, none also being set.
pub fn unset_params(args: &[String], set: &Assignments) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for key in args {
        check_key(key, &format!("--unset-param '{key}'"))?;
        if out.contains(key) {
            bail!("parameter '{key}' is given more than once");
        }
        if set.iter().any(|(k, _)| k == key) {
            bail!("parameter '{key}' is both set with --param and removed with --unset-param");
        }
        out.push(key.clone());
    }
    Ok(out)
}

fn check_key(key: &str, arg: &str) -> Result<()> {
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        bail!("bad {arg}: '{key}' is not a parameter name (non-empty, no spaces)");
    }
    Ok(())
}

fn push_once(out: &mut Assignments, name: &str, value: &str, what: &str) -> Result<()> {
    if out.iter().any(|(n, _)| n == name) {
        bail!("{what} '{name}' is given more than once");
    }
    out.push((name.to_string(), value.to_string()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn pair(n: &str, val: &str) -> (String, String) {
        (n.to_string(), val.to_string())
    }

    #[test]
    fn properties_split_at_the_first_equals_and_keep_order() {
        let got = properties(&v(&["RestartThreshold=3", "Description=a=b", "Note="])).unwrap();
        assert_eq!(
            got,
            vec![
                pair("RestartThreshold", "3"),
                pair("Description", "a=b"),
                pair("Note", "")
            ]
        );
    }

    #[test]
    fn property_errors_name_the_argument() {
        let e = properties(&v(&["DeadlockTimeout"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'DeadlockTimeout'") && e.contains("Prop=Value"),
            "{e}"
        );
        let e = properties(&v(&["=5"])).unwrap_err().to_string();
        assert!(e.contains("'=5'"), "{e}");
        let e = properties(&v(&["Dead lock=5"])).unwrap_err().to_string();
        assert!(e.contains("'Dead lock=5'"), "{e}");
        let e = properties(&v(&["A=1", "A=2"])).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn values_are_not_validated_here() {
        let got = properties(&v(&["DeadlockTimeout=abc", "RestartThreshold=-1"])).unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn params_accept_any_key_without_spaces() {
        let got = params(&v(&["path=/srv", "fault.kind=hang", "empty="])).unwrap();
        assert_eq!(
            got,
            vec![
                pair("path", "/srv"),
                pair("fault.kind", "hang"),
                pair("empty", "")
            ]
        );
    }

    #[test]
    fn param_errors_name_the_option() {
        let e = params(&v(&["path"])).unwrap_err().to_string();
        assert!(e.starts_with("bad --param 'path'"), "{e}");
        let e = params(&v(&["=x"])).unwrap_err().to_string();
        assert!(e.starts_with("bad --param '=x'"), "{e}");
        let e = params(&v(&["a=1", "a=2"])).unwrap_err().to_string();
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn unset_params_are_keys_given_once_and_not_also_set() {
        let set = params(&v(&["a=1"])).unwrap();
        assert_eq!(unset_params(&v(&["b", "c"]), &set).unwrap(), v(&["b", "c"]));
        let e = unset_params(&v(&["b", "b"]), &set).unwrap_err().to_string();
        assert!(e.contains("'b' is given more than once"), "{e}");
        let e = unset_params(&v(&["a"]), &set).unwrap_err().to_string();
        assert!(e.contains("'a' is both set"), "{e}");
        let e = unset_params(&v(&["x y"]), &set).unwrap_err().to_string();
        assert!(e.starts_with("bad --unset-param 'x y'"), "{e}");
    }
}
