//! The disk type's parameters: their declaration (PARAMS, as `keelson plugin describe disk`
//! shows it), the type's default poll intervals and timeouts, and the parsed, checked form the
//! resource works from. Not what the resource does with them.

use keelson_plugin::{Error, Param, Params, TypeDefaults, NO_DEFAULTS};
use std::path::PathBuf;
use std::time::Duration;

/// The disk type's parameters.
pub const PARAMS: &[Param] = &[
    Param::path("Device")
        .required()
        .describe("the shared block device (its last MiB is the lease area)"),
    Param::path("MountPoint")
        .required()
        .describe("where the filesystem is mounted (created if missing)"),
    Param::string("FsType")
        .default("ext4")
        .describe("the filesystem type given to mount(2)"),
    Param::string("MountOptions")
        .default("")
        .describe("comma-separated mount options (noatime, nodev, ro, ... and filesystem options)"),
    Param::boolean("FsckOnOnline")
        .default("0")
        .describe("run fsck -p on the device before mounting it"),
    Param::integer("LeaseMs")
        .min(200)
        .max(600_000)
        .default("10000")
        .describe(
            "the on-disk lease time in ms (renewed every LeaseMs/4; a takeover waits it out)",
        ),
    Param::integer("ProbeTimeoutMs")
        .min(50)
        .max(600_000)
        .default("5000")
        .describe("IsAlive's deadline for its read/write probe of the filesystem, in ms"),
    Param::integer("StopTimeoutMs")
        .min(0)
        .max(600_000)
        .default("10000")
        .describe("offline: time between SIGTERM and SIGKILL to processes using the mount, in ms"),
];

/// The type's defaults for the common resource properties.
pub const DEFAULTS: TypeDefaults = TypeDefaults {
    looks_alive_poll_interval_ms: Some(5_000),
    is_alive_poll_interval_ms: Some(30_000),
    pending_timeout_ms: Some(120_000),
    ..NO_DEFAULTS
};

/// A disk resource's checked parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub device: PathBuf,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub mount_options: String,
    pub fsck_on_online: bool,
    pub lease: Duration,
    pub probe_timeout: Duration,
    pub stop_timeout: Duration,
}

impl Config {
    /// Reads the parameters (already checked against PARAMS by the SDK) and the rules the table
    /// cannot say; every refusal names the parameter.
    pub fn parse(params: &Params) -> Result<Config, Error> {
        let path = |key: &str| {
            params
                .str(key)
                .map(PathBuf::from)
                .ok_or_else(|| Error::misconfigured(format!("missing required parameter '{key}'")))
        };
        let config = Config {
            device: path("Device")?,
            mount_point: path("MountPoint")?,
            fstype: params.str("FsType").unwrap_or_else(|| "ext4".into()),
            mount_options: params.str("MountOptions").unwrap_or_default(),
            fsck_on_online: params.bool_or("FsckOnOnline", false)?,
            lease: Duration::from_millis(params.u64_or("LeaseMs", 10_000)?),
            probe_timeout: Duration::from_millis(params.u64_or("ProbeTimeoutMs", 5_000)?),
            stop_timeout: Duration::from_millis(params.u64_or("StopTimeoutMs", 10_000)?),
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), Error> {
        if self.mount_point.parent().is_none() {
            return Err(Error::misconfigured(
                "parameter 'MountPoint'=\"/\": cannot mount over the root directory",
            ));
        }
        let fs_ok = !self.fstype.is_empty()
            && self
                .fstype
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
        if !fs_ok {
            return Err(Error::misconfigured(format!(
                "parameter 'FsType'=\"{}\": not a filesystem type name",
                self.fstype
            )));
        }
        crate::options::parse(&self.mount_options).map_err(Error::misconfigured)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(json: &str) -> Result<Config, String> {
        let params = Params::parse(json)?
            .checked(&keelson_plugin::schema::<crate::Disk>())
            .map_err(|e| e.to_string())?;
        Config::parse(&params).map_err(|e| e.message().to_string())
    }

    #[test]
    fn defaults_fill_in_what_is_not_set() {
        let c = checked(r#"{"Device":"/dev/loop3","MountPoint":"/mnt/d"}"#).unwrap();
        assert_eq!(c.fstype, "ext4");
        assert_eq!(c.lease, Duration::from_secs(10));
        assert!(!c.fsck_on_online);
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        let err = checked(r#"{"Device":"/dev/loop3","MountPoint":"/"}"#).unwrap_err();
        assert!(err.contains("'MountPoint'"), "{err}");
        let err =
            checked(r#"{"Device":"/dev/loop3","MountPoint":"/m","FsType":"ext4;rm"}"#).unwrap_err();
        assert!(err.contains("'FsType'"), "{err}");
        let err =
            checked(r#"{"Device":"/dev/loop3","MountPoint":"/m","LeaseMs":"5"}"#).unwrap_err();
        assert!(err.contains("'LeaseMs'"), "{err}");
        let err = checked(r#"{"Device":"dev/loop3","MountPoint":"/m"}"#).unwrap_err();
        assert!(err.contains("'Device'"), "{err}");
    }
}
