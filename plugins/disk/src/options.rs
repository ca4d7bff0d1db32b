//! Reading MountOptions ("noatime,nodev,errors=remount-ro"): generic options become mount(2)
//! flags, the rest is the filesystem's data string; options that would change what kind of mount
//! this is (bind, remount, move, loop) are refused. Not the mount itself.

use keelson_sys::blockdev::MountFlags;

/// Flags and filesystem data from an option string.
pub fn parse(options: &str) -> Result<(MountFlags, String), String> {
    let mut flags = MountFlags::default();
    let mut data = Vec::new();
    for opt in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match opt {
            "defaults" | "rw" | "async" | "suid" | "dev" | "exec" | "atime" => {}
            "ro" => flags.read_only = true,
            "nosuid" => flags.no_suid = true,
            "nodev" => flags.no_dev = true,
            "noexec" => flags.no_exec = true,
            "sync" => flags.synchronous = true,
            "noatime" => flags.no_atime = true,
            "relatime" => flags.relatime = true,
            "dirsync" => flags.dirsync = true,
            "bind" | "rbind" | "remount" | "move" | "loop" | "auto" | "noauto" | "user"
            | "users" | "nofail" | "_netdev" => {
                return Err(format!(
                    "parameter 'MountOptions': option '{opt}' is not a filesystem mount option"
                ))
            }
            other => data.push(other),
        }
    }
    Ok((flags, data.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_options_are_flags_and_the_rest_is_data() {
        let (flags, data) = parse("noatime, nodev,errors=remount-ro,commit=5").unwrap();
        assert!(flags.no_atime && flags.no_dev && !flags.read_only);
        assert_eq!(data, "errors=remount-ro,commit=5");
        assert_eq!(parse("").unwrap(), (MountFlags::default(), String::new()));
    }

    #[test]
    fn a_bind_mount_is_refused_naming_the_parameter() {
        let err = parse("rw,bind").unwrap_err();
        assert!(
            err.contains("MountOptions") && err.contains("bind"),
            "{err}"
        );
    }
}
