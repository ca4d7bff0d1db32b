//! The host's lease from rcm as pure bookkeeping over CLOCK_MONOTONIC readings in nanoseconds: which
//! grant holds, when it ends, whether it has ended, and how long the watcher may wait for the next
//! one. Not reading the lease socket (lease_watch.rs) nor fencing (fence.rs); tested with a fake
//! clock.

use keelson_proto::LeaseGrant;
use std::time::Duration;

const NS_PER_MS: u64 = 1_000_000;

/// The grant in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub seq: u64,
    /// When it ends, on CLOCK_MONOTONIC.
    pub ends_ns: u64,
    pub valid_for_ms: u64,
    pub terminate_within_ms: u64,
}

/// A lease that ran out: the grant that held and how long past its end this was noticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub held: Held,
    pub late_ns: u64,
}

/// What a grant did to the book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taken {
    /// It holds now (the first grant when `first`).
    Renewed { held: Held, first: bool },
    /// Not newer than the grant in force; ignored.
    Stale { seq: u64, newest: u64 },
    /// Nonsense (a zero length or budget); ignored.
    Invalid(String),
    /// The lease already ran out: nothing undoes a fence that has begun.
    TooLate { seq: u64 },
}

/// The lease book: empty until the first grant (a host without one never fences).
#[derive(Debug, Default)]
pub struct LeaseBook {
    held: Option<Held>,
    expired: bool,
}

impl LeaseBook {
    pub fn new() -> LeaseBook {
        LeaseBook::default()
    }

    /// Takes a grant read at `now_ns`. The lease runs from rcm's stamp, or from `now_ns` should the
    /// stamp lie in the future (a stamp is never trusted to lengthen a lease).
    pub fn take(&mut self, grant: &LeaseGrant, now_ns: u64) -> Taken {
        if self.expired {
            return Taken::TooLate { seq: grant.seq };
        }
        if grant.valid_for_ms == 0 || grant.terminate_within_ms == 0 {
            return Taken::Invalid(format!(
                "lease grant {} of {} ms with a terminate budget of {} ms: both must be above 0",
                grant.seq, grant.valid_for_ms, grant.terminate_within_ms
            ));
        }
        if let Some(held) = self.held.filter(|h| grant.seq <= h.seq) {
            return Taken::Stale {
                seq: grant.seq,
                newest: held.seq,
            };
        }
        let start = grant.granted_at_ns.min(now_ns);
        let held = Held {
            seq: grant.seq,
            ends_ns: start.saturating_add(grant.valid_for_ms.saturating_mul(NS_PER_MS)),
            valid_for_ms: grant.valid_for_ms,
            terminate_within_ms: grant.terminate_within_ms,
        };
        let first = self.held.replace(held).is_none();
        Taken::Renewed { held, first }
    }

    /// The expiry, if the lease held has run out by `now_ns`; from then on it stays expired.
    pub fn expire(&mut self, now_ns: u64) -> Option<Expiry> {
        let held = self.held?;
        if now_ns < held.ends_ns {
            return None;
        }
        self.expired = true;
        Some(Expiry {
            held,
            late_ns: now_ns - held.ends_ns,
        })
    }

    /// How long to wait for the next grant before looking again: until the lease ends (at least
    /// 1 ms), or None (no limit) while no lease is held.
    pub fn wait(&self, now_ns: u64) -> Option<Duration> {
        let held = self.held?;
        let left = held.ends_ns.saturating_sub(now_ns);
        Some(Duration::from_nanos(left).max(Duration::from_millis(1)))
    }

    pub fn held(&self) -> Option<Held> {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = NS_PER_MS;

    fn grant(seq: u64, at_ms: u64, valid_for_ms: u64) -> LeaseGrant {
        LeaseGrant {
            seq,
            granted_at_ns: at_ms * MS,
            valid_for_ms,
            terminate_within_ms: 100,
        }
    }

    #[test]
    fn without_a_grant_nothing_expires_and_the_wait_has_no_limit() {
        let mut book = LeaseBook::new();
        assert_eq!(book.wait(0), None);
        assert_eq!(book.expire(u64::MAX), None);
        assert_eq!(book.held(), None);
    }

    #[test]
    fn a_lease_runs_from_rcm_stamp_and_expires_once_past_it() {
        let mut book = LeaseBook::new();
        // Granted at 1000 ms, read 5 ms later: it still ends at 1300.
        let taken = book.take(&grant(1, 1_000, 300), 1_005 * MS);
        assert!(
            matches!(taken, Taken::Renewed { first: true, held } if held.ends_ns == 1_300 * MS)
        );
        assert_eq!(book.wait(1_005 * MS), Some(Duration::from_millis(295)));
        assert_eq!(book.expire(1_299 * MS), None);
        let expiry = book.expire(1_302 * MS).unwrap();
        assert_eq!(expiry.held.seq, 1);
        assert_eq!(expiry.late_ns, 2 * MS);
    }

    #[test]
    fn renewals_move_the_end_and_old_grants_are_ignored() {
        let mut book = LeaseBook::new();
        book.take(&grant(1, 0, 300), 0);
        let taken = book.take(&grant(2, 100, 300), 100 * MS);
        assert!(matches!(taken, Taken::Renewed { first: false, held } if held.ends_ns == 400 * MS));
        assert_eq!(
            book.take(&grant(2, 200, 300), 200 * MS),
            Taken::Stale { seq: 2, newest: 2 }
        );
        assert_eq!(
            book.take(&grant(1, 250, 300), 250 * MS),
            Taken::Stale { seq: 1, newest: 2 }
        );
        assert_eq!(
            book.expire(399 * MS),
            None,
            "the stale grants did not move it"
        );
        assert!(book.expire(400 * MS).is_some());
    }

    #[test]
    fn a_stamp_from_the_future_counts_from_the_reading() {
        let mut book = LeaseBook::new();
        book.take(&grant(1, 10_000, 300), 50 * MS);
        assert_eq!(book.held().unwrap().ends_ns, 350 * MS);
    }

    #[test]
    fn a_grant_already_over_when_read_expires_at_once() {
        let mut book = LeaseBook::new();
        book.take(&grant(1, 0, 300), 900 * MS);
        assert_eq!(book.wait(900 * MS), Some(Duration::from_millis(1)));
        assert_eq!(book.expire(900 * MS).unwrap().late_ns, 600 * MS);
    }

    #[test]
    fn once_expired_no_grant_undoes_it() {
        let mut book = LeaseBook::new();
        book.take(&grant(1, 0, 300), 0);
        assert!(book.expire(301 * MS).is_some());
        assert_eq!(
            book.take(&grant(2, 302, 300), 302 * MS),
            Taken::TooLate { seq: 2 }
        );
        assert!(book.expire(302 * MS).is_some(), "still expired");
    }

    #[test]
    fn zero_lengths_are_refused_and_change_nothing() {
        let mut book = LeaseBook::new();
        assert!(matches!(book.take(&grant(1, 0, 0), 0), Taken::Invalid(m) if m.contains("0 ms")));
        let mut no_budget = grant(1, 0, 300);
        no_budget.terminate_within_ms = 0;
        assert!(matches!(book.take(&no_budget, 0), Taken::Invalid(_)));
        assert_eq!(book.held(), None);
        assert_eq!(book.wait(0), None);
    }

    #[test]
    fn huge_values_saturate_instead_of_wrapping() {
        let mut book = LeaseBook::new();
        book.take(&grant(1, 0, u64::MAX), u64::MAX);
        assert_eq!(book.held().unwrap().ends_ns, u64::MAX);
        assert_eq!(book.expire(u64::MAX - 1), None);
    }
}
