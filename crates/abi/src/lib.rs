//! The keelson plugin C ABI, version 1: the `#[repr(C)]` descriptor a plugin's `keelson_plugin_v1`
//! symbol returns, the per-type function table, the host callbacks, status codes, and the header check
//! a host runs before it calls anything. `include/keelson_plugin.h` is the C twin of this file and a
//! test compares their layouts. Not loading (rhs does that) and not the Rust SDK (crates/plugin).

use std::ffi::{c_char, c_void};

/// `"KELS"`: the first field of every descriptor.
pub const KEELSON_PLUGIN_MAGIC: u32 = 0x4B45_4C53;
/// The ABI version this crate describes.
pub const KEELSON_ABI_VERSION: u32 = 1;
/// The symbol every plugin exports, NUL-terminated for `dlsym`.
pub const KEELSON_PLUGIN_SYMBOL: &[u8] = b"keelson_plugin_v1\0";
/// The same symbol, without the NUL, for messages.
pub const KEELSON_PLUGIN_SYMBOL_NAME: &str = "keelson_plugin_v1";

/// Entry point succeeded.
pub const KEELSON_OK: i32 = 0;
/// Entry point failed; the error buffer says why.
pub const KEELSON_ERROR: i32 = 1;
/// Entry point panicked (Rust SDK) and the panic was caught; the error buffer holds the message.
pub const KEELSON_PANIC: i32 = 2;
/// Parameters were rejected (open/validate).
pub const KEELSON_INVALID: i32 = 3;

// issue 11: failure reports and status codes
/// The resource's configuration is wrong (OCF's ERR_CONFIGURED): it is never restarted; it goes
/// Failed at once with the message (no restart counted, no retry), and stays so until an
/// administrator brings it online again (after fixing its parameters, say).
pub const KEELSON_MISCONFIGURED: i32 = 4;
/// This node cannot run the resource (a binary, a library, a device is missing): it is not retried
/// here; in a cluster its group fails over at once, on a single node it stays Failed.
pub const KEELSON_NOT_INSTALLED: i32 = 5;
/// From a health check: the resource is cleanly down (stopped, not broken). A health failure,
/// logged as "not running"; the restart policy applies.
pub const KEELSON_NOT_RUNNING: i32 = 6;

/// Log levels for [`KeelsonHost::log`].
pub const KEELSON_LOG_ERR: u32 = 0;
pub const KEELSON_LOG_WARN: u32 = 1;
pub const KEELSON_LOG_INFO: u32 = 2;
pub const KEELSON_LOG_DBG: u32 = 3;

/// Size of the error buffer a host hands to every entry point.
pub const KEELSON_ERROR_BUF_LEN: usize = 1024;

/// Callbacks into the host, valid from `open` until `close` returns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonHost {
    /// Opaque host context; pass it back unchanged.
    pub ctx: *mut c_void,
    /// Writes `msg` (UTF-8, NUL-terminated) to the cluster log under the resource's name.
    pub log: Option<unsafe extern "C" fn(ctx: *mut c_void, level: u32, msg: *const c_char)>,
    /// Reports progress (0..=100) of a long online/offline.
    pub set_status: Option<unsafe extern "C" fn(ctx: *mut c_void, progress: u32)>,
    // issue 11: failure reports and status codes
    /// Reports that the resource failed (`msg`: UTF-8, NUL-terminated, why), from any thread of the
    /// plugin, at any time from `open` until `close` returns; the node treats it at once as a failed
    /// IsAlive. Appended last: the host allocates this struct, and every host speaking this ABI
    /// sets it, but a plugin must still check it is not NULL before calling it.
    pub report_failure: Option<unsafe extern "C" fn(ctx: *mut c_void, msg: *const c_char)>,
}

/// `open(params_json, host, out_handle, err, err_cap) -> status`.
pub type OpenFn = unsafe extern "C" fn(
    params_json: *const c_char,
    host: *const KeelsonHost,
    out_handle: *mut *mut c_void,
    err: *mut c_char,
    err_cap: usize,
) -> i32;
/// `online`, `offline`, `looks_alive`, `is_alive`, `terminate`: `(handle, err, err_cap) -> status`.
pub type CallFn =
    unsafe extern "C" fn(handle: *mut c_void, err: *mut c_char, err_cap: usize) -> i32;
/// `close(handle)`: frees the resource; the handle is dead afterwards.
pub type CloseFn = unsafe extern "C" fn(handle: *mut c_void);
/// Optional `validate(params_json, err, err_cap) -> status`, callable without an open resource.
pub type ValidateFn =
    unsafe extern "C" fn(params_json: *const c_char, err: *mut c_char, err_cap: usize) -> i32;

/// One resource type: its name and function table. Every pointer but `validate` is required.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonResourceType {
    pub name: *const c_char,
    pub open: Option<OpenFn>,
    pub online: Option<CallFn>,
    pub offline: Option<CallFn>,
    pub looks_alive: Option<CallFn>,
    pub is_alive: Option<CallFn>,
    pub terminate: Option<CallFn>,
    pub close: Option<CloseFn>,
    pub validate: Option<ValidateFn>,
}

/// What `keelson_plugin_v1()` returns. The first three fields keep their place in every version.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonPluginDescriptor {
    pub magic: u32,
    pub abi_version: u32,
    /// `sizeof(KeelsonPluginDescriptor)` as the plugin was compiled.
    pub struct_size: u32,
    /// Number of entries in `types`.
    pub type_count: u32,
    pub plugin_name: *const c_char,
    pub types: *const KeelsonResourceType,
    /// `sizeof(KeelsonResourceType)` as the plugin was compiled.
    pub type_struct_size: u32,
    pub reserved: u32,
}

/// The type of the exported symbol.
pub type PluginEntryFn = unsafe extern "C" fn() -> *const KeelsonPluginDescriptor;

/// Why a descriptor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbiError {
    #[error("bad magic 0x{found:08x} (expected 0x{KEELSON_PLUGIN_MAGIC:08x}): not a keelson plugin descriptor")]
    BadMagic { found: u32 },
    #[error("ABI version {found}, host speaks {KEELSON_ABI_VERSION}")]
    Version { found: u32 },
    #[error("descriptor size {found} bytes, host expects {expected}")]
    DescriptorSize { found: u32, expected: u32 },
    #[error("resource type table entry size {found} bytes, host expects {expected}")]
    TypeSize { found: u32, expected: u32 },
    #[error("descriptor lists {0} resource types (expected 1..=256)")]
    TypeCount(u32),
}

/// Checks the fixed header of a descriptor before anything else of it is trusted.
pub fn check_header(magic: u32, abi_version: u32, struct_size: u32) -> Result<(), AbiError> {
    if magic != KEELSON_PLUGIN_MAGIC {
        return Err(AbiError::BadMagic { found: magic });
    }
    if abi_version != KEELSON_ABI_VERSION {
        return Err(AbiError::Version { found: abi_version });
    }
    let expected = std::mem::size_of::<KeelsonPluginDescriptor>() as u32;
    if struct_size != expected {
        return Err(AbiError::DescriptorSize {
            found: struct_size,
            expected,
        });
    }
    Ok(())
}

/// Checks the rest of a descriptor whose header passed [`check_header`].
pub fn check_body(desc: &KeelsonPluginDescriptor) -> Result<(), AbiError> {
    let expected = std::mem::size_of::<KeelsonResourceType>() as u32;
    if desc.type_struct_size != expected {
        return Err(AbiError::TypeSize {
            found: desc.type_struct_size,
            expected,
        });
    }
    if desc.type_count == 0 || desc.type_count > 256 {
        return Err(AbiError::TypeCount(desc.type_count));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks_name_the_problem() {
        let size = std::mem::size_of::<KeelsonPluginDescriptor>() as u32;
        assert!(check_header(KEELSON_PLUGIN_MAGIC, 1, size).is_ok());
        assert_eq!(
            check_header(KEELSON_PLUGIN_MAGIC, 7, size)
                .unwrap_err()
                .to_string(),
            "ABI version 7, host speaks 1"
        );
        assert!(matches!(
            check_header(0, 1, size),
            Err(AbiError::BadMagic { found: 0 })
        ));
        assert!(matches!(
            check_header(KEELSON_PLUGIN_MAGIC, 1, 8),
            Err(AbiError::DescriptorSize { found: 8, .. })
        ));
    }
}
