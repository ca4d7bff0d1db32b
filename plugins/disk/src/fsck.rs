//! Checking the filesystem before it is mounted (FsckOnOnline=1): `fsck -p -t TYPE DEVICE` (for
//! ext2/3/4 that runs e2fsck -p), with fsck's exit codes mapped to the SDK's errors. Not the
//! decision to run it.

use keelson_plugin::Error;
use std::path::Path;
use std::process::Command;

/// Runs the check; Ok with a line to log (empty when the filesystem was clean).
pub fn check(device: &Path, fstype: &str) -> Result<String, Error> {
    let out = Command::new("fsck")
        .args(["-p", "-t", fstype])
        .arg(device)
        .output()
        .map_err(|e| Error::not_installed(format!("cannot run fsck for FsckOnOnline: {e}")))?;
    let code = out.status.code().unwrap_or(-1);
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string()
        + " "
        + String::from_utf8_lossy(&out.stderr).trim();
    interpret(device, code, said.trim())
}

/// fsck(8)'s exit codes: 0 clean, 1 errors corrected, 2 corrected (reboot advised: nothing is
/// mounted here, so nothing to reboot for), 4 errors left, 8 operational error, 16 usage, 32
/// cancelled, 128 a shared-library error.
pub fn interpret(device: &Path, code: i32, said: &str) -> Result<String, Error> {
    let dev = device.display();
    match code {
        0 => Ok(String::new()),
        1 | 2 => Ok(format!(
            "fsck -p corrected errors on {dev} (exit {code}): {said}"
        )),
        4 => Err(Error::new(format!(
            "fsck -p left errors uncorrected on {dev} (exit 4): run fsck by hand: {said}"
        ))),
        16 | 128 => Err(Error::not_installed(format!(
            "fsck cannot check {dev} here (exit {code}): {said}"
        ))),
        _ => Err(Error::new(format!(
            "fsck -p failed on {dev} (exit {code}): {said}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_plugin::ErrorKind;

    #[test]
    fn exit_codes_map_to_outcomes() {
        let dev = Path::new("/dev/loop7");
        assert_eq!(interpret(dev, 0, "").unwrap(), "");
        assert!(interpret(dev, 1, "fixed").unwrap().contains("corrected"));
        let four = interpret(dev, 4, "bad").unwrap_err();
        assert!(four.message().contains("/dev/loop7") && four.message().contains("uncorrected"));
        assert_eq!(
            interpret(dev, 16, "").unwrap_err().kind(),
            ErrorKind::NotInstalled
        );
    }
}
