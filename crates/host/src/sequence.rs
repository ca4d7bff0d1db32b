//! In-order requests per resource across its opens, pure: while a resource's open is in flight the
//! requests for it (calls, health plans) wait behind it in order; Opens are numbered so the answer of
//! one that a Close or a newer Open superseded is told apart, and its instance closed within the
//! deadline of the Close that superseded it. No I/O and no clock: the caller sends, this decides.

use keelson_types::ResourceId;
use std::collections::HashMap;

/// A resource's open in flight and the requests waiting for it.
struct Opening<T> {
    seq: u64,
    waiting: Vec<T>,
}

/// What the answer to an Open means.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenFate<T> {
    /// It is the resource's current open: these requests waited for it, in order.
    Current(Vec<T>),
    /// Nobody wants this instance any more: close it within this deadline (ms).
    Stale { close_deadline_ms: u64 },
}

/// The ordering state of every resource of a node; `T` is a request that can wait.
pub struct Sequencer<T> {
    opening: HashMap<ResourceId, Opening<T>>,
    /// Opens a Close superseded while in flight, by number: that Close's deadline.
    superseded: HashMap<u64, u64>,
    last_seq: u64,
}

impl<T> Default for Sequencer<T> {
    fn default() -> Self {
        Sequencer {
            opening: HashMap::new(),
            superseded: HashMap::new(),
            last_seq: 0,
        }
    }
}

impl<T> Sequencer<T> {
    /// A new Open of `resource`: its number. Requests that waited for an earlier open still in
    /// flight now wait for this one.
    pub fn begin_open(&mut self, resource: ResourceId) -> u64 {
        self.last_seq += 1;
        let seq = self.last_seq;
        let waiting = self
            .opening
            .remove(&resource)
            .map(|o| o.waiting)
            .unwrap_or_default();
        self.opening.insert(resource, Opening { seq, waiting });
        seq
    }

    /// True while an open of `resource` is in flight.
    pub fn is_opening(&self, resource: ResourceId) -> bool {
        self.opening.contains_key(&resource)
    }

    /// True when `seq` is the current open of `resource`.
    pub fn is_current(&self, resource: ResourceId, seq: u64) -> bool {
        self.opening.get(&resource).is_some_and(|o| o.seq == seq)
    }

    /// A request for `resource`: Some (send it now) unless an open is in flight, which it then
    /// waits for (None).
    pub fn request(&mut self, resource: ResourceId, request: T) -> Option<T> {
        match self.opening.get_mut(&resource) {
            Some(opening) => {
                opening.waiting.push(request);
                None
            }
            None => Some(request),
        }
    }

    /// `resource` is closed with `deadline_ms`: an open in flight is superseded (its instance will
    /// be closed within that deadline when it arrives) and the requests waiting for it are dropped.
    pub fn close(&mut self, resource: ResourceId, deadline_ms: u64) {
        if let Some(opening) = self.opening.remove(&resource) {
            self.superseded.insert(opening.seq, deadline_ms);
        }
    }

    /// Open number `seq` of `resource` (made with `open_deadline_ms`) was answered.
    pub fn opened(&mut self, resource: ResourceId, seq: u64, open_deadline_ms: u64) -> OpenFate<T> {
        let close_deadline_ms = self.superseded.remove(&seq).unwrap_or(open_deadline_ms);
        if !self.is_current(resource, seq) {
            return OpenFate::Stale { close_deadline_ms };
        }
        let waiting = self
            .opening
            .remove(&resource)
            .map(|o| o.waiting)
            .unwrap_or_default();
        OpenFate::Current(waiting)
    }

    /// Open number `seq` of `resource` will never be answered (its host could not start, or was
    /// stopped first): forget it, and the requests waiting for it if it is the current one.
    pub fn forget(&mut self, resource: ResourceId, seq: u64) {
        self.superseded.remove(&seq);
        if self.is_current(resource, seq) {
            self.opening.remove(&resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ResourceId = ResourceId(1);

    #[test]
    fn requests_wait_for_the_open_in_flight_and_come_out_in_order() {
        let mut s = Sequencer::default();
        assert_eq!(
            s.request(R, "before"),
            Some("before"),
            "not opening: send now"
        );
        let seq = s.begin_open(R);
        assert_eq!(s.request(R, "a"), None);
        assert_eq!(s.request(R, "b"), None);
        assert_eq!(s.opened(R, seq, 300_000), OpenFate::Current(vec!["a", "b"]));
        assert_eq!(s.request(R, "c"), Some("c"));
        assert!(!s.is_opening(R));
    }

    #[test]
    fn a_newer_open_takes_over_the_waiting_requests_and_the_older_answer_is_stale() {
        let mut s = Sequencer::default();
        let first = s.begin_open(R);
        s.request(R, "a");
        let second = s.begin_open(R);
        s.request(R, "b");
        assert_eq!(
            s.opened(R, first, 4_000),
            OpenFate::Stale {
                close_deadline_ms: 4_000
            },
            "no Close superseded it: its own Open's deadline"
        );
        assert_eq!(
            s.opened(R, second, 4_000),
            OpenFate::Current(vec!["a", "b"])
        );
    }

    #[test]
    fn a_close_supersedes_the_open_in_flight_with_its_own_deadline() {
        let mut s = Sequencer::default();
        let seq = s.begin_open(R);
        s.request(R, "dropped");
        s.close(R, 250);
        assert!(!s.is_opening(R));
        assert_eq!(
            s.opened(R, seq, 300_000),
            OpenFate::Stale {
                close_deadline_ms: 250
            }
        );
        // Reopened after the close: the stale answer of the first does not disturb the second.
        let mut s = Sequencer::default();
        let first = s.begin_open(R);
        s.close(R, 250);
        let second = s.begin_open(R);
        s.request(R, "x");
        assert!(matches!(
            s.opened(R, first, 9),
            OpenFate::Stale {
                close_deadline_ms: 250
            }
        ));
        assert_eq!(s.opened(R, second, 9), OpenFate::Current(vec!["x"]));
    }

    #[test]
    fn a_forgotten_open_drops_its_waiting_requests_only_if_current() {
        let mut s = Sequencer::default();
        let first = s.begin_open(R);
        let second = s.begin_open(R);
        s.request(R, "kept");
        s.forget(R, first);
        assert!(s.is_opening(R), "the newer open still counts");
        s.forget(R, second);
        assert!(!s.is_opening(R));
        assert_eq!(s.request(R, "now"), Some("now"));
    }
}
