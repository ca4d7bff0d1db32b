//! The disk witness on a real loop device (created with util-linux `losetup` over a 1 MiB file and
//! detached even when a test fails): claim, renew, release, a foreign record refused, and two nodes
//! racing for each generation through their own O_DIRECT handles (never two winners). Needs root;
//! under CI=true a missing prerequisite fails the test.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::LoopDevice;
use keelson_quorum::{
    ClaimOutcome, DiskWitness, LeaseRecord, LeaseStore, LeaseTimings, RenewOutcome, WitnessKey,
};

fn key() -> WitnessKey {
    WitnessKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

/// io_bound = give_up / 6 = 50 ms: a claim takes 150 ms.
fn timings() -> LeaseTimings {
    LeaseTimings::new(50, 300, 400, 50).unwrap()
}

fn record(holder: u64, generation: u64, expiry_ms: u64) -> LeaseRecord {
    LeaseRecord {
        holder,
        generation,
        expiry_ms,
        released: false,
    }
}

#[test]
fn claim_renew_and_release_on_a_loop_device() {
    let Some(dev) = LoopDevice::create(1 << 20) else {
        return;
    };
    let mut a = DiskWitness::open(dev.path(), key(), 1, &timings()).unwrap();
    let mut b = DiskWitness::open(dev.path(), key(), 2, &timings()).unwrap();
    assert_eq!(a.read().unwrap(), None, "a zeroed device holds no lease");
    let first = record(1, 1, 1000);
    assert_eq!(a.claim(None, &first).unwrap(), ClaimOutcome::Won);
    assert_eq!(
        b.read().unwrap(),
        Some(first),
        "the other handle sees it (no page cache)"
    );
    let renewed = record(1, 1, 2000);
    assert_eq!(a.renew(&renewed).unwrap(), RenewOutcome::Renewed);
    assert_eq!(
        b.claim(None, &record(2, 1, 1)).unwrap(),
        ClaimOutcome::Lost(Some(renewed))
    );
    let taken = record(2, 2, 3000);
    assert_eq!(b.claim(Some(&renewed), &taken).unwrap(), ClaimOutcome::Won);
    assert_eq!(a.renew(&renewed).unwrap(), RenewOutcome::Lost(Some(taken)));
    let released = LeaseRecord {
        released: true,
        ..taken
    };
    assert_eq!(b.renew(&released).unwrap(), RenewOutcome::Renewed);
    assert_eq!(a.read().unwrap(), Some(released));
}

#[test]
fn a_foreign_record_or_a_tiny_device_is_refused() {
    let Some(dev) = LoopDevice::create(1 << 20) else {
        return;
    };
    let other = WitnessKey::new(b"another cluster's key 0123456789").unwrap();
    let mut foreign = DiskWitness::open(dev.path(), other, 9, &timings()).unwrap();
    foreign.claim(None, &record(9, 1, 1)).unwrap();
    let mut a = DiskWitness::open(dev.path(), key(), 1, &timings()).unwrap();
    let e = a.read().unwrap_err().to_string();
    assert!(e.contains(&dev.path().display().to_string()), "{e}");
    assert!(e.contains("HMAC does not verify"), "{e}");
    assert!(a.claim(None, &record(1, 1, 1)).is_err());

    let Some(tiny) = LoopDevice::create(4096) else {
        return;
    };
    let e = DiskWitness::open(tiny.path(), key(), 1, &timings())
        .unwrap_err()
        .to_string();
    assert!(e.contains("a disk witness needs at least 8192"), "{e}");
}

#[test]
fn two_nodes_racing_on_the_device_never_both_win() {
    let Some(dev) = LoopDevice::create(1 << 20) else {
        return;
    };
    let rounds = 12;
    let barrier = Arc::new(Barrier::new(2));
    let racers: Vec<_> = [1u64, 2]
        .into_iter()
        .map(|me| {
            let barrier = barrier.clone();
            let path = dev.path().to_path_buf();
            thread::spawn(move || {
                let mut w = DiskWitness::open(&path, key(), me, &timings()).unwrap();
                let mut outcomes = Vec::new();
                for round in 0..rounds {
                    barrier.wait();
                    let previous = w.read().unwrap();
                    barrier.wait();
                    let generation = previous.map_or(1, |p| p.generation + 1);
                    let claim = record(me, generation, round);
                    // An Err is a claim whose read-to-write gap broke the bound: never a win.
                    let won = matches!(w.claim(previous.as_ref(), &claim), Ok(ClaimOutcome::Won));
                    outcomes.push((generation, won));
                    barrier.wait();
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<Vec<(u64, bool)>> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let mut decided = 0;
    for (round, (&(g1, w1), &(g2, w2))) in outcomes[0].iter().zip(&outcomes[1]).enumerate() {
        assert_eq!(g1, g2, "round {round}: both claimed from the same view");
        assert!(!(w1 && w2), "round {round}: both nodes won generation {g1}");
        decided += usize::from(w1 || w2);
    }
    assert!(
        decided > rounds as usize / 2,
        "most rounds have a winner: {outcomes:?}"
    );
}

/// A lease held by node 1, for opening the voter's store (only a machine can make one).
fn held_lease() -> keelson_quorum::HeldLease {
    use keelson_quorum::{LeaseEvent, LeaseMachine, Now};
    let mut m = LeaseMachine::new(1, timings());
    let now = Now {
        mono_ms: 0,
        wall_ms: 0,
    };
    let released = LeaseRecord {
        released: true,
        ..record(2, 1, 0)
    };
    m.handle(now, LeaseEvent::Tick);
    m.handle(now, LeaseEvent::Read(Ok(Some(released))));
    m.handle(now, LeaseEvent::Claimed(Ok(ClaimOutcome::Won)));
    m.held().expect("the lease is held")
}

#[tokio::test]
async fn the_voter_store_on_the_device_keeps_what_it_was_given() {
    use keelson_quorum::{open_disk_witness_store, SystemClock};
    use keelson_raft::openraft::storage::RaftLogStorage;
    use keelson_raft::openraft::Vote;
    let Some(dev) = LoopDevice::create(64 << 20) else {
        return;
    };
    let fence = SystemClock::default().fence();
    fence.open_until(u64::MAX);
    let lease = held_lease();
    let vote = Vote::new(4, 2);
    {
        let mut store = open_disk_witness_store(dev.path(), &lease, &fence).unwrap();
        assert_eq!(store.log.read_vote().await.unwrap(), None, "a fresh store");
        store.log.save_vote(&vote).await.unwrap();
    }
    let mut store = open_disk_witness_store(dev.path(), &lease, &fence).unwrap();
    assert_eq!(
        store.log.read_vote().await.unwrap(),
        Some(vote),
        "reopened from the device"
    );
    // The lease block is untouched by the store.
    let mut w = DiskWitness::open(dev.path(), key(), 1, &timings()).unwrap();
    assert_eq!(w.read().unwrap(), None);
    drop(store);

    // A device too small for a store, and one whose store header is foreign, are refused.
    let Some(small) = LoopDevice::create(1 << 20) else {
        return;
    };
    let e = open_disk_witness_store(small.path(), &lease, &fence)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("a disk witness needs at least 67108864"), "{e}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(dev.path())
        .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, b"NOTOURS!", 8192))
        .unwrap();
    let e = open_disk_witness_store(dev.path(), &lease, &fence)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("not a keelson witness store"), "{e}");
}
