//! The `dummy` resource type: a healthy resource that does nothing, for tests, benchmarks and demos.
//! Parameters: `online_delay_ms`, `offline_delay_ms` (time spent inside online/offline) and
//! `fail_looks_alive` / `fail_is_alive` (make that check fail, for policy tests), declared in
//! [`PARAMS`] so the host checks them before the plugin sees them. Not a model of any real
//! resource: health checks cost nothing and allocate nothing.
#![forbid(unsafe_code)]

use keelson_plugin::{export_plugin, Error, Host, Param, Params, Resource};
use std::time::Duration;

const KNOWN: [&str; 4] = [
    "online_delay_ms",
    "offline_delay_ms",
    "fail_looks_alive",
    "fail_is_alive",
];

/// The dummy type's parameters, as `keelson plugin describe dummy` shows them.
pub const PARAMS: &[Param] = &[
    Param::integer("online_delay_ms")
        .min(0)
        .default("0")
        .describe("time spent inside online, in ms"),
    Param::integer("offline_delay_ms")
        .min(0)
        .default("0")
        .describe("time spent inside offline, in ms"),
    Param::boolean("fail_looks_alive")
        .default("false")
        .describe("make every looks_alive fail"),
    Param::boolean("fail_is_alive")
        .default("false")
        .describe("make every is_alive fail"),
];

/// Parsed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Config {
    online_delay: Duration,
    offline_delay: Duration,
    fail_looks_alive: bool,
    fail_is_alive: bool,
}

impl Config {
    fn parse(params: &Params) -> Result<Config, String> {
        params.reject_unknown(&KNOWN)?;
        Ok(Config {
            online_delay: Duration::from_millis(params.u64_or("online_delay_ms", 0)?),
            offline_delay: Duration::from_millis(params.u64_or("offline_delay_ms", 0)?),
            fail_looks_alive: params.bool_or("fail_looks_alive", false)?,
            fail_is_alive: params.bool_or("fail_is_alive", false)?,
        })
    }
}

/// One dummy resource.
pub struct Dummy {
    config: Config,
    online: bool,
    host: Host,
}

impl Resource for Dummy {
    const TYPE_NAME: &'static std::ffi::CStr = c"dummy";
    const PARAMS: Option<&'static [Param]> = Some(PARAMS);

    fn validate(params: &Params) -> Result<(), Error> {
        Config::parse(params).map(|_| ()).map_err(Error::from)
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        if let (Some(node), Some(dir)) = (host.node_name(), host.state_dir()) {
            host.info(&format!(
                "dummy resource opened on node {node}, state directory {}",
                dir.display()
            ));
        }
        Ok(Dummy {
            config: Config::parse(params)?,
            online: false,
            host,
        })
    }

    fn online(&mut self) -> Result<(), Error> {
        std::thread::sleep(self.config.online_delay);
        self.online = true;
        self.host.info("dummy resource online");
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        std::thread::sleep(self.config.offline_delay);
        self.online = false;
        self.host.info("dummy resource offline");
        Ok(())
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        if self.config.fail_looks_alive {
            return Err("dummy: looks_alive fails (fail_looks_alive=true)".into());
        }
        Ok(())
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        if self.config.fail_is_alive {
            return Err("dummy: is_alive fails (fail_is_alive=true)".into());
        }
        Ok(())
    }

    fn terminate(&mut self) -> Result<(), Error> {
        self.online = false;
        Ok(())
    }
}

export_plugin!(name: c"dummy", types: [Dummy]);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Params {
        Params::parse(json).unwrap()
    }

    #[test]
    fn parameters_are_checked_by_name() {
        assert!(Dummy::validate(&params("{}")).is_ok());
        assert!(Dummy::validate(&params(r#"{"online_delay_ms":"5"}"#)).is_ok());
        let err = Dummy::validate(&params(r#"{"online_delay_ms":"soon"}"#)).unwrap_err();
        assert!(err.contains("online_delay_ms"), "{err}");
        let err = Dummy::validate(&params(r#"{"colour":"red"}"#)).unwrap_err();
        assert!(err.contains("'colour'"), "{err}");
    }

    #[test]
    fn the_declaration_is_valid_and_names_every_known_parameter() {
        let schema = keelson_plugin::schema::<Dummy>();
        schema.check_declaration().unwrap();
        assert!(schema.declared);
        let names: Vec<&str> = schema.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, KNOWN);
        let refused = schema
            .check(&[("online_delay_ms".to_string(), "-1".to_string())].into())
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "parameter 'online_delay_ms'=\"-1\": expected an integer in 0.."
        );
    }

    #[test]
    fn checks_fail_only_when_asked() {
        let mut ok = Dummy::open(&params("{}"), Host::detached()).unwrap();
        assert!(ok.looks_alive().is_ok() && ok.is_alive().is_ok());
        ok.online().unwrap();
        assert!(ok.online);
        let mut bad =
            Dummy::open(&params(r#"{"fail_is_alive":"true"}"#), Host::detached()).unwrap();
        assert!(bad.looks_alive().is_ok());
        assert!(bad.is_alive().unwrap_err().contains("fail_is_alive"));
    }
}
