//! The disk witness on a real loop device (created with util-linux `losetup` over a 1 MiB file and
//! detached even when a test fails): claim, renew, release, a foreign record refused, and two nodes
//! racing for each generation through their own O_DIRECT handles (never two winners). Needs root;
//! under CI=true a missing prerequisite fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;

use keelson_quorum::{
    ClaimOutcome, DiskWitness, LeaseRecord, LeaseStore, LeaseTimings, RenewOutcome, WitnessKey,
};

/// A loop device over a temporary file, detached on drop.
struct LoopDevice {
    device: PathBuf,
    _backing: tempfile::NamedTempFile,
}

impl LoopDevice {
    /// None (with the reason printed) when this machine cannot make one and CI is not set.
    fn create(bytes: u64) -> Option<LoopDevice> {
        let backing = tempfile::NamedTempFile::new().unwrap();
        backing.as_file().set_len(bytes).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(backing.path())
            .output();
        let reason = match out {
            Ok(o) if o.status.success() => {
                let device = String::from_utf8(o.stdout).unwrap().trim().to_string();
                return Some(LoopDevice {
                    device: PathBuf::from(device),
                    _backing: backing,
                });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("cannot run losetup: {e}"),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no loop device could be set up: {reason}"
        );
        eprintln!("skipped: no loop device ({reason}); run as root");
        None
    }

    fn path(&self) -> &Path {
        &self.device
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let status = Command::new("losetup").arg("-d").arg(&self.device).status();
        if !matches!(status, Ok(s) if s.success()) && !thread::panicking() {
            panic!("cannot detach {}: {status:?}", self.device.display());
        }
    }
}

fn key() -> WitnessKey {
    WitnessKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

/// io_bound = give_up / 4 = 50 ms: a claim takes 150 ms.
fn timings() -> LeaseTimings {
    LeaseTimings::new(50, 200, 300, 50).unwrap()
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
