//! The host callbacks handed to plugins (`log`, `set_status`): C functions that forward to the rhs's
//! logger and control socket. Catch every panic so nothing unwinds into plugin code. Not the plugin
//! SDK's side of them (crates/plugin::Host).

use crate::log::Logger;
use keelson_abi::KeelsonHost;
use keelson_proto::HostReply;
use keelson_types::{LogLevel, ResourceId};
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What the callbacks need; boxed so its address is stable for the resource's lifetime.
pub struct CallbackCtx {
    pub resource: ResourceId,
    pub name: String,
    pub logger: Logger,
}

impl CallbackCtx {
    /// The `KeelsonHost` struct pointing back at this context. Valid while `self` is alive and
    /// not moved (keep it boxed).
    pub fn host(&self) -> KeelsonHost {
        KeelsonHost {
            ctx: (self as *const CallbackCtx).cast_mut().cast::<c_void>(),
            log: Some(host_log),
            set_status: Some(host_set_status),
        }
    }
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
