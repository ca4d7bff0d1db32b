//! One open resource's call gate: the lock every entry point of that resource runs under, and the
//! plugin handle it guards. It keeps the ABI's promise that calls into one resource never overlap
//! when the fence (fence.rs), from a thread of its own, calls TERMINATE: the fence waits at the gate
//! for the call in progress, calls TERMINATE, and keeps the gate shut until the process exits. Not
//! the calls themselves (resource.rs) nor their deadlines (monitor.rs).

use keelson_abi::{CallFn, KEELSON_ERROR_BUF_LEN, KEELSON_OK};
use keelson_types::{Op, ResourceId};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The plugin's handle for the resource; null before OPEN succeeds and after CLOSE.
pub struct Handle(pub *mut c_void);

// SAFETY: the handle is an opaque pointer the plugin gave us; it is only ever used by the thread
// holding the gate's lock, so moving it between threads (resource thread, fence thread) never
// lets two threads use it at once.
unsafe impl Send for Handle {}

/// What the fence's TERMINATE of one resource came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminated {
    /// TERMINATE returned `status` (0 = ok) with the plugin's message.
    Returned { status: i32, message: String },
    /// Not open (OPEN failed or not yet run, or CLOSE already ran): nothing to terminate.
    NotOpen,
    /// Its type has no TERMINATE entry point.
    NoEntryPoint,
}

/// The gate of one resource.
pub struct CallGate {
    pub resource: ResourceId,
    pub name: String,
    terminate: Option<CallFn>,
    /// The latest DeadlockTimeout the parent sent for this resource's calls.
    deadline_ms: AtomicU64,
    handle: Mutex<Handle>,
}

impl CallGate {
    pub fn new(
        resource: ResourceId,
        name: String,
        terminate: Option<CallFn>,
        deadline_ms: u64,
    ) -> CallGate {
        CallGate {
            resource,
            name,
            terminate,
            deadline_ms: AtomicU64::new(deadline_ms),
            handle: Mutex::new(Handle(std::ptr::null_mut())),
        }
    }

    /// Runs one entry point of this resource (deadline `deadline_ms`) with its handle, alone.
    pub fn call<R>(&self, deadline_ms: u64, body: impl FnOnce(&mut *mut c_void) -> R) -> R {
        self.deadline_ms.store(deadline_ms, Ordering::Relaxed);
        let mut handle = self.lock();
        body(&mut handle.0)
    }

    /// The latest DeadlockTimeout sent for this resource, in ms.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms.load(Ordering::Relaxed)
    }

    /// The fence's TERMINATE: waits for the call in progress (if any) to end, calls TERMINATE on the
    /// thread that calls this, and leaves the gate shut for good (the process exits next), so no
    /// call of the resource ever starts again. Returns how it went and how long TERMINATE took.
    pub fn terminate_for_fence(&self) -> (Terminated, Duration) {
        let guard = self.lock();
        let outcome = self.terminate_locked(&guard);
        std::mem::forget(guard);
        outcome
    }

    fn terminate_locked(&self, handle: &MutexGuard<'_, Handle>) -> (Terminated, Duration) {
        if handle.0.is_null() {
            return (Terminated::NotOpen, Duration::ZERO);
        }
        let Some(terminate) = self.terminate else {
            return (Terminated::NoEntryPoint, Duration::ZERO);
        };
        let mut err = [0 as c_char; KEELSON_ERROR_BUF_LEN];
        let _attribution = crate::crash::enter(self.resource, Op::Terminate);
        let start = Instant::now();
        // SAFETY: a v1 call entry point on the handle its own open returned, under the gate's lock,
        // so no other call of this resource runs; the error buffer's last byte is never handed over.
        let status = unsafe { terminate(handle.0, err.as_mut_ptr(), err.len() - 1) };
        let took = start.elapsed();
        let message = if status == KEELSON_OK {
            String::new()
        } else {
            // SAFETY: the buffer is zeroed and its last byte never written, so it is NUL-terminated.
            unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        (Terminated::Returned { status, message }, took)
    }

    fn lock(&self) -> MutexGuard<'_, Handle> {
        self.handle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    static TERMINATES: AtomicU64 = AtomicU64::new(0);

    unsafe extern "C" fn count_terminate(_: *mut c_void, _: *mut c_char, _: usize) -> i32 {
        TERMINATES.fetch_add(1, Ordering::SeqCst);
        KEELSON_OK
    }

    #[test]
    fn the_fence_waits_for_the_call_in_progress_and_then_shuts_the_gate() {
        let gate = Arc::new(CallGate::new(
            ResourceId(1),
            "r".into(),
            Some(count_terminate),
            200,
        ));
        let mut token = 7u8;
        let token_ptr = (&mut token as *mut u8).cast::<c_void>() as usize;
        gate.call(200, |h| *h = token_ptr as *mut c_void);
        let (in_call_tx, in_call_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let caller = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.call(300, |_| {
                    in_call_tx.send(()).unwrap();
                    release_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                })
            })
        };
        in_call_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let fence = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.terminate_for_fence())
        };
        // The fence cannot get in while the call runs.
        assert_eq!(TERMINATES.load(Ordering::SeqCst), 0);
        assert_eq!(gate.deadline_ms(), 300);
        release_tx.send(()).unwrap();
        caller.join().unwrap();
        let (outcome, _) = fence.join().unwrap();
        assert_eq!(
            outcome,
            Terminated::Returned {
                status: 0,
                message: String::new()
            }
        );
        assert_eq!(TERMINATES.load(Ordering::SeqCst), 1);
        assert!(gate.handle.try_lock().is_err(), "the gate stays shut");
    }

    #[test]
    fn nothing_to_terminate_before_open_or_without_an_entry_point() {
        let gate = CallGate::new(ResourceId(2), "r".into(), Some(count_terminate), 200);
        assert_eq!(gate.terminate_for_fence().0, Terminated::NotOpen);
        let gate = CallGate::new(ResourceId(3), "r".into(), None, 200);
        gate.call(200, |h| {
            *h = std::ptr::NonNull::<u8>::dangling().as_ptr().cast()
        });
        assert_eq!(gate.terminate_for_fence().0, Terminated::NoEntryPoint);
    }
}
