//! Runs a piece of redb work so that a panic inside it (redb asserts on some corrupt files) becomes an
//! error message instead of killing the node service with a backtrace. Not error wording (error.rs).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while guarded work runs on this thread: its panics are caught and reported, not printed.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs `f`; a panic in it is returned as `Err(panic message)`, on one line.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-text payload".into());
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_the_hook_is_restored_for_others() {
        assert_eq!(guarded(|| 7), Ok(7));
        let e = guarded(|| -> u32 { panic!("page checksum mismatch") }).unwrap_err();
        assert_eq!(e, "page checksum mismatch");
        let e = guarded(|| -> u32 { panic!("{} pages", 3) }).unwrap_err();
        assert_eq!(e, "3 pages");
        let e = guarded(|| -> u32 { panic!("left: 1\n right: 17") }).unwrap_err();
        assert_eq!(e, "left: 1 right: 17");
        assert!(!GUARDED.with(Cell::get));
    }
}
