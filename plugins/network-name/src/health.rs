//! The last verdict on a network-name's records (from its online, its IsAlive or its watcher
//! thread), shared between them so that LooksAlive can answer from it without touching the
//! network. Not the checks themselves (registrar.rs).

use std::sync::{Arc, Mutex, PoisonError};

/// The last verdict: None while the records were last seen right, else why not.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<Mutex<Option<String>>>);

impl Health {
    pub fn set_ok(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn set_failed(&self, why: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.to_string());
    }

    /// Why the records were last seen wrong, if they were.
    pub fn failure(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_verdict_wins_and_is_shared() {
        let health = Health::default();
        let seen_by_watcher = health.clone();
        assert_eq!(health.failure(), None);
        seen_by_watcher.set_failed("gone");
        assert_eq!(health.failure().as_deref(), Some("gone"));
        health.set_ok();
        assert_eq!(seen_by_watcher.failure(), None);
    }
}
