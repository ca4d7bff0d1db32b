//! CLOCK_MONOTONIC as a plain number of nanoseconds, which every process on the machine reads alike
//! (std's `Instant` cannot be sent to another process): rcm stamps its host leases with it and the
//! hosts compare against it. Not wall time (never used for leases), not timers.

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

#[cfg(test)]
mod tests {
    use super::*;

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
