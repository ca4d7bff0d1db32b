//! The file-share witness on a real directory: claim, renew, release, the signed record refusing a
//! foreign writer, stale claims, and two nodes racing for every generation (exactly one wins).

use std::fs;
use std::sync::{Arc, Barrier};
use std::thread;

use keelson_quorum::{
    ClaimOutcome, FileWitness, LeaseRecord, LeaseStore, RenewOutcome, WitnessKey,
};

fn key() -> WitnessKey {
    WitnessKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn record(holder: u64, generation: u64, expiry_ms: u64) -> LeaseRecord {
    LeaseRecord {
        holder,
        generation,
        expiry_ms,
        released: false,
    }
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn claim_renew_release_and_supersede() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = FileWitness::open(dir.path(), key(), 1).unwrap();
    assert_eq!(a.read().unwrap(), None);
    let first = record(1, 1, 1000);
    assert_eq!(a.claim(None, &first).unwrap(), ClaimOutcome::Won);
    assert_eq!(a.read().unwrap(), Some(first));
    assert_eq!(names(dir.path()), vec!["lease.00000000000000000001"]);

    let renewed = record(1, 1, 2000);
    assert_eq!(a.renew(&renewed).unwrap(), RenewOutcome::Renewed);
    let mut b = FileWitness::open(dir.path(), key(), 2).unwrap();
    assert_eq!(
        b.read().unwrap(),
        Some(renewed),
        "another node sees the renewal"
    );

    // B claims generation 2 (as it would after A's lease expired): A's renewal now fails.
    let taken = record(2, 2, 5000);
    assert_eq!(b.claim(Some(&renewed), &taken).unwrap(), ClaimOutcome::Won);
    assert_eq!(
        a.renew(&record(1, 1, 3000)).unwrap(),
        RenewOutcome::Lost(Some(taken))
    );
    assert_eq!(b.remove_superseded().unwrap(), 1);
    assert_eq!(names(dir.path()), vec!["lease.00000000000000000002"]);

    let released = LeaseRecord {
        released: true,
        ..taken
    };
    assert_eq!(b.renew(&released).unwrap(), RenewOutcome::Renewed);
    assert_eq!(a.read().unwrap(), Some(released));
    assert_eq!(
        names(dir.path()).len(),
        1,
        "no temporary file is left behind"
    );
}

#[test]
fn a_claim_on_a_stale_view_is_lost_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = FileWitness::open(dir.path(), key(), 1).unwrap();
    let mut b = FileWitness::open(dir.path(), key(), 2).unwrap();
    let first = record(1, 1, 1000);
    assert_eq!(a.claim(None, &first).unwrap(), ClaimOutcome::Won);
    // B decided on "no lease at all": too late.
    assert_eq!(
        b.claim(None, &record(2, 1, 1000)).unwrap(),
        ClaimOutcome::Lost(Some(first))
    );
    // A claim must be for exactly the next generation, by this node.
    let e = b
        .claim(Some(&first), &record(2, 5, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("must be for generation 2"), "{e}");
    let e = b
        .claim(Some(&first), &record(1, 2, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a claim by node 2"), "{e}");
    assert_eq!(a.read().unwrap(), Some(first));
    // A generation linked below the current one (a cleaned-up name) does not win.
    let second = record(1, 2, 2000);
    assert_eq!(a.claim(Some(&first), &second).unwrap(), ClaimOutcome::Won);
    a.remove_superseded().unwrap();
    assert!(matches!(
        b.claim(Some(&first), &record(2, 2, 3000)).unwrap(),
        ClaimOutcome::Lost(_)
    ));
}

#[test]
fn a_record_signed_with_another_key_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let other = WitnessKey::new(b"another cluster's key 0123456789").unwrap();
    let mut foreign = FileWitness::open(dir.path(), other, 7).unwrap();
    foreign.claim(None, &record(7, 1, 1)).unwrap();
    let mut a = FileWitness::open(dir.path(), key(), 1).unwrap();
    let e = a.read().unwrap_err().to_string();
    assert!(e.contains("lease.00000000000000000001"), "{e}");
    assert!(e.contains("HMAC does not verify"), "{e}");
    assert!(a.claim(None, &record(1, 1, 1)).is_err());
    assert!(a.renew(&record(1, 1, 1)).is_err());

    // A truncated or garbage file is refused too.
    fs::write(dir.path().join("lease.00000000000000000002"), b"garbage").unwrap();
    let e = a.read().unwrap_err().to_string();
    assert!(e.contains("is 7 bytes long"), "{e}");
}

#[test]
fn a_missing_directory_or_a_plain_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = FileWitness::open(&missing, key(), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&missing.display().to_string()), "{e}");
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let e = FileWitness::open(&file, key(), 1).unwrap_err().to_string();
    assert!(e.contains("it is not a directory"), "{e}");
    // A directory that disappears under a node: reads fail with the reason, not "no lease".
    let gone = dir.path().join("gone");
    fs::create_dir(&gone).unwrap();
    let mut w = FileWitness::open(&gone, key(), 1).unwrap();
    fs::remove_dir(&gone).unwrap();
    let e = w.read().unwrap_err().to_string();
    assert!(e.contains("list") && e.contains("No such file"), "{e}");
}

#[test]
fn two_nodes_racing_for_each_generation_never_both_win() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = 200;
    let barrier = Arc::new(Barrier::new(2));
    let racers: Vec<_> = [1u64, 2]
        .into_iter()
        .map(|me| {
            let barrier = barrier.clone();
            let path = dir.path().to_path_buf();
            thread::spawn(move || {
                let mut w = FileWitness::open(&path, key(), me).unwrap();
                let mut won = Vec::new();
                for round in 0..rounds {
                    barrier.wait();
                    // Both decide on the same view: the lease as it stood at the round's start.
                    let previous = w.read().unwrap();
                    barrier.wait();
                    let generation = previous.map_or(1, |p| p.generation + 1);
                    let claim = record(me, generation, round);
                    if w.claim(previous.as_ref(), &claim).unwrap() == ClaimOutcome::Won {
                        won.push(generation);
                    }
                    barrier.wait();
                }
                won
            })
        })
        .collect();
    let won: Vec<Vec<u64>> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    for generation in 1..=rounds {
        let winners = won.iter().filter(|w| w.contains(&generation)).count();
        assert_eq!(winners, 1, "generation {generation}: {winners} winners");
    }
    assert!(
        !won[0].is_empty() && !won[1].is_empty(),
        "both won some: {won:?}"
    );
}

#[test]
fn a_lease_file_naming_an_impossible_generation_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("lease.99999999999999999999"), b"x").unwrap();
    let mut w = FileWitness::open(dir.path(), key(), 1).unwrap();
    let e = w.read().unwrap_err().to_string();
    assert!(e.contains("names no valid generation"), "{e}");
}
