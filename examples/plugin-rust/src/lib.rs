//! The `marker` resource type, the Rust example of docs/plugins.md: while online, a file at
//! `path` holds `text`. Online writes it (and leaves an identical one alone, so a second online
//! disrupts nothing), offline removes it (a missing file is already offline), looks_alive checks
//! that the file exists (one stat: cheap), is_alive that it holds the text. The parameters are
//! declared in `PARAMS`, so the host refuses an unknown name, a missing `path`, a relative path or a
//! `max_bytes` outside 1..=4096 before this code runs, and fills in the defaults; `validate` adds
//! the one rule the schema cannot say (the text fits in `max_bytes`). Not a real service.
#![forbid(unsafe_code)]

use keelson_plugin::{
    export_plugin, Error, Host, Param, Params, Resource, TypeDefaults, NO_DEFAULTS,
};
use std::path::PathBuf;

/// Every parameter of the type: `keelson plugin describe marker` prints this table.
const PARAMS: &[Param] = &[
    Param::path("path")
        .required()
        .describe("the marker file, written while online"),
    Param::string("text")
        .default("keelson")
        .describe("what the marker file holds"),
    Param::integer("max_bytes")
        .min(1)
        .max(4096)
        .default("256")
        .describe("the longest text accepted"),
];

/// The parameters, read once; `validate` and `open` share this. The values arrive as strings,
/// already checked against `PARAMS` and with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    path: PathBuf,
    text: String,
}

impl Config {
    fn parse(params: &Params) -> Result<Config, Error> {
        let path = PathBuf::from(params.str("path").ok_or("path: required")?);
        let text = params.str("text").unwrap_or_else(|| "keelson".into());
        let max_bytes = params.u64_or("max_bytes", 256)?;
        if text.len() as u64 > max_bytes {
            return Err(Error::misconfigured(format!(
                "text: {} bytes, more than max_bytes {max_bytes}",
                text.len()
            )));
        }
        Ok(Config { path, text })
    }
}

/// One marker resource.
pub struct Marker {
    config: Config,
    host: Host,
}

impl Marker {
    fn holds_text(&self) -> bool {
        std::fs::read_to_string(&self.config.path).is_ok_and(|t| t == self.config.text)
    }

    fn missing(&self) -> Error {
        Error::not_running(format!("{} is missing", self.config.path.display()))
    }
}

impl Resource for Marker {
    const TYPE_NAME: &'static std::ffi::CStr = c"marker";
    const PARAMS: Option<&'static [Param]> = Some(PARAMS);
    /// Writing a file takes milliseconds: a stuck online is failed after 10 s, not 180 s.
    const DEFAULTS: TypeDefaults = TypeDefaults {
        pending_timeout_ms: Some(10_000),
        ..NO_DEFAULTS
    };

    fn validate(params: &Params) -> Result<(), Error> {
        Config::parse(params)?;
        Ok(())
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        // Open only reads the parameters: it must not bring anything online.
        Ok(Marker {
            config: Config::parse(params)?,
            host,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        if self.holds_text() {
            // Already online (a second online, or a new host after the old one died): leave it.
            return Ok(());
        }
        self.host.set_status(50);
        std::fs::write(&self.config.path, &self.config.text)
            .map_err(|e| format!("cannot write {}: {e}", self.config.path.display()))?;
        self.host
            .info(&format!("marker {} written", self.config.path.display()));
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        match std::fs::remove_file(&self.config.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.config.path.display()).into()),
        }
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        match self.config.path.try_exists() {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.missing()),
            Err(e) => Err(format!("cannot stat {}: {e}", self.config.path.display()).into()),
        }
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        if self.holds_text() {
            Ok(())
        } else if !self.config.path.exists() {
            Err(self.missing())
        } else {
            Err(format!(
                "{} does not hold the marker text",
                self.config.path.display()
            )
            .into())
        }
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.offline()
    }
}

export_plugin!(name: c"marker", types: [Marker]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_one_the_host_accepts() {
        keelson_plugin::schema::<Marker>()
            .check_declaration()
            .expect("PARAMS and DEFAULTS");
    }
}
