//! The per-route replay guard: within one sender incarnation a sequence number is accepted once,
//! late arrivals inside a 64-packet window are accepted (reordering), anything older or seen before
//! is a replay. Not incarnation policy (detector.rs resets the window when a peer restarts).

/// How many sequence numbers behind the highest one a late packet may be.
pub const WINDOW: u64 = 64;

/// What the window made of one sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The newest so far; `skipped` numbers between it and the previous newest were not seen.
    Newest { skipped: u64 },
    /// Older than the newest but unseen and inside the window (reordered).
    Late,
    /// Seen before, or too old to tell: dropped.
    Replay,
}

/// Sequence numbers seen on one route from one incarnation.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// The highest sequence number accepted (0: none yet; senders start at 1).
    highest: u64,
    /// Bit i set: `highest - i` was seen.
    seen: u64,
}

impl ReplayWindow {
    /// Checks `seq` and, unless it is a replay, records it.
    pub fn accept(&mut self, seq: u64) -> Verdict {
        if seq == 0 {
            return Verdict::Replay;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            let skipped = if self.highest == 0 { 0 } else { shift - 1 };
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = seq;
            return Verdict::Newest { skipped };
        }
        let age = self.highest - seq;
        if age >= WINDOW || self.seen & (1 << age) != 0 {
            return Verdict::Replay;
        }
        self.seen |= 1 << age;
        Verdict::Late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_late_duplicate_and_too_old() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(1), Verdict::Newest { skipped: 0 });
        assert_eq!(w.accept(1), Verdict::Replay);
        assert_eq!(w.accept(4), Verdict::Newest { skipped: 2 });
        assert_eq!(w.accept(3), Verdict::Late);
        assert_eq!(w.accept(3), Verdict::Replay);
        assert_eq!(w.accept(200), Verdict::Newest { skipped: 195 });
        assert_eq!(w.accept(200 - WINDOW), Verdict::Replay);
        assert_eq!(w.accept(200 - WINDOW + 1), Verdict::Late);
        assert_eq!(w.accept(0), Verdict::Replay);
    }
}
