//! The lease rcm grants each host, as configuration and as the grants it makes: how long a grant
//! holds, the fence's TERMINATE budget, and how often rcm renews (a third of the lease, so two
//! renewals can be missed before a host fences). Pure; the thread that sends them is renewer.rs.

use keelson_proto::LeaseGrant;
use std::time::Duration;

/// Default lease of a host: with renewals every second, a host fences after 3 s without one.
pub const DEFAULT_HOST_LEASE_MS: u64 = 3_000;
/// Default budget of each resource's TERMINATE when a host fences.
pub const DEFAULT_FENCE_BUDGET_MS: u64 = 1_000;
/// The shortest lease accepted: renewals every 10 ms.
pub const MIN_HOST_LEASE_MS: u64 = 30;

/// The lease every host of a pool holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostLease {
    valid_for: Duration,
    terminate_within: Duration,
}

impl Default for HostLease {
    fn default() -> HostLease {
        HostLease {
            valid_for: Duration::from_millis(DEFAULT_HOST_LEASE_MS),
            terminate_within: Duration::from_millis(DEFAULT_FENCE_BUDGET_MS),
        }
    }
}

impl HostLease {
    /// A lease of `valid_for_ms` with a TERMINATE budget of `terminate_within_ms`; the error names
    /// the value refused.
    pub fn new(valid_for_ms: u64, terminate_within_ms: u64) -> Result<HostLease, String> {
        if valid_for_ms < MIN_HOST_LEASE_MS {
            return Err(format!(
                "host lease of {valid_for_ms} ms: at least {MIN_HOST_LEASE_MS} ms (renewed every third of it)"
            ));
        }
        if terminate_within_ms == 0 {
            return Err("fence budget of 0 ms: TERMINATE needs some time".into());
        }
        Ok(HostLease {
            valid_for: Duration::from_millis(valid_for_ms),
            terminate_within: Duration::from_millis(terminate_within_ms),
        })
    }

    pub fn valid_for(&self) -> Duration {
        self.valid_for
    }

    pub fn terminate_within(&self) -> Duration {
        self.terminate_within
    }

    /// How often rcm renews: a third of the lease.
    pub fn renew_every(&self) -> Duration {
        self.valid_for / 3
    }

    /// A renewal this late means this process did not run for most of a lease (frozen or
    /// starved): its hosts may have fenced themselves meanwhile.
    pub fn alarming_delay(&self) -> Duration {
        self.valid_for / 2
    }

    /// Grant number `seq`, made at `now_ns` on CLOCK_MONOTONIC.
    pub fn grant(&self, seq: u64, now_ns: u64) -> LeaseGrant {
        LeaseGrant {
            seq,
            granted_at_ns: now_ns,
            valid_for_ms: self.valid_for.as_millis() as u64,
            terminate_within_ms: self.terminate_within.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_renewal_interval() {
        let lease = HostLease::default();
        assert_eq!(lease.valid_for(), Duration::from_millis(3_000));
        assert_eq!(lease.renew_every(), Duration::from_millis(1_000));
        let grant = lease.grant(4, 77);
        assert_eq!(
            grant,
            LeaseGrant {
                seq: 4,
                granted_at_ns: 77,
                valid_for_ms: 3_000,
                terminate_within_ms: 1_000
            }
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        assert!(HostLease::new(29, 100).unwrap_err().contains("29 ms"));
        assert!(HostLease::new(300, 0).unwrap_err().contains("fence budget"));
        let lease = HostLease::new(300, 150).unwrap();
        assert_eq!(lease.renew_every(), Duration::from_millis(100));
        assert_eq!(lease.terminate_within(), Duration::from_millis(150));
    }
}
