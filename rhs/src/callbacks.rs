//! The host callbacks handed to plugins (`log`, `set_status`, `report_failure`): C functions that
//! forward to the rhs's logger and control socket, callable from any thread of the plugin. Catch
//! every panic so nothing unwinds into plugin code. Also the strings the host passes beside them
//! (node name, resource name, state directory), owned here for the resource's lifetime. Not the plugin SDK's side of them
//! (crates/plugin::Host).

use crate::log::Logger;
use keelson_abi::KeelsonHost;
use keelson_proto::HostReply;
use keelson_types::{LogLevel, ResourceId};
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

/// What the callbacks need; boxed so its address is stable for the resource's lifetime.
pub struct CallbackCtx {
    pub resource: ResourceId,
    pub name: String,
    pub logger: Logger,
    /// Set by a failure report sent up, cleared by the resource's next health verdict: a flood of
    /// reports is one report.
    pub reported: AtomicBool,
    /// The strings `KeelsonHost` points at: valid while this context lives.
    node_name: Option<CString>,
    resource_name: Option<CString>,
    state_dir: Option<CString>,
}

impl CallbackCtx {
    pub fn new(resource: ResourceId, name: String, logger: Logger) -> CallbackCtx {
        CallbackCtx {
            resource_name: c_string(&name),
            resource,
            name,
            logger,
            reported: AtomicBool::new(false),
            node_name: None,
            state_dir: None,
        }
    }

    /// Tells the plugin its node's name and its state directory (each only when given).
    pub fn placed(mut self, node_name: Option<&str>, state_dir: Option<&str>) -> CallbackCtx {
        self.node_name = node_name.and_then(c_string);
        self.state_dir = state_dir.and_then(c_string);
        self
    }

    /// The `KeelsonHost` struct pointing back at this context. Valid while `self` is alive and
    /// not moved (keep it boxed).
    pub fn host(&self) -> KeelsonHost {
        KeelsonHost {
            ctx: (self as *const CallbackCtx).cast_mut().cast::<c_void>(),
            log: Some(host_log),
            set_status: Some(host_set_status),
            report_failure: Some(host_report_failure),
            node_name: c_ptr(&self.node_name),
            resource_name: c_ptr(&self.resource_name),
            state_dir: c_ptr(&self.state_dir),
        }
    }

    /// The resource got a health verdict (a check ran, or a new plan came): the next failure report
    /// is sent up again.
    pub fn health_verdict(&self) {
        self.reported.store(false, Ordering::SeqCst);
    }

    /// Sends a failure report up unless one is already pending; true when it was sent.
    fn report(&self, message: String) -> bool {
        if self.reported.swap(true, Ordering::SeqCst) {
            let line = format!(
                "resource '{}': failure report dropped (one is already pending): {message}",
                self.name
            );
            crate::log::event(Some(self.resource), LogLevel::Dbg, &line);
            return false;
        }
        self.logger.control().send(&HostReply::FailureReported {
            resource: self.resource,
            message,
        });
        true
    }
}

/// `text` as a C string; None (the field stays NULL) when it holds a NUL, which no name or path
/// the node sends can.
fn c_string(text: &str) -> Option<CString> {
    CString::new(text).ok()
}

fn c_ptr(text: &Option<CString>) -> *const c_char {
    text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr())
}

unsafe extern "C" fn host_log(ctx: *mut c_void, level: u32, msg: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() || msg.is_null() {
            return;
        }
        // SAFETY: `ctx` is the boxed CallbackCtx that outlives the resource (see CallbackCtx::host).
        let ctx = unsafe { &*ctx.cast::<CallbackCtx>() };
        // SAFETY: the ABI requires a NUL-terminated string valid for the call.
        let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
        let message = format!("[{}] {}", ctx.name, text);
        crate::log::event(Some(ctx.resource), LogLevel::from_abi(level), &message);
    }));
}

unsafe extern "C" fn host_set_status(ctx: *mut c_void, progress: u32) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() {
            return;
        }
        // SAFETY: as in host_log.
        let ctx = unsafe { &*ctx.cast::<CallbackCtx>() };
        ctx.logger.control().send(&HostReply::Progress {
            resource: ctx.resource,
            progress: progress.min(100),
        });
    }));
}

unsafe extern "C" fn host_report_failure(ctx: *mut c_void, msg: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ctx.is_null() {
            return;
        }
        // SAFETY: as in host_log.
        let ctx = unsafe { &*ctx.cast::<CallbackCtx>() };
        let message = if msg.is_null() {
            "the plugin reported a failure (no message)".to_string()
        } else {
            // SAFETY: the ABI requires a NUL-terminated string valid for the call.
            unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned()
        };
        ctx.report(message);
    }));
}
