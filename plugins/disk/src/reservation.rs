//! The SCSI-3 persistent reservation, taken after the lease where the device has them: this
//! node's key (from its name) is registered and holds a write-exclusive reservation, preempting a
//! node whose lease ran out, so a stale holder that wakes up cannot write. A device without them
//! (a loop device) answers "unsupported" and the on-disk lease alone arbitrates. Not the lease.

use crate::lease::LeaseIo;
use keelson_sys::blockdev::{pr_preempt, pr_register, pr_release, pr_reserve, PrOutcome};

/// A node's reservation key: a hash of its name (never 0, which means "no key").
pub fn key_of(node: &str) -> u64 {
    let h = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h.max(1)
}

/// Registers and reserves; Some(key) when the device took it, None when it has no reservations.
pub fn reserve(io: &LeaseIo, node: &str, previous: Option<&str>) -> Result<Option<u64>, String> {
    let key = key_of(node);
    let area = io.area.clone();
    let previous_key = previous.map(key_of);
    io.worker.run(
        io.io_limit().max(std::time::Duration::from_secs(5)),
        move || {
            let file = area.file();
            let io_err = |e: std::io::Error| format!("persistent reservation: {e}");
            match pr_register(file, key).map_err(io_err)? {
                PrOutcome::Unsupported => return Ok(None),
                PrOutcome::Conflict => {
                    return Err("persistent reservation: register refused".into())
                }
                PrOutcome::Done => {}
            }
            match pr_reserve(file, key).map_err(io_err)? {
                PrOutcome::Done => Ok(Some(key)),
                PrOutcome::Unsupported => Ok(None),
                PrOutcome::Conflict => match previous_key {
                    Some(old) => match pr_preempt(file, old, key).map_err(io_err)? {
                        PrOutcome::Done => Ok(Some(key)),
                        _ => Err(
                            "persistent reservation: preempting the previous holder failed".into(),
                        ),
                    },
                    None => Err("persistent reservation held by another initiator".into()),
                },
            }
        },
    )
}

/// Releases our reservation.
pub fn release(io: &LeaseIo, key: u64) -> Result<(), String> {
    let area = io.area.clone();
    io.worker.run(
        io.io_limit().max(std::time::Duration::from_secs(5)),
        move || {
            pr_release(area.file(), key)
                .map(|_| ())
                .map_err(|e| format!("persistent reservation release: {e}"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_node_and_are_never_zero() {
        assert_ne!(key_of("n1"), key_of("n2"));
        assert_eq!(key_of("n1"), key_of("n1"));
        assert_ne!(key_of(""), 0);
    }
}
