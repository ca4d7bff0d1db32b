//! The plugin's handle on its host: log lines into the cluster log, progress reports and failure
//! reports, from any thread of the plugin, and where the resource runs (node name, resource name,
//! state directory). Not the host itself; this only calls the callbacks the
//! host passed to `open`.

use keelson_abi::KeelsonHost;
use std::ffi::CString;

/// Severity of a log line sent to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Err,
    Warn,
    Info,
    Dbg,
}

impl Level {
    fn abi(self) -> u32 {
        match self {
            Level::Err => keelson_abi::KEELSON_LOG_ERR,
            Level::Warn => keelson_abi::KEELSON_LOG_WARN,
            Level::Info => keelson_abi::KEELSON_LOG_INFO,
            Level::Dbg => keelson_abi::KEELSON_LOG_DBG,
        }
    }
}

/// Callbacks into the host, valid until the resource is closed (until `close` returns), callable from
/// any thread of the plugin. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Host {
    raw: KeelsonHost,
}

// SAFETY: the host's callbacks are thread-safe by contract (the ABI allows calling them from any
// thread of the plugin), and `ctx` is only ever passed back to them.
unsafe impl Send for Host {}
// SAFETY: as above; `Host` has no interior mutability of its own.
unsafe impl Sync for Host {}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// Wraps the callbacks a host passed to `open`; a null pointer gives a host that drops everything.
    ///
    /// # Safety
    /// `raw` must be null or point to a `KeelsonHost` whose callbacks stay valid while this is used.
    pub unsafe fn from_raw(raw: *const KeelsonHost) -> Host {
        let raw = if raw.is_null() {
            KeelsonHost {
                ctx: std::ptr::null_mut(),
                log: None,
                set_status: None,
                report_failure: None,
                node_name: std::ptr::null(),
                resource_name: std::ptr::null(),
                state_dir: std::ptr::null(),
            }
        } else {
            // SAFETY: non-null and valid per the caller's contract; the struct is Copy.
            unsafe { *raw }
        };
        Host { raw }
    }

    /// A host that drops everything (for unit tests of plugin code).
    pub fn detached() -> Host {
        // SAFETY: null is explicitly allowed.
        unsafe { Host::from_raw(std::ptr::null()) }
    }

    /// A host that drops every log line and report but names a node, a resource and a state
    /// directory, for unit tests of plugin code that uses them. Leaks the three strings.
    pub fn for_tests(state_dir: &std::path::Path, node: &str, resource: &str) -> Host {
        let leak = |s: &str| -> *const std::ffi::c_char {
            let owned = CString::new(s).expect("no NUL in a test string");
            Box::leak(owned.into_boxed_c_str()).as_ptr()
        };
        let mut host = Host::detached();
        host.raw.node_name = leak(node);
        host.raw.resource_name = leak(resource);
        host.raw.state_dir = leak(&state_dir.to_string_lossy());
        host
    }

    /// This node's name, when the host says.
    pub fn node_name(&self) -> Option<String> {
        text_at(self.raw.node_name)
    }

    /// The resource's name as the cluster log shows it, when the host says.
    pub fn resource_name(&self) -> Option<String> {
        text_at(self.raw.resource_name)
    }

    /// The resource's own directory on this node (`<data-dir>/resources/<id>/`, mode 0700): made
    /// before `open`, kept across host restarts and re-hosting. The place for a pid file, a log or
    /// a lease record. None when the host gives none (`Host::detached`).
    pub fn state_dir(&self) -> Option<std::path::PathBuf> {
        text_at(self.raw.state_dir).map(std::path::PathBuf::from)
    }

    /// Writes one line to the cluster log under this resource's name.
    pub fn log(&self, level: Level, msg: &str) {
        let Some(log) = self.raw.log else { return };
        let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the callback and ctx come from the host and stay valid while the resource is open;
        // `text` outlives the call.
        unsafe { log(self.raw.ctx, level.abi(), text.as_ptr()) }
    }

    pub fn info(&self, msg: &str) {
        self.log(Level::Info, msg)
    }

    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg)
    }

    pub fn error(&self, msg: &str) {
        self.log(Level::Err, msg)
    }

    /// Reports progress (0..=100) of a long online/offline.
    pub fn set_status(&self, progress: u32) {
        if let Some(set_status) = self.raw.set_status {
            // SAFETY: as for `log`.
            unsafe { set_status(self.raw.ctx, progress.min(100)) }
        }
    }

    /// Tells the node that the resource failed, from any thread of the plugin, at any time until
    /// the resource is closed: the node treats it at once as a failed IsAlive (log line, event
    /// 1069, restart policy) without waiting for the next poll. One report counts until the next
    /// health verdict (the resource's next check, or its coming Online again); more are dropped.
    /// False when the host offers no `report_failure` callback (its pointer is NULL), so nothing
    /// was reported.
    pub fn report_failure(&self, msg: &str) -> bool {
        let Some(report) = self.raw.report_failure else {
            return false;
        };
        let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        // SAFETY: as for `log`: a callback and ctx from the host, valid until close returns, and
        // thread-safe by contract; `text` outlives the call.
        unsafe { report(self.raw.ctx, text.as_ptr()) };
        true
    }
}

/// The string at `ptr`, which the host keeps valid until close (None for NULL).
fn text_at(ptr: *const std::ffi::c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-NULL pointer in KeelsonHost is a NUL-terminated string the host keeps valid
    // until the resource is closed (ABI contract), or one `Host::for_tests` leaked.
    let text = unsafe { std::ffi::CStr::from_ptr(ptr) };
    Some(text.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_host_says_nothing_about_where_it_runs() {
        let host = Host::detached();
        assert_eq!(host.node_name(), None);
        assert_eq!(host.resource_name(), None);
        assert_eq!(host.state_dir(), None);
    }

    #[test]
    fn a_test_host_names_its_node_resource_and_directory() {
        let host = Host::for_tests(std::path::Path::new("/tmp/r7"), "n2", "web ip");
        assert_eq!(host.node_name().as_deref(), Some("n2"));
        assert_eq!(host.resource_name().as_deref(), Some("web ip"));
        assert_eq!(host.state_dir(), Some(std::path::PathBuf::from("/tmp/r7")));
    }
}
