//! The fencing properties among the cluster-wide ones: `FenceAgent` (the command run before a lost
//! node's groups are taken over; empty: no fencing), `FenceAgentOptions` (extra `key=value` lines
//! for its stdin), `FenceTimeout` and `FenceRetryDelay` (ms). Pure apart from looking at the
//! agent's file when a `set` names it: what a `set` stores, what the stored values mean, and how
//! `cluster get` shows them. Not running the agent (fence.rs) nor when to run it (ledger.rs).

use keelson_proto::view::ClusterProperty;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const FENCE_AGENT: &str = "FenceAgent";
pub const FENCE_AGENT_OPTIONS: &str = "FenceAgentOptions";
pub const FENCE_TIMEOUT: &str = "FenceTimeout";
pub const FENCE_RETRY_DELAY: &str = "FenceRetryDelay";

/// The fencing properties, in the order they are documented.
pub const NAMES: [&str; 4] = [
    FENCE_AGENT,
    FENCE_AGENT_OPTIONS,
    FENCE_TIMEOUT,
    FENCE_RETRY_DELAY,
];

/// (default, min, max) in ms.
const TIMEOUT_MS: (u32, u32, u32) = (60_000, 500, 600_000);
const RETRY_DELAY_MS: (u32, u32, u32) = (5_000, 100, 3_600_000);

/// Keys keelson writes itself on the agent's stdin: an option may not override them.
const RESERVED_KEYS: [&str; 4] = ["action", "plug", "port", "nodename"];

/// What the cluster's fencing properties say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceConfig {
    /// The agent's path and arguments (empty: no fencing).
    pub command: Vec<String>,
    /// Extra `key=value` lines for its stdin, in the order given.
    pub options: Vec<(String, String)>,
    pub timeout_ms: u32,
    pub retry_delay_ms: u32,
}

impl Default for FenceConfig {
    fn default() -> Self {
        FenceConfig {
            command: Vec::new(),
            options: Vec::new(),
            timeout_ms: TIMEOUT_MS.0,
            retry_delay_ms: RETRY_DELAY_MS.0,
        }
    }
}

/// True when `name` (canonical) is one of the fencing properties.
pub fn is_fence_property(name: &str) -> bool {
    NAMES.contains(&name)
}

impl FenceConfig {
    /// The configuration the stored `properties` describe (other properties ignored). The agent's
    /// file is not looked at: it was checked on the node that set it, and each attempt finds out
    /// whether it is there on the leader.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<FenceConfig, String> {
        let mut config = FenceConfig::default();
        for (name, text) in properties {
            match name.as_str() {
                FENCE_AGENT => config.command = words(text),
                FENCE_AGENT_OPTIONS => config.options = options(text)?,
                FENCE_TIMEOUT => config.timeout_ms = millis(name, text, TIMEOUT_MS)?,
                FENCE_RETRY_DELAY => config.retry_delay_ms = millis(name, text, RETRY_DELAY_MS)?,
                _ => {}
            }
        }
        Ok(config)
    }

    /// True when a FenceAgent is set.
    pub fn enabled(&self) -> bool {
        !self.command.is_empty()
    }

    /// `cluster get`'s row for the fencing property `name` (the text ones carry `text`).
    pub fn view(&self, name: &str) -> ClusterProperty {
        let number = |value: u32, (default, min, max): (u32, u32, u32)| ClusterProperty {
            default,
            max,
            min,
            value,
            text: None,
        };
        let text = |value: String| ClusterProperty {
            text: Some(value),
            ..ClusterProperty::default()
        };
        match name {
            FENCE_AGENT => text(self.command.join(" ")),
            FENCE_AGENT_OPTIONS => text(
                self.options
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            FENCE_TIMEOUT => number(self.timeout_ms, TIMEOUT_MS),
            _ => number(self.retry_delay_ms, RETRY_DELAY_MS),
        }
    }
}

/// The value a `cluster set` of the fencing property `name` to `text` stores, or one line naming
/// the property, the value and what is wrong. FenceAgent's first word must be an absolute path to
/// an executable file on this node; empty turns fencing off.
pub fn check(name: &str, text: &str) -> Result<String, String> {
    let shown = keelson_types::escape_for_log(text);
    match name {
        FENCE_AGENT => {
            let command = words(text);
            if let Some(path) = command.first() {
                check_executable(path).map_err(|why| {
                    format!(
                        "{FENCE_AGENT} '{shown}': {why} (its first word must be the absolute path \
                         of an executable file; empty turns fencing off)"
                    )
                })?;
            }
            Ok(command.join(" "))
        }
        FENCE_AGENT_OPTIONS => {
            options(text)?;
            Ok(text.trim().to_string())
        }
        FENCE_TIMEOUT => Ok(millis(name, text, TIMEOUT_MS)?.to_string()),
        FENCE_RETRY_DELAY => Ok(millis(name, text, RETRY_DELAY_MS)?.to_string()),
        _ => Err(format!("'{name}' is not a fencing property")),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Why `path` is not an executable file, if it is not.
fn check_executable(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(format!("'{path}' is not an absolute path"));
    }
    let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("'{path}': no such file"),
        _ => format!("'{path}': {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("'{path}' is not a file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(format!(
            "'{path}' is not executable (mode {:04o})",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// `key=value,key=value`: keys of letters, digits, `_` and `-`, none of keelson's own, values
/// without control characters; passwords only through `passwd_script`, since cluster properties
/// are shown by `cluster get` and written to the cluster and audit logs.
fn options(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|pair| {
            let shown = keelson_types::escape_for_log(pair);
            let bad = |why: &str| format!("{FENCE_AGENT_OPTIONS} item '{shown}': {why}");
            let (key, value) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| bad("not key=value"))?;
            let key_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            if key.is_empty() || !key.chars().all(key_ok) {
                return Err(bad("the key must be letters, digits, '_' or '-'"));
            }
            if RESERVED_KEYS.contains(&key) {
                return Err(bad("keelson writes this key itself"));
            }
            if key.ends_with("passwd") || key.ends_with("password") {
                return Err(bad(
                    "give the password as passwd_script=PATH (a script that prints it): cluster \
                     properties are shown and logged",
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(bad("the value holds a control character"));
            }
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

/// `text` as a number of ms within `min..=max`.
fn millis(name: &str, text: &str, (_, min, max): (u32, u32, u32)) -> Result<u32, String> {
    let shown = keelson_types::escape_for_log(text);
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let value = digits.then(|| text.parse::<u32>().ok()).flatten();
    match value {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(_) | None if digits => Err(format!(
            "{name} {shown} is out of range: it must be {min}..{max} ms"
        )),
        _ => Err(format!(
            "{name} '{shown}' is not a whole number: it must be {min}..{max} ms"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, mode: u32) -> String {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn an_agent_must_be_an_absolute_path_to_an_executable_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = script(dir.path(), "fence_ok", 0o755);
        assert_eq!(
            check(FENCE_AGENT, &format!("  {good}   --verbose ")).unwrap(),
            format!("{good} --verbose")
        );
        assert_eq!(check(FENCE_AGENT, "").unwrap(), "");
        let plain = script(dir.path(), "fence_plain", 0o644);
        let missing = dir.path().join("nope").to_string_lossy().into_owned();
        let folder = dir.path().to_string_lossy().into_owned();
        for (value, why) in [
            (
                "fence_ipmilan".to_string(),
                "'fence_ipmilan' is not an absolute path".to_string(),
            ),
            (missing.clone(), format!("'{missing}': no such file")),
            (
                plain.clone(),
                format!("'{plain}' is not executable (mode 0644)"),
            ),
            (folder.clone(), format!("'{folder}' is not a file")),
        ] {
            let e = check(FENCE_AGENT, &value).unwrap_err();
            assert!(
                e.starts_with(&format!("FenceAgent '{value}': {why}")),
                "{e}"
            );
        }
    }

    #[test]
    fn options_are_key_value_pairs_without_keelsons_keys_or_passwords() {
        let props: BTreeMap<String, String> = [
            (
                FENCE_AGENT.to_string(),
                "/usr/sbin/fence_ipmilan -v".to_string(),
            ),
            (
                FENCE_AGENT_OPTIONS.to_string(),
                "ipaddr=10.0.0.9, login=admin,passwd_script=/etc/k/pw".to_string(),
            ),
            (FENCE_RETRY_DELAY.to_string(), "250".to_string()),
        ]
        .into();
        let c = FenceConfig::from_properties(&props).unwrap();
        assert!(c.enabled());
        assert_eq!(c.command, ["/usr/sbin/fence_ipmilan", "-v"]);
        assert_eq!(
            c.options,
            [
                ("ipaddr".to_string(), "10.0.0.9".to_string()),
                ("login".to_string(), "admin".to_string()),
                ("passwd_script".to_string(), "/etc/k/pw".to_string()),
            ]
        );
        assert_eq!((c.timeout_ms, c.retry_delay_ms), (60_000, 250));
        for (text, why) in [
            ("ipaddr", "not key=value"),
            ("=x", "the key must be"),
            ("action=reboot", "keelson writes this key itself"),
            ("port=n9", "keelson writes this key itself"),
            ("passwd=hunter22", "passwd_script"),
            ("password=hunter22", "passwd_script"),
            ("snmp_priv_passwd=hunter22", "passwd_script"),
            ("ipaddr=a\tb", "control character"),
        ] {
            let e = check(FENCE_AGENT_OPTIONS, text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.starts_with("FenceAgentOptions item"), "{e}");
        }
        assert!(!FenceConfig::default().enabled());
    }

    #[test]
    fn times_are_checked_against_their_ranges() {
        assert_eq!(check(FENCE_TIMEOUT, "500").unwrap(), "500");
        assert_eq!(
            check(FENCE_TIMEOUT, "499").unwrap_err(),
            "FenceTimeout 499 is out of range: it must be 500..600000 ms"
        );
        assert_eq!(
            check(FENCE_RETRY_DELAY, "99999999999").unwrap_err(),
            "FenceRetryDelay 99999999999 is out of range: it must be 100..3600000 ms"
        );
        assert_eq!(
            check(FENCE_RETRY_DELAY, "soon").unwrap_err(),
            "FenceRetryDelay 'soon' is not a whole number: it must be 100..3600000 ms"
        );
        let c = FenceConfig::default();
        let v = c.view(FENCE_TIMEOUT);
        assert_eq!(
            (v.value, v.default, v.min, v.max),
            (60_000, 60_000, 500, 600_000)
        );
        assert_eq!(c.view(FENCE_AGENT).text.as_deref(), Some(""));
    }
}
