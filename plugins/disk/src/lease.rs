//! Taking the on-disk lease in the delta-lease way (as sanlock does): read the record; a record of
//! this node is ours to resume; a blank or released one is free; another node's is free only once
//! its renewal counter has not moved for a whole lease time. Then write our record, wait a settle
//! time and read it back, so of two nodes that wrote at once only the last one keeps it. Not the
//! renewals (renewer.rs) nor the I/O (area.rs).

use crate::area::LeaseArea;
use crate::record::{LeaseRecord, LeaseState, Sector};
use crate::worker::Worker;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Who asks for the lease, and for how long a lease lasts.
#[derive(Clone, Debug)]
pub struct Claim {
    pub node: String,
    pub incarnation: u64,
    pub lease: Duration,
}

/// Why the lease was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A live holder renewed it while we watched.
    Held { holder: String, renewed_ms: u128 },
    /// The record changed to another node's while we took it.
    LostRace { holder: String },
    /// The device did not answer, or answered with an error.
    Io(String),
}

impl Refusal {
    pub fn message(&self, device: &str) -> String {
        match self {
            Refusal::Held { holder, renewed_ms } => {
                format!("disk {device} is held by node {holder} (renewed {renewed_ms} ms ago)")
            }
            Refusal::LostRace { holder } => {
                format!("disk {device}: node {holder} took the lease while this node did")
            }
            Refusal::Io(e) => format!("disk {device}: lease I/O failed: {e}"),
        }
    }
}

/// The lease I/O of one resource: its device area, its worker lane and its claim.
#[derive(Clone, Debug)]
pub struct LeaseIo {
    pub area: LeaseArea,
    pub worker: Worker,
    pub claim: Claim,
}

impl LeaseIo {
    /// The I/O deadline of one lease read or write: a quarter of the lease.
    pub fn io_limit(&self) -> Duration {
        (self.claim.lease / 4).max(Duration::from_millis(50))
    }

    pub fn read(&self) -> Result<Sector, Refusal> {
        let area = self.area.clone();
        self.worker
            .run(self.io_limit(), move || area.read())
            .map_err(Refusal::Io)
    }

    pub fn write(&self, record: LeaseRecord) -> Result<(), Refusal> {
        let area = self.area.clone();
        self.worker
            .run(self.io_limit(), move || area.write(&record))
            .map_err(Refusal::Io)
    }

    /// Our record with `generation` and `renewals`, stamped now.
    pub fn ours(&self, generation: u64, renewals: u64, state: LeaseState) -> LeaseRecord {
        LeaseRecord {
            state,
            holder: self.claim.node.clone(),
            incarnation: self.claim.incarnation,
            generation,
            renewals,
            timestamp_ms: now_ms(),
            lease_ms: self.claim.lease.as_millis() as u64,
        }
    }

    /// Takes the lease (see the module's rules). `progress` is told what is being waited for.
    /// Also returns the other node whose stale lease was taken over, if any.
    pub fn acquire(
        &self,
        progress: &dyn Fn(&str),
    ) -> Result<(LeaseRecord, Option<String>), Refusal> {
        let found = self.read()?;
        match &found {
            Sector::Record(r) if r.state == LeaseState::Held && r.holder == self.claim.node => {
                let resumed = self.ours(r.generation, r.renewals + 1, LeaseState::Held);
                self.write(resumed.clone())?;
                Ok((resumed, None))
            }
            Sector::Record(r) if r.state == LeaseState::Held => {
                progress(&format!(
                    "waiting {} ms for node {}'s lease renewals to stop",
                    self.watch_span(r).as_millis(),
                    r.holder
                ));
                let last = self.watch(found.clone(), r)?;
                let previous = Some(r.holder.clone());
                Ok((self.take(generation_of(&last) + 1)?, previous))
            }
            Sector::Corrupt(why) => {
                progress(&format!(
                    "lease record unreadable ({why}): waiting a lease time"
                ));
                let watch_as = LeaseRecord {
                    holder: "unknown".into(),
                    ..self.ours(0, 0, LeaseState::Held)
                };
                let last = self.watch(found.clone(), &watch_as)?;
                Ok((self.take(generation_of(&last) + 1)?, None))
            }
            _ => Ok((self.take(generation_of(&found) + 1)?, None)),
        }
    }

    fn watch_span(&self, holder: &LeaseRecord) -> Duration {
        self.claim
            .lease
            .max(Duration::from_millis(holder.lease_ms.min(600_000)))
    }

    /// Watches the sector for a whole lease of the holder's: any change means a live holder
    /// (or a release, which frees it at once). Returns the last sector seen.
    fn watch(&self, first: Sector, holder: &LeaseRecord) -> Result<Sector, Refusal> {
        let span = self.watch_span(holder);
        let step = (self.claim.lease / 8).max(Duration::from_millis(10));
        let started = Instant::now();
        let mut previous_read = Instant::now();
        let max_polls = span.as_millis() / step.as_millis().max(1) + 4;
        for _ in 0..max_polls {
            if started.elapsed() >= span {
                break;
            }
            std::thread::sleep(step.min(span.saturating_sub(started.elapsed())));
            let now = self.read()?;
            if now != first {
                return match &now {
                    Sector::Record(r) if r.state == LeaseState::Released => Ok(now.clone()),
                    Sector::Record(r) => Err(Refusal::Held {
                        holder: r.holder.clone(),
                        renewed_ms: previous_read.elapsed().as_millis(),
                    }),
                    _ => Err(Refusal::Held {
                        holder: holder.holder.clone(),
                        renewed_ms: previous_read.elapsed().as_millis(),
                    }),
                };
            }
            previous_read = Instant::now();
        }
        Ok(first)
    }

    /// Writes our record, waits the settle time and reads it back.
    fn take(&self, generation: u64) -> Result<LeaseRecord, Refusal> {
        let mine = self.ours(generation, 0, LeaseState::Held);
        self.write(mine.clone())?;
        std::thread::sleep(self.settle());
        match self.read()? {
            Sector::Record(r)
                if r.holder == self.claim.node && r.incarnation == self.claim.incarnation =>
            {
                Ok(mine)
            }
            Sector::Record(r) => Err(Refusal::LostRace { holder: r.holder }),
            _ => Err(Refusal::LostRace {
                holder: "unknown".into(),
            }),
        }
    }

    /// How long a writer waits before reading its record back: longer than another node's
    /// read-to-write gap, so a concurrent writer's record has landed by then.
    fn settle(&self) -> Duration {
        (self.claim.lease / 4).clamp(Duration::from_millis(20), Duration::from_secs(2))
    }

    /// Writes a released record (offline), keeping the generation.
    pub fn release(&self, generation: u64, renewals: u64) -> Result<(), Refusal> {
        self.write(self.ours(generation, renewals + 1, LeaseState::Released))
    }
}

fn generation_of(sector: &Sector) -> u64 {
    match sector {
        Sector::Record(r) => r.generation,
        _ => 0,
    }
}

/// Wall-clock milliseconds, for the record's timestamp (informational: no decision uses it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random incarnation for a host's claim, so a record written by a dead host of this node is
/// told from ours.
pub fn random_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::renewer::Renewer;
    use keelson_plugin::Host;

    struct TempDevice(std::path::PathBuf);
    impl Drop for TempDevice {
        fn drop(&mut self) {
            std::fs::remove_file(&self.0).ok();
        }
    }

    fn device(tag: &str) -> TempDevice {
        let path = std::env::temp_dir().join(format!("keelson-lease-{tag}-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        TempDevice(path)
    }

    fn io(dev: &TempDevice, node: &str, lease_ms: u64) -> LeaseIo {
        LeaseIo {
            area: LeaseArea::open(&dev.0).expect("O_DIRECT on the temp dir's filesystem"),
            worker: Worker::new("lease"),
            claim: Claim {
                node: node.into(),
                incarnation: random_incarnation(),
                lease: Duration::from_millis(lease_ms),
            },
        }
    }

    #[test]
    fn a_live_holder_blocks_others_and_a_dead_ones_lease_is_waited_out() {
        let dev = device("takeover");
        let a = io(&dev, "a", 400);
        let (record, previous) = a.acquire(&|_| {}).unwrap();
        assert_eq!((record.generation, previous), (1, None));
        let renewing =
            Renewer::start(a.clone(), record, Host::detached(), Box::new(|| None)).unwrap();

        let b = io(&dev, "b", 400);
        let started = Instant::now();
        let refused = b.acquire(&|_| {}).unwrap_err();
        let msg = refused.message("/dev/x");
        assert!(
            msg.starts_with("disk /dev/x is held by node a (renewed "),
            "{msg}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );

        // a dies without releasing: its renewals stop, b waits a whole lease and takes it.
        drop(renewing);
        let started = Instant::now();
        let (taken, previous) = b.acquire(&|_| {}).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!((taken.generation, previous.as_deref()), (2, Some("a")));
        assert!(matches!(b.read().unwrap(), Sector::Record(r) if r.holder == "b"));
    }

    #[test]
    fn a_released_or_own_record_is_taken_without_waiting() {
        let dev = device("release");
        let a = io(&dev, "a", 2000);
        let (record, _) = a.acquire(&|_| {}).unwrap();
        // A new host of the same node resumes the record at once, with its own incarnation.
        let again = io(&dev, "a", 2000);
        let started = Instant::now();
        let (resumed, _) = again.acquire(&|_| {}).unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(resumed.generation, record.generation);
        assert_ne!(resumed.incarnation, record.incarnation);
        again.release(resumed.generation, resumed.renewals).unwrap();
        let b = io(&dev, "b", 2000);
        let started = Instant::now();
        let (taken, previous) = b.acquire(&|_| {}).unwrap();
        assert!(started.elapsed() < Duration::from_millis(1500));
        assert_eq!((taken.generation, previous), (2, None));
    }

    #[test]
    fn a_renewer_whose_record_was_taken_reports_the_loss() {
        let dev = device("lost");
        let a = io(&dev, "a", 400);
        let (record, _) = a.acquire(&|_| {}).unwrap();
        let renewing =
            Renewer::start(a.clone(), record, Host::detached(), Box::new(|| None)).unwrap();
        let thief = io(&dev, "c", 400);
        thief.write(thief.ours(9, 0, LeaseState::Held)).unwrap();
        let lost = (0..200).find_map(|_| {
            std::thread::sleep(Duration::from_millis(10));
            renewing.check(Duration::from_millis(400)).err()
        });
        let lost = lost.expect("the renewer never noticed");
        assert!(
            lost.contains("lease lost") && lost.contains("node c"),
            "{lost}"
        );
    }
}
