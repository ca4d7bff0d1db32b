//! A fixed-size table of loaded objects' address ranges that a signal handler can search: filled at
//! load time (one slot per object, published with a release store), read with atomic loads only, no
//! allocation and no locks. Used to say whose code an instruction address belongs to. Not finding
//! the ranges (loaded_object.rs) nor what a slot means (the caller numbers its plugins by slot).

use crate::loaded_object::LoadedObject;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many objects the table holds.
pub const MAX_OBJECTS: usize = 64;
/// How many PT_LOAD segments of one object it keeps (ELF objects have 2 to 5).
pub const MAX_SEGMENTS: usize = 8;

/// Where an address was found: the object's slot and the address relative to its load bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub slot: u32,
    pub offset: usize,
}

/// Why an object could not be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// All `MAX_OBJECTS` slots are taken.
    Full,
    /// The object has more than `MAX_SEGMENTS` segments.
    TooManySegments(usize),
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Full => write!(f, "the code address table is full ({MAX_OBJECTS} objects)"),
            TableError::TooManySegments(n) => write!(
                f,
                "the object has {n} loadable segments, more than the {MAX_SEGMENTS} the table keeps"
            ),
        }
    }
}

impl std::error::Error for TableError {}

/// One object's ranges. Written once, before `ready` is set; never changed afterwards.
struct Slot {
    ready: AtomicBool,
    base: AtomicUsize,
    count: AtomicUsize,
    starts: [AtomicUsize; MAX_SEGMENTS],
    ends: [AtomicUsize; MAX_SEGMENTS],
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            ready: AtomicBool::new(false),
            base: AtomicUsize::new(0),
            count: AtomicUsize::new(0),
            starts: [const { AtomicUsize::new(0) }; MAX_SEGMENTS],
            ends: [const { AtomicUsize::new(0) }; MAX_SEGMENTS],
        }
    }

    /// Whether `addr` lies in one of this (ready) slot's segments. Async-signal-safe.
    fn contains(&self, addr: usize) -> bool {
        let count = self.count.load(Ordering::Relaxed).min(MAX_SEGMENTS);
        (0..count).any(|i| {
            self.starts[i].load(Ordering::Relaxed) <= addr
                && addr < self.ends[i].load(Ordering::Relaxed)
        })
    }
}

/// The table; meant to be a `static`.
pub struct AddressTable {
    /// Slots handed out so far (may exceed MAX_OBJECTS after failed claims).
    claimed: AtomicUsize,
    slots: [Slot; MAX_OBJECTS],
}

impl Default for AddressTable {
    fn default() -> Self {
        AddressTable::new()
    }
}

impl AddressTable {
    pub const fn new() -> AddressTable {
        AddressTable {
            claimed: AtomicUsize::new(0),
            slots: [const { Slot::new() }; MAX_OBJECTS],
        }
    }

    /// Records `object`'s segments in a fresh slot and returns the slot number. Not for signal
    /// handlers (it is cheap, but callers build `object` with allocation). Safe to call from several
    /// threads: each claims its own slot.
    pub fn insert(&self, object: &LoadedObject) -> Result<u32, TableError> {
        if object.segments.len() > MAX_SEGMENTS {
            return Err(TableError::TooManySegments(object.segments.len()));
        }
        let index = self.claimed.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = self.slots.get(index) else {
            return Err(TableError::Full);
        };
        for (i, segment) in object.segments.iter().enumerate() {
            slot.starts[i].store(segment.start, Ordering::Relaxed);
            slot.ends[i].store(segment.end, Ordering::Relaxed);
        }
        slot.base.store(object.base, Ordering::Relaxed);
        slot.count.store(object.segments.len(), Ordering::Relaxed);
        // Publishes everything stored above to any thread that reads `ready` as true.
        slot.ready.store(true, Ordering::Release);
        Ok(index as u32)
    }

    /// The slot whose object maps `addr`, and `addr` relative to that object's load bias.
    /// Async-signal-safe: bounded loop, atomic loads only.
    pub fn lookup(&self, addr: usize) -> Option<Hit> {
        let claimed = self.claimed.load(Ordering::Relaxed).min(MAX_OBJECTS);
        self.slots[..claimed]
            .iter()
            .enumerate()
            .find(|(_, slot)| slot.ready.load(Ordering::Acquire) && slot.contains(addr))
            .map(|(index, slot)| Hit {
                slot: index as u32,
                offset: addr.wrapping_sub(slot.base.load(Ordering::Relaxed)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaded_object::Segment;

    fn object(base: usize, ranges: &[(usize, usize)]) -> LoadedObject {
        LoadedObject {
            base,
            name: format!("obj@{base:x}"),
            segments: ranges
                .iter()
                .map(|&(start, end)| Segment {
                    start,
                    end,
                    executable: true,
                })
                .collect(),
        }
    }

    #[test]
    fn lookup_finds_the_object_whose_segment_holds_the_address() {
        let table = AddressTable::new();
        assert_eq!(table.lookup(0x1000), None, "empty table");
        let a = table
            .insert(&object(0x1000, &[(0x1000, 0x2000), (0x3000, 0x3800)]))
            .unwrap();
        let b = table
            .insert(&object(0x10_0000, &[(0x10_0000, 0x10_4000)]))
            .unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(table.lookup(0x1000), Some(Hit { slot: 0, offset: 0 }));
        assert_eq!(
            table.lookup(0x37ff),
            Some(Hit {
                slot: 0,
                offset: 0x27ff
            })
        );
        assert_eq!(
            table.lookup(0x10_0010),
            Some(Hit {
                slot: 1,
                offset: 0x10
            })
        );
        for outside in [0xfff, 0x2000, 0x2fff, 0x3800, 0x10_4000, 0x10] {
            assert_eq!(table.lookup(outside), None, "{outside:#x}");
        }
    }

    #[test]
    fn a_full_table_and_an_oversized_object_are_refused() {
        let table = AddressTable::new();
        let many: Vec<(usize, usize)> = (0..=MAX_SEGMENTS).map(|i| (i * 16, i * 16 + 8)).collect();
        assert_eq!(
            table.insert(&object(0, &many)),
            Err(TableError::TooManySegments(MAX_SEGMENTS + 1))
        );
        for i in 0..MAX_OBJECTS {
            let start = 0x1000 * (i + 1);
            assert_eq!(
                table.insert(&object(start, &[(start, start + 0x100)])),
                Ok(i as u32)
            );
        }
        assert_eq!(table.insert(&object(1, &[(1, 2)])), Err(TableError::Full));
        let last = 0x1000 * MAX_OBJECTS;
        assert_eq!(
            table.lookup(last + 1),
            Some(Hit {
                slot: MAX_OBJECTS as u32 - 1,
                offset: 1
            })
        );
    }

    #[test]
    fn concurrent_inserts_each_get_their_own_slot() {
        static TABLE: AddressTable = AddressTable::new();
        let threads: Vec<_> = (1..=8usize)
            .map(|i| {
                std::thread::spawn(move || {
                    let start = i << 20;
                    (
                        i,
                        TABLE
                            .insert(&object(start, &[(start, start + 64)]))
                            .unwrap(),
                    )
                })
            })
            .collect();
        for thread in threads {
            let (i, slot) = thread.join().unwrap();
            assert_eq!(TABLE.lookup((i << 20) + 1).map(|h| h.slot), Some(slot));
        }
    }
}
