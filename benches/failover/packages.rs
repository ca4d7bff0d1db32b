//! The Debian packages the Pacemaker contender needs, found by the files it runs: installed with
//! apt-get when missing (the benchmark runs as root anyway), or one line naming what is missing
//! and a non-zero exit. Also the versions in use, for the report. Not the cluster (pacemaker.rs).

use std::path::Path;
use std::process::Command;

/// Each file the benchmark uses and the Debian package (bookworm) that ships it.
const NEEDED: &[(&str, &str)] = &[
    ("/usr/sbin/corosync", "corosync"),
    ("/usr/sbin/corosync-cmapctl", "corosync"),
    ("/usr/sbin/corosync-cfgtool", "corosync"),
    ("/usr/sbin/pacemakerd", "pacemaker"),
    ("/usr/sbin/crm_mon", "pacemaker-cli-utils"),
    ("/usr/sbin/cibadmin", "pacemaker-cli-utils"),
    ("/usr/sbin/crm_attribute", "pacemaker-cli-utils"),
    ("/usr/sbin/crm_resource", "pacemaker-cli-utils"),
    ("/usr/sbin/crmadmin", "pacemaker-cli-utils"),
    (
        "/usr/lib/ocf/resource.d/pacemaker/Dummy",
        "pacemaker-resource-agents",
    ),
    (
        "/usr/lib/ocf/lib/heartbeat/ocf-shellfuncs",
        "resource-agents",
    ),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/setpriv", "util-linux"),
    ("/usr/bin/timeout", "coreutils"),
    ("/usr/sbin/ip", "iproute2"),
    ("/bin/bash", "bash"),
];

/// The packages whose versions the report names.
pub const REPORTED: &[&str] = &[
    "corosync",
    "pacemaker",
    "pacemaker-cli-utils",
    "pacemaker-resource-agents",
    "resource-agents",
];

/// The packages whose files are missing, each once, in NEEDED's order.
fn missing() -> Vec<&'static str> {
    let mut packages: Vec<&'static str> = Vec::new();
    for (file, package) in NEEDED {
        if !Path::new(file).exists() && !packages.contains(package) {
            packages.push(package);
        }
    }
    packages
}

/// Installs what is missing (apt-get, non-interactive, no recommends); errs with one line naming
/// the packages if they are still missing afterwards.
pub fn ensure_installed() -> Result<(), String> {
    let wanted = missing();
    if wanted.is_empty() {
        return Ok(());
    }
    println!("installing {} with apt-get", wanted.join(" "));
    let installed = apt(&["update", "-qq"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend(&wanted);
        apt(&args)
    });
    let still = missing();
    match (installed, still.is_empty()) {
        (_, true) => Ok(()),
        (Err(e), false) => Err(format!(
            "missing Debian packages: {} (apt-get failed: {e})",
            still.join(" ")
        )),
        (Ok(()), false) => Err(format!(
            "missing Debian packages: {} (installed, yet their files are not there)",
            still.join(" ")
        )),
    }
}

fn apt(args: &[&str]) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "apt-get {}: {}",
        args.join(" "),
        stderr.lines().last().unwrap_or("").trim()
    ))
}

/// `package version` for each of REPORTED, from dpkg-query.
pub fn versions() -> Result<Vec<String>, String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Version}\\n"])
        .args(REPORTED)
        .output()
        .map_err(|e| format!("cannot run dpkg-query: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dpkg-query -W {}: {}",
            REPORTED.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}
