//! The parameters of a generic-app resource, read once from the checked strings (the schema in
//! lib.rs has already refused wrong kinds and ranges and filled in defaults), plus the rules the
//! schema cannot say: a non-empty, well-quoted CommandLine and HealthCommand, NAME=VALUE
//! Environment entries, a User the user database knows. Not the launch itself (app.rs).

use crate::words;
use keelson_plugin::{Error, Params};
use keelson_sys::detached::identity::Identity;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The PATH an app gets unless its Environment sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One command: the line as written (for messages) and its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    pub line: String,
    pub words: Vec<String>,
}

impl CommandLine {
    fn parse(param: &str, line: &str) -> Result<CommandLine, Error> {
        let words =
            words::split(line).map_err(|e| Error::invalid(format!("{param} '{line}': {e}")))?;
        if words.is_empty() {
            return Err(Error::invalid(format!(
                "{param}: empty: give the program and its arguments"
            )));
        }
        Ok(CommandLine {
            line: line.to_string(),
            words,
        })
    }
}

/// A TCP health probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpProbe {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub command: CommandLine,
    pub working_dir: PathBuf,
    pub environment: Vec<(String, String)>,
    /// The User parameter as given; None: the node's own user.
    pub user: Option<String>,
    pub stop_timeout: Duration,
    pub start_window: Duration,
    pub start_timeout: Duration,
    pub health_command: Option<CommandLine>,
    pub health_tcp: Option<TcpProbe>,
    pub health_timeout: Duration,
}

fn ms(params: &Params, key: &str, default: u64) -> Result<Duration, Error> {
    Ok(Duration::from_millis(params.u64_or(key, default)?))
}

impl Config {
    pub fn parse(params: &Params) -> Result<Config, Error> {
        let command = CommandLine::parse(
            "CommandLine",
            &params.str("CommandLine").unwrap_or_default(),
        )?;
        let health_command = match params.str("HealthCommand").unwrap_or_default() {
            line if line.trim().is_empty() => None,
            line => Some(CommandLine::parse("HealthCommand", &line)?),
        };
        let health_tcp = match params.str("HealthTcpPort") {
            None => None,
            Some(_) => Some(TcpProbe {
                host: params
                    .str("HealthTcpHost")
                    .unwrap_or_else(|| "127.0.0.1".into()),
                port: u16::try_from(params.u64_or("HealthTcpPort", 0)?)
                    .map_err(|_| Error::invalid("HealthTcpPort: not a port"))?,
            }),
        };
        let user = params.str("User").filter(|u| !u.trim().is_empty());
        Ok(Config {
            command,
            working_dir: PathBuf::from(
                params.str("WorkingDirectory").unwrap_or_else(|| "/".into()),
            ),
            environment: parse_environment(&params.str("Environment").unwrap_or_default())?,
            user,
            stop_timeout: ms(params, "StopTimeout", 10_000)?,
            start_window: ms(params, "StartWindow", 500)?,
            start_timeout: ms(params, "StartTimeout", 30_000)?,
            health_command,
            health_tcp,
            health_timeout: ms(params, "HealthTimeoutMs", 5_000)?,
        })
    }

    /// Who the app runs as: the User parameter's entry, or this process's own.
    pub fn identity(&self) -> Result<Identity, Error> {
        match &self.user {
            Some(user) => Identity::resolve(user).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::misconfigured(format!("User: {e}"))
                } else {
                    Error::new(format!("User: {e}"))
                }
            }),
            None => Identity::current().map_err(|e| Error::new(format!("the node's user: {e}"))),
        }
    }

    /// The app's whole environment: PATH, HOME, USER, LOGNAME, the resource's name, then every
    /// Environment entry (which wins).
    pub fn environment_for(&self, identity: &Identity, resource: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), DEFAULT_PATH.into()),
            ("HOME".into(), identity.home.display().to_string()),
            ("USER".into(), identity.name.clone()),
            ("LOGNAME".into(), identity.name.clone()),
            ("KEELSON_RESOURCE".into(), resource.into()),
        ];
        for (key, value) in &self.environment {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        env
    }

    /// The executable of `command`: a path with a '/' as is (relative to WorkingDirectory), a bare
    /// name searched in `env`'s PATH. Not found: not installed on this node.
    pub fn program(
        &self,
        command: &CommandLine,
        env: &[(String, String)],
        param: &str,
    ) -> Result<PathBuf, Error> {
        let name = &command.words[0];
        if name.contains('/') {
            return Ok(self.working_dir.join(name));
        }
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        path.split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join(name))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| {
                Error::not_installed(format!(
                    "{param} '{}': {name}: No such file in PATH {path}",
                    command.line
                ))
            })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `NAME=VALUE` entries separated by newlines or ';' (blank entries and the spaces around each
/// are ignored); NAME is letters, digits and '_', not starting with a digit.
pub fn parse_environment(text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut entries = Vec::new();
    for entry in text
        .split(['\n', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (key, value) = entry.split_once('=').ok_or_else(|| {
            Error::invalid(format!("Environment: entry '{entry}' is not NAME=VALUE"))
        })?;
        let good_name = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !good_name {
            return Err(Error::invalid(format!(
                "Environment: '{key}' is not a variable name (letters, digits, '_')"
            )));
        }
        entries.push((key.to_string(), value.to_string()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let map: serde_json_map::Map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        Params::parse(&serde_json_map::to_string(&map)).unwrap()
    }

    mod serde_json_map {
        pub type Map = std::collections::BTreeMap<String, String>;
        pub fn to_string(map: &Map) -> String {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{:?}:{:?}", k, v))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
    }

    #[test]
    fn the_command_line_splits_and_an_empty_one_is_refused() {
        let config = Config::parse(&params(&[("CommandLine", "sleep 'a b'")])).unwrap();
        assert_eq!(config.command.words, ["sleep", "a b"]);
        let err = Config::parse(&params(&[("CommandLine", "  ")])).unwrap_err();
        assert_eq!(
            err.message(),
            "CommandLine: empty: give the program and its arguments"
        );
        let err = Config::parse(&params(&[("CommandLine", "sh -c 'x")])).unwrap_err();
        assert_eq!(
            err.message(),
            "CommandLine 'sh -c 'x': unterminated single quote"
        );
    }

    #[test]
    fn environment_entries_are_name_value_pairs() {
        assert_eq!(
            parse_environment("A=1; B = x\nC=a=b;;\n")
                .unwrap_err()
                .message(),
            "Environment: 'B ' is not a variable name (letters, digits, '_')"
        );
        assert_eq!(
            parse_environment("A=1; B=x y\nC=a=b;;\n").unwrap(),
            [
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "a=b".into())
            ]
        );
        assert!(parse_environment("novalue")
            .unwrap_err()
            .message()
            .contains("'novalue'"));
    }

    #[test]
    fn the_environment_starts_clean_and_entries_win() {
        let config = Config::parse(&params(&[
            ("CommandLine", "x"),
            ("Environment", "PATH=/opt/bin;K=v"),
        ]))
        .unwrap();
        let me = Identity::current().unwrap();
        let env = config.environment_for(&me, "web");
        assert!(env.contains(&("PATH".into(), "/opt/bin".into())), "{env:?}");
        assert!(
            env.contains(&("KEELSON_RESOURCE".into(), "web".into())),
            "{env:?}"
        );
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }

    #[test]
    fn programs_are_found_in_path_or_refused_as_not_installed() {
        let config = Config::parse(&params(&[("CommandLine", "sleep 1")])).unwrap();
        let env = vec![("PATH".to_string(), "/nonexistent:/bin:/usr/bin".to_string())];
        let found = config
            .program(&config.command, &env, "CommandLine")
            .unwrap();
        assert!(found.ends_with("sleep") && found.is_file(), "{found:?}");
        let missing = Config::parse(&params(&[("CommandLine", "no-such-program-x 1")])).unwrap();
        let err = missing
            .program(&missing.command, &env, "CommandLine")
            .unwrap_err();
        assert_eq!(err.kind(), keelson_plugin::ErrorKind::NotInstalled);
        assert!(
            err.message()
                .starts_with("CommandLine 'no-such-program-x 1': no-such-program-x: No such file"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn an_unknown_user_is_misconfigured() {
        let config =
            Config::parse(&params(&[("CommandLine", "x"), ("User", "no-such-user-x")])).unwrap();
        let err = config.identity().unwrap_err();
        assert_eq!(err.message(), "User: unknown user 'no-such-user-x'");
        assert_eq!(err.kind(), keelson_plugin::ErrorKind::Misconfigured);
    }
}
