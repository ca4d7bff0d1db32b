//! The keelson plugin C ABI, version 1: the `#[repr(C)]` descriptor a plugin's `keelson_plugin_v1`
//! symbol returns, the per-type function table (the original nine pointers, or the extended table
//! with declared parameters, type defaults and `open2`/`validate2`, told apart by its size), the
//! parameters passed as key/value pairs, the host callbacks, status codes, and the header check a
//! host runs before it calls anything. `include/keelson_plugin.h` is the C twin of this file and a
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
    // issue 12: what a real resource needs to know about where it runs
    /// This node's name (NUL-terminated UTF-8), or NULL when the host does not say. Valid until
    /// `close` returns.
    pub node_name: *const c_char,
    /// The resource's name as the cluster log shows it, or NULL. Valid until `close` returns.
    pub resource_name: *const c_char,
    /// The resource's own directory on this node (`<data-dir>/resources/<id>/`, mode 0700), made
    /// before `open` and kept while the resource exists, across host restarts and re-hosting: the
    /// place for a pid file, a log, a lease record. NULL when the host gives none. Valid until
    /// `close` returns.
    pub state_dir: *const c_char,
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

/// `open2(params, host, out_handle, err, err_cap) -> status`: `open` with the parameters both as JSON
/// and as key/value pairs (the extended table only).
pub type Open2Fn = unsafe extern "C" fn(
    params: *const KeelsonParams,
    host: *const KeelsonHost,
    out_handle: *mut *mut c_void,
    err: *mut c_char,
    err_cap: usize,
) -> i32;
/// `validate2(params, err, err_cap) -> status`: `validate` with [`KeelsonParams`].
pub type Validate2Fn =
    unsafe extern "C" fn(params: *const KeelsonParams, err: *mut c_char, err_cap: usize) -> i32;

/// One parameter as the host passes it: both NUL-terminated UTF-8, valid for the call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonParam {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// A resource's parameters, declared defaults filled in: the JSON object and the same pairs as an
/// array sorted by key, so that a C plugin needs no JSON reader. Valid for the call only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonParams {
    pub json: *const c_char,
    pub items: *const KeelsonParam,
    pub count: usize,
}

/// Parameter kinds ([`KeelsonParamSpec::kind`]).
pub const KEELSON_PARAM_STRING: u32 = 0;
pub const KEELSON_PARAM_INTEGER: u32 = 1;
pub const KEELSON_PARAM_BOOLEAN: u32 = 2;
pub const KEELSON_PARAM_ENUM: u32 = 3;
pub const KEELSON_PARAM_PATH: u32 = 4;
pub const KEELSON_PARAM_ADDRESS: u32 = 5;

/// Parameter flags ([`KeelsonParamSpec::flags`]).
pub const KEELSON_PARAM_REQUIRED: u32 = 1;
pub const KEELSON_PARAM_SECRET: u32 = 2;
/// `min` is set (integers only).
pub const KEELSON_PARAM_HAS_MIN: u32 = 4;
/// `max` is set (integers only).
pub const KEELSON_PARAM_HAS_MAX: u32 = 8;
/// Every flag this ABI knows; a declaration with another bit set is refused.
pub const KEELSON_PARAM_KNOWN_FLAGS: u32 =
    KEELSON_PARAM_REQUIRED | KEELSON_PARAM_SECRET | KEELSON_PARAM_HAS_MIN | KEELSON_PARAM_HAS_MAX;

/// One declared parameter. Every string is NUL-terminated UTF-8 with static storage.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonParamSpec {
    /// Required, unique within the type.
    pub name: *const c_char,
    /// One line for `plugin describe`; may be NULL.
    pub description: *const c_char,
    /// The value the plugin is given when the resource sets none; NULL for none.
    pub default_value: *const c_char,
    /// For `KEELSON_PARAM_ENUM`: `option_count` allowed values.
    pub options: *const *const c_char,
    /// Bounds of an integer, inclusive, each used only with its `HAS_` flag.
    pub min: i64,
    pub max: i64,
    /// One of the `KEELSON_PARAM_*` kinds.
    pub kind: u32,
    /// `KEELSON_PARAM_REQUIRED | KEELSON_PARAM_SECRET | ...`.
    pub flags: u32,
    pub option_count: u32,
    pub reserved: u32,
}

/// A type's own defaults for the resource properties of the same names; 0 = not set (keelson's
/// default applies).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeelsonTypeDefaults {
    pub looks_alive_poll_interval_ms: u64,
    pub is_alive_poll_interval_ms: u64,
    pub pending_timeout_ms: u64,
    pub deadlock_timeout_ms: u64,
}

/// [`KeelsonResourceType::type_flags`]: `params` lists every parameter the type takes (others are
/// refused). Without it the type's parameters are not declared and its own `validate` decides.
pub const KEELSON_TYPE_DECLARES_PARAMS: u32 = 1;

/// The original ABI-1 type table (9 pointers), still accepted when `type_struct_size` says so.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeelsonResourceTypeV1 {
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

/// One resource type: its name, function table, declared parameters and own defaults. The first
/// nine fields are the original ABI-1 table ([`KeelsonResourceTypeV1`]); the rest were added later,
/// told apart by the descriptor's `type_struct_size`. Every entry point but `validate`, `open2`
/// and `validate2` is required, except that `open2` may stand in for `open`.
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
    /// Called instead of `open` when set.
    pub open2: Option<Open2Fn>,
    /// Called instead of `validate` when set.
    pub validate2: Option<Validate2Fn>,
    /// `param_count` declared parameters (NULL when 0).
    pub params: *const KeelsonParamSpec,
    pub param_count: u32,
    /// `sizeof(KeelsonParamSpec)` as the plugin was compiled.
    pub param_struct_size: u32,
    /// `KEELSON_TYPE_DECLARES_PARAMS` or 0.
    pub type_flags: u32,
    pub reserved: u32,
    pub defaults: KeelsonTypeDefaults,
}

impl KeelsonResourceType {
    /// The extended table of an ABI-1 type: no `open2`/`validate2`, no declared parameters, no
    /// defaults.
    pub fn from_v1(t: KeelsonResourceTypeV1) -> KeelsonResourceType {
        KeelsonResourceType {
            name: t.name,
            open: t.open,
            online: t.online,
            offline: t.offline,
            looks_alive: t.looks_alive,
            is_alive: t.is_alive,
            terminate: t.terminate,
            close: t.close,
            validate: t.validate,
            open2: None,
            validate2: None,
            params: std::ptr::null(),
            param_count: 0,
            param_struct_size: std::mem::size_of::<KeelsonParamSpec>() as u32,
            type_flags: 0,
            reserved: 0,
            defaults: KeelsonTypeDefaults::default(),
        }
    }
}

/// The most parameters one type may declare, and options one enum may list.
pub const KEELSON_MAX_PARAMS: u32 = 256;

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
    /// `sizeof(KeelsonResourceType)` as the plugin was compiled: that of [`KeelsonResourceType`]
    /// or of the original [`KeelsonResourceTypeV1`].
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
    #[error("resource type table entry size {found} bytes, host expects {expected} (this table) or {legacy} (the original ABI-1 table)")]
    TypeSize {
        found: u32,
        expected: u32,
        legacy: u32,
    },
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

/// Which type table layout a descriptor uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeLayout {
    /// The original nine pointers ([`KeelsonResourceTypeV1`]): no declared parameters.
    V1,
    /// [`KeelsonResourceType`].
    Extended,
}

impl TypeLayout {
    /// Bytes per entry.
    pub fn size(self) -> usize {
        match self {
            TypeLayout::V1 => std::mem::size_of::<KeelsonResourceTypeV1>(),
            TypeLayout::Extended => std::mem::size_of::<KeelsonResourceType>(),
        }
    }
}

/// Checks the rest of a descriptor whose header passed [`check_header`]; the layout of its type
/// table on success.
pub fn check_body(desc: &KeelsonPluginDescriptor) -> Result<TypeLayout, AbiError> {
    let layout = [TypeLayout::Extended, TypeLayout::V1]
        .into_iter()
        .find(|l| l.size() == desc.type_struct_size as usize)
        .ok_or(AbiError::TypeSize {
            found: desc.type_struct_size,
            expected: TypeLayout::Extended.size() as u32,
            legacy: TypeLayout::V1.size() as u32,
        })?;
    if desc.type_count == 0 || desc.type_count > 256 {
        return Err(AbiError::TypeCount(desc.type_count));
    }
    Ok(layout)
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

    fn descriptor(type_struct_size: u32, type_count: u32) -> KeelsonPluginDescriptor {
        KeelsonPluginDescriptor {
            magic: KEELSON_PLUGIN_MAGIC,
            abi_version: KEELSON_ABI_VERSION,
            struct_size: std::mem::size_of::<KeelsonPluginDescriptor>() as u32,
            type_count,
            plugin_name: std::ptr::null(),
            types: std::ptr::null(),
            type_struct_size,
            reserved: 0,
        }
    }

    #[test]
    fn both_type_table_layouts_are_accepted_and_nothing_else() {
        let pointer = std::mem::size_of::<*const c_char>();
        assert_eq!(
            TypeLayout::V1.size(),
            9 * pointer,
            "the ABI-1 table is nine pointers"
        );
        assert!(TypeLayout::Extended.size() > TypeLayout::V1.size());
        let extended = TypeLayout::Extended.size() as u32;
        let v1 = TypeLayout::V1.size() as u32;
        assert_eq!(check_body(&descriptor(v1, 1)), Ok(TypeLayout::V1));
        assert_eq!(
            check_body(&descriptor(extended, 2)),
            Ok(TypeLayout::Extended)
        );
        let err = check_body(&descriptor(80, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "resource type table entry size 80 bytes, host expects {extended} (this table) or \
                 {v1} (the original ABI-1 table)"
            )
        );
        assert_eq!(check_body(&descriptor(v1, 0)), Err(AbiError::TypeCount(0)));
        assert_eq!(
            check_body(&descriptor(v1, 257)),
            Err(AbiError::TypeCount(257))
        );
    }

    #[test]
    fn the_extended_table_starts_with_the_original_one() {
        use std::mem::offset_of;
        type V = KeelsonResourceTypeV1;
        type E = KeelsonResourceType;
        assert_eq!(offset_of!(V, name), offset_of!(E, name));
        assert_eq!(offset_of!(V, open), offset_of!(E, open));
        assert_eq!(offset_of!(V, close), offset_of!(E, close));
        assert_eq!(offset_of!(V, validate), offset_of!(E, validate));
        assert_eq!(offset_of!(E, open2), std::mem::size_of::<V>());
        let old = KeelsonResourceTypeV1 {
            name: c"x".as_ptr(),
            open: None,
            online: None,
            offline: None,
            looks_alive: None,
            is_alive: None,
            terminate: None,
            close: None,
            validate: None,
        };
        let new = KeelsonResourceType::from_v1(old);
        assert_eq!(new.name, old.name);
        assert!(new.open2.is_none() && new.validate2.is_none() && new.params.is_null());
        assert_eq!((new.param_count, new.type_flags), (0, 0));
        assert_eq!(new.defaults, KeelsonTypeDefaults::default());
    }
}
