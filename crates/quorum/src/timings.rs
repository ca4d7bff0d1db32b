//! The timings that follow the NetFT settings: the witness lease's (renew, give up, lease, takeover
//! margin) and raft's (heartbeat, election timeout), with the checks that keep the lease safe. Not
//! the lease logic (lease.rs) and not where the settings live (the cluster database).

use std::sync::Arc;

use keelson_netft::NetftSettings;
use openraft::Config;

/// The witness lease's timings, all in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// The holder renews this long after its last successful renewal began.
    pub renew_ms: u64,
    /// The holder stops hosting the witness once this long has passed since its last successful
    /// renewal began (on its monotonic clock), renewed or not.
    pub give_up_ms: u64,
    /// How far past the start of a renewal the written expiry lies. `lease_ms - give_up_ms` is the
    /// time the holder has to stop hosting the witness after giving up.
    pub lease_ms: u64,
    /// Extra time another node waits past the lease: it takes over only once it has seen the same
    /// record unchanged for `lease_ms + margin_ms` of its own monotonic clock and its wall clock is
    /// `margin_ms` past the written expiry.
    pub margin_ms: u64,
}

/// The least time a holder is given to close the witness voter after giving up: closing its redb
/// store syncs the file, measured at 88-145 ms on a loaded test VM.
pub const MIN_STOP_BUDGET_MS: u64 = 1000;

/// Refused timings, naming the rule broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("witness lease timings {0:?} are unsafe: {1}")]
pub struct TimingsError(pub LeaseTimings, pub &'static str);

impl LeaseTimings {
    /// Timings checked: `0 < renew < give_up < lease`, `margin > 0`.
    pub fn new(
        renew_ms: u64,
        give_up_ms: u64,
        lease_ms: u64,
        margin_ms: u64,
    ) -> Result<LeaseTimings, TimingsError> {
        let t = LeaseTimings {
            renew_ms,
            give_up_ms,
            lease_ms,
            margin_ms,
        };
        if renew_ms == 0 || renew_ms >= give_up_ms {
            return Err(TimingsError(t, "renewal must come before giving up"));
        }
        if give_up_ms >= lease_ms {
            return Err(TimingsError(
                t,
                "the holder must give up before its lease expires",
            ));
        }
        if margin_ms == 0 {
            return Err(TimingsError(t, "the takeover margin must be positive"));
        }
        Ok(t)
    }

    /// From NetFT: renew every heartbeat delay, give up after one failure-detection window
    /// (delay × threshold), lease two delays (at least `MIN_STOP_BUDGET_MS`) longer than that,
    /// margin one delay. The slower of the same-subnet and cross-subnet settings is used.
    pub fn from_netft(netft: &NetftSettings) -> LeaseTimings {
        let (delay, window) = slowest(netft);
        let stop_budget = (2 * delay).max(MIN_STOP_BUDGET_MS);
        LeaseTimings::new(delay, window, window + stop_budget, delay)
            .expect("NetFT settings always have threshold >= 2")
    }

    /// How long the holder has to stop hosting the witness once it gives up.
    pub fn stop_budget_ms(&self) -> u64 {
        self.lease_ms - self.give_up_ms
    }

    /// How long a node must see one record unchanged before it may take the lease over.
    pub fn takeover_after_ms(&self) -> u64 {
        self.lease_ms + self.margin_ms
    }
}

/// (delay, delay × threshold) of the slower kind of route.
fn slowest(netft: &NetftSettings) -> (u64, u64) {
    let (sd, st) = netft.timing(true);
    let (cd, ct) = netft.timing(false);
    let delay = u64::from(sd.max(cd));
    let window = (u64::from(sd) * u64::from(st)).max(u64::from(cd) * u64::from(ct));
    (delay, window)
}

/// openraft's config for a node, from NetFT: heartbeat every delay, election timeout between one
/// failure-detection window and that plus two delays (so raft calls a leader lost about when NetFT
/// calls its node down).
pub fn raft_config(cluster_name: &str, netft: &NetftSettings) -> Arc<Config> {
    let (delay, window) = slowest(netft);
    config(cluster_name, delay, window, window + 2 * delay)
}

/// openraft's config for the witness voter: as `raft_config` but with twice the election timeout,
/// so a node usually wins an election first. The witness still may stand for election: after a
/// node is lost, it may be the only voter holding the newest entries.
pub fn witness_raft_config(cluster_name: &str, netft: &NetftSettings) -> Arc<Config> {
    let (delay, window) = slowest(netft);
    config(cluster_name, delay, 2 * window, 2 * (window + 2 * delay))
}

fn config(cluster_name: &str, heartbeat: u64, min: u64, max: u64) -> Arc<Config> {
    let config = Config {
        cluster_name: cluster_name.to_string(),
        heartbeat_interval: heartbeat,
        election_timeout_min: min,
        election_timeout_max: max,
        ..Default::default()
    };
    Arc::new(
        config
            .validate()
            .expect("heartbeat < election_timeout_min < election_timeout_max by construction"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_netft_defaults() {
        let t = LeaseTimings::from_netft(&NetftSettings::default());
        assert_eq!(t, LeaseTimings::new(1000, 5000, 7000, 1000).unwrap());
        assert_eq!(t.stop_budget_ms(), 2000);
        assert_eq!(t.takeover_after_ms(), 8000);
        let c = raft_config("c", &NetftSettings::default());
        assert_eq!(
            (
                c.heartbeat_interval,
                c.election_timeout_min,
                c.election_timeout_max
            ),
            (1000, 5000, 7000)
        );
        let w = witness_raft_config("c", &NetftSettings::default());
        assert_eq!(
            (w.election_timeout_min, w.election_timeout_max),
            (10000, 14000)
        );
    }

    #[test]
    fn the_slower_route_kind_wins() {
        let s = NetftSettings::new(500, 3, 2000, 6).unwrap();
        let t = LeaseTimings::from_netft(&s);
        assert_eq!((t.renew_ms, t.give_up_ms, t.lease_ms), (2000, 12000, 16000));
        assert_eq!(raft_config("c", &s).election_timeout_min, 12000);
    }

    #[test]
    fn the_smallest_test_settings_still_make_valid_configs() {
        let s = NetftSettings::test_only_override(10, 2).unwrap();
        let t = LeaseTimings::from_netft(&s);
        assert_eq!((t.renew_ms, t.give_up_ms, t.lease_ms), (10, 20, 1020));
        assert_eq!(t.stop_budget_ms(), MIN_STOP_BUDGET_MS);
        let c = raft_config("c", &s);
        assert!(c.heartbeat_interval < c.election_timeout_min);
    }

    #[test]
    fn unsafe_timings_are_refused_with_the_rule() {
        let e = LeaseTimings::new(100, 500, 500, 10).unwrap_err();
        assert!(
            e.to_string().contains("give up before its lease expires"),
            "{e}"
        );
        assert!(LeaseTimings::new(500, 500, 900, 10).is_err());
        assert!(LeaseTimings::new(0, 500, 900, 10).is_err());
        assert!(LeaseTimings::new(100, 500, 900, 0).is_err());
    }
}
