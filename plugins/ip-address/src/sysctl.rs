//! The per-interface kernel settings the ip-address type reads or sets under /proc/sys/net, in the
//! calling thread's network namespace: promote_secondaries (set, so that removing one IPv4 address
//! never takes the others of its subnet with it) and how long the kernel's IPv6 DAD lasts (read).
//! Not addresses or links (netlink.rs).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

fn path(family: &str, table: &str, interface: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/{family}/{table}/{interface}/{key}"))
}

/// Sets net.ipv4.conf.<interface>.promote_secondaries=1 (a no-op if it already is).
pub fn promote_secondaries(interface: &str) -> io::Result<()> {
    let file = path("ipv4", "conf", interface, "promote_secondaries");
    if std::fs::read_to_string(&file).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(&file, "1").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write 1 to {}: {e}", file.display()),
        )
    })
}

fn read_number(file: PathBuf) -> io::Result<u64> {
    let text = std::fs::read_to_string(&file)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display())))?;
    text.trim().parse().map_err(|_| {
        io::Error::other(format!(
            "{}: {:?} is not a number",
            file.display(),
            text.trim()
        ))
    })
}

/// How long the kernel's IPv6 duplicate address detection takes on `interface` at most:
/// dad_transmits solicitations retrans_time_ms apart, after a random delay of up to 1 s.
pub fn ipv6_dad_time(interface: &str) -> io::Result<Duration> {
    let transmits = read_number(path("ipv6", "conf", interface, "dad_transmits"))?;
    let retrans = read_number(path("ipv6", "neigh", interface, "retrans_time_ms"))?;
    Ok(Duration::from_millis(
        transmits.saturating_mul(retrans).saturating_add(1000),
    ))
}
