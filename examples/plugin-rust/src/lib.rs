//! The `marker` resource type, the Rust example of docs/plugins.md: while online, a file at
//! `path` holds `text`. Online writes it (and leaves an identical one alone, so a second online
//! disrupts nothing), offline removes it (a missing file is already offline), looks_alive checks
//! that the file exists (one stat: cheap), is_alive that it holds the text. Parameters, all strings
//! as every parameter arrives: `path` (required, absolute), `text` (default "keelson") and
//! `max_bytes` (an integer 1..=4096, default 256: the longest text accepted).
#![forbid(unsafe_code)]

use keelson_plugin::{export_plugin, Error, Host, Params, Resource};
use std::path::PathBuf;

const KNOWN: [&str; 3] = ["path", "text", "max_bytes"];

/// The parameters, parsed and checked once; `validate` and `open` share this.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    path: PathBuf,
    text: String,
}

impl Config {
    fn parse(params: &Params) -> Result<Config, String> {
        params.reject_unknown(&KNOWN)?;
        let path = PathBuf::from(params.str("path").ok_or("path: required")?);
        if !path.is_absolute() {
            return Err(format!("path '{}': not an absolute path", path.display()));
        }
        let max_bytes = params.u64_or("max_bytes", 256)?;
        if !(1..=4096).contains(&max_bytes) {
            return Err(format!("max_bytes {max_bytes}: it must be 1..=4096"));
        }
        let text = params.str("text").unwrap_or_else(|| "keelson".into());
        if text.len() as u64 > max_bytes {
            return Err(format!(
                "text: {} bytes, more than max_bytes {max_bytes}",
                text.len()
            ));
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
}

impl Resource for Marker {
    const TYPE_NAME: &'static std::ffi::CStr = c"marker";

    fn validate(params: &Params) -> Result<(), Error> {
        Config::parse(params)?;
        Ok(())
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        // Open only parses: it must not bring anything online.
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
            Ok(false) => Err(format!("{} is missing", self.config.path.display()).into()),
            Err(e) => Err(format!("cannot stat {}: {e}", self.config.path.display()).into()),
        }
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        if self.holds_text() {
            Ok(())
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
