//! A resource's parameters for the ocf type: its own (Agent, OcfRoot, the per-action timeout
//! overrides) and the agent's (everything else, passed as OCF_RESKEY_<name>), the agent resolved
//! on disk, and the OCF environment built from them. Not the meta-data checks (metadata.rs).

use crate::runner::Runner;
use keelson_plugin::{Error, Params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The parameters the type itself reads; every other one belongs to the agent.
pub const OWN_PARAMS: &[&str] = &[
    "Agent",
    "OcfRoot",
    "StartTimeout",
    "StopTimeout",
    "MonitorTimeout",
    "ValidateTimeout",
];

/// Where `HA_RSCTMP` points when the host gives no state directory (validation).
const DEFAULT_RSCTMP: &str = "/run/resource-agents";

/// One resource's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub provider: String,
    pub agent: String,
    pub ocf_root: PathBuf,
    /// Action -> deadline given by the resource (ms parameters), over the meta-data's.
    pub timeouts: BTreeMap<String, Duration>,
    /// The agent's parameters, by their OCF names.
    pub reskeys: BTreeMap<String, String>,
}

impl Config {
    pub fn parse(params: &Params) -> Result<Config, Error> {
        let text = params.text_map();
        let spec = text.get("Agent").ok_or_else(|| {
            Error::invalid(
                "ocf: missing required parameter 'Agent' (provider:agent, e.g. heartbeat:Dummy)",
            )
        })?;
        let (provider, agent) = split_agent(spec)?;
        let ocf_root = PathBuf::from(text.get("OcfRoot").map_or("/usr/lib/ocf", String::as_str));
        if !ocf_root.is_absolute() {
            return Err(Error::invalid(format!(
                "ocf: parameter 'OcfRoot'={:?}: expected an absolute path",
                ocf_root.display()
            )));
        }
        let mut timeouts = BTreeMap::new();
        for (param, action) in [
            ("StartTimeout", "start"),
            ("StopTimeout", "stop"),
            ("MonitorTimeout", "monitor"),
            ("ValidateTimeout", "validate-all"),
        ] {
            if let Some(ms) = text.get(param) {
                timeouts.insert(action.to_string(), parse_ms(param, ms)?);
            }
        }
        let reskeys = text
            .into_iter()
            .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_str()))
            .collect();
        Ok(Config {
            provider,
            agent,
            ocf_root,
            timeouts,
            reskeys,
        })
    }

    /// `ocf provider:agent`, the prefix of every message about this agent.
    pub fn label(&self) -> String {
        format!("ocf {}:{}", self.provider, self.agent)
    }

    /// Where the agent must be.
    pub fn agent_path(&self) -> PathBuf {
        self.ocf_root
            .join("resource.d")
            .join(&self.provider)
            .join(&self.agent)
    }

    /// The agent, checked to be an executable file (else NOT_INSTALLED with the path looked at),
    /// with the environment Pacemaker gives an agent.
    pub fn runner(&self, instance: Option<&str>, rsctmp: Option<&Path>) -> Result<Runner, Error> {
        let path = self.agent_path();
        if !is_executable(&path) {
            return Err(Error::not_installed(format!(
                "{}: no executable agent at {}",
                self.label(),
                path.display()
            )));
        }
        let root = self.ocf_root.display().to_string();
        let mut env = BTreeMap::from([
            ("OCF_ROOT".to_string(), root.clone()),
            (
                "OCF_FUNCTIONS_DIR".to_string(),
                format!("{root}/lib/heartbeat"),
            ),
            (
                "OCF_RESOURCE_INSTANCE".to_string(),
                sanitise(instance.unwrap_or("default")),
            ),
            ("OCF_RESOURCE_TYPE".to_string(), self.agent.clone()),
            ("OCF_RESOURCE_PROVIDER".to_string(), self.provider.clone()),
            ("OCF_RA_VERSION_MAJOR".to_string(), "1".to_string()),
            ("OCF_RA_VERSION_MINOR".to_string(), "0".to_string()),
            (
                "HA_RSCTMP".to_string(),
                rsctmp.map_or(DEFAULT_RSCTMP.to_string(), |p| p.display().to_string()),
            ),
            (
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
        ]);
        for (name, value) in &self.reskeys {
            env.insert(format!("OCF_RESKEY_{name}"), value.clone());
        }
        Ok(Runner { path, env })
    }
}

/// `provider:agent` or `ocf:provider:agent`; names without `/` and not `.`/`..`.
fn split_agent(spec: &str) -> Result<(String, String), Error> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (provider, agent) = match parts.as_slice() {
        [provider, agent] => (*provider, *agent),
        ["ocf", provider, agent] => (*provider, *agent),
        [class, _, _] => {
            return Err(Error::invalid(format!(
                "ocf: parameter 'Agent'={spec:?}: class '{class}' is not supported (only ocf)"
            )))
        }
        _ => {
            return Err(Error::invalid(format!(
                "ocf: parameter 'Agent'={spec:?}: expected provider:agent or ocf:provider:agent"
            )))
        }
    };
    for name in [provider, agent] {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(Error::invalid(format!(
                "ocf: parameter 'Agent'={spec:?}: {name:?} is not a provider or agent name"
            )));
        }
    }
    Ok((provider.to_string(), agent.to_string()))
}

fn parse_ms(param: &str, text: &str) -> Result<Duration, Error> {
    match text.trim().parse::<u64>() {
        Ok(ms) if (1..=86_400_000).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(Error::invalid(format!(
            "ocf: parameter '{param}'={text:?}: expected milliseconds in 1..=86400000"
        ))),
    }
}

/// Pacemaker's instance names are XML ids: anything else becomes `_`.
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_plugin::ErrorKind;

    fn parse(json: &str) -> Result<Config, Error> {
        Config::parse(&Params::parse(json).unwrap())
    }

    #[test]
    fn own_and_agent_parameters_are_told_apart() {
        let c = parse(r#"{"Agent":"ocf:heartbeat:Dummy","state":"/tmp/s","MonitorTimeout":"900"}"#)
            .unwrap();
        assert_eq!(
            (c.provider.as_str(), c.agent.as_str()),
            ("heartbeat", "Dummy")
        );
        assert_eq!(
            c.agent_path(),
            PathBuf::from("/usr/lib/ocf/resource.d/heartbeat/Dummy")
        );
        assert_eq!(c.timeouts["monitor"], Duration::from_millis(900));
        assert_eq!(
            c.reskeys,
            BTreeMap::from([("state".into(), "/tmp/s".into())])
        );
        let r = c.runner(Some("web ip/1"), None).unwrap();
        assert_eq!(r.env["OCF_RESOURCE_INSTANCE"], "web_ip_1");
        assert_eq!(r.env["OCF_RESKEY_state"], "/tmp/s");
        assert_eq!(r.env["HA_RSCTMP"], "/run/resource-agents");
        assert_eq!(r.env["OCF_FUNCTIONS_DIR"], "/usr/lib/ocf/lib/heartbeat");
    }

    #[test]
    fn bad_agents_are_refused_by_name() {
        assert!(parse("{}").unwrap_err().contains("'Agent'"));
        assert!(parse(r#"{"Agent":"lsb:x:y"}"#)
            .unwrap_err()
            .contains("class 'lsb'"));
        assert!(parse(r#"{"Agent":"../x"}"#)
            .unwrap_err()
            .contains("provider:agent"));
        assert!(parse(r#"{"Agent":"heartbeat:.."}"#).is_err());
        assert!(parse(r#"{"Agent":"a:b","OcfRoot":"rel"}"#)
            .unwrap_err()
            .contains("'OcfRoot'"));
        assert!(parse(r#"{"Agent":"a:b","StopTimeout":"0"}"#)
            .unwrap_err()
            .contains("'StopTimeout'"));
        let missing = parse(r#"{"Agent":"heartbeat:NoSuchAgent"}"#)
            .unwrap()
            .runner(None, None);
        let err = missing.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotInstalled);
        assert!(
            err.contains("/usr/lib/ocf/resource.d/heartbeat/NoSuchAgent"),
            "{err}"
        );
    }
}
