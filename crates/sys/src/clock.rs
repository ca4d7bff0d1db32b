//! CLOCK_MONOTONIC as a plain number of nanoseconds, which every process on the machine reads alike
//! (std's `Instant` cannot be sent to another process): rcm stamps its host leases with it and the
//! hosts compare against it. And the local wall-clock hour, for failback windows (never for
//! leases). Not timers.

/// Nanoseconds on CLOCK_MONOTONIC (since an unspecified instant, the same for every process on
/// this machine outside a time namespace).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, so the
    // call cannot fail (and a failure would leave `ts` zeroed, not undefined).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The hour (0-23) of the local time zone now (TZ, else /etc/localtime), as the administrator's
/// FailbackWindowStart/End mean it; the error when the C library cannot convert the time.
pub fn local_hour() -> std::io::Result<u32> {
    // SAFETY: time(NULL) only returns the current time.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: an all-zero `tm` is a valid value of the plain C struct (its zone pointer null).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: `now` and `tm` are valid for the call; localtime_r is the reentrant form and writes
    // only `tm`.
    let converted = unsafe { libc::localtime_r(&now, &mut tm) };
    if converted.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tm.tm_hour as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_hour_is_an_hour_of_the_day() {
        let h = local_hour().expect("localtime_r");
        assert!(h < 24, "{h}");
    }

    #[test]
    fn it_never_goes_back_and_follows_instant() {
        let a = monotonic_ns();
        let start = std::time::Instant::now();
        let mut last = a;
        for _ in 0..1_000 {
            let now = monotonic_ns();
            assert!(now >= last);
            last = now;
        }
        let ours = last - a;
        let std = start.elapsed().as_nanos() as u64;
        // Both read CLOCK_MONOTONIC: ours spans a little more than std's (it started first).
        assert!(ours + 1_000_000 >= std, "{ours} ns vs {std} ns");
    }
}
