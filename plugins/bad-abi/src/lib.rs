//! A plugin that claims ABI version 7: right magic, right sizes, one well-formed type, wrong version.
//! Hosts must refuse it with "ABI version 7, host speaks 1" and keep running. Not usable otherwise:
//! its entry points are never supposed to be called.

use keelson_abi::{KeelsonPluginDescriptor, KeelsonResourceType, KEELSON_PLUGIN_MAGIC};
use std::ffi::{c_char, c_void};

/// A descriptor in a static; raw pointers make it !Sync, hence the wrapper.
#[repr(transparent)]
struct Shared<T>(T);

// SAFETY: the wrapped data is immutable and only points at 'static strings and functions.
unsafe impl<T> Sync for Shared<T> {}

unsafe extern "C" fn fail(_h: *mut c_void, _e: *mut c_char, _n: usize) -> i32 {
    1
}

unsafe extern "C" fn open_fail(
    _p: *const c_char,
    _h: *const keelson_abi::KeelsonHost,
    _o: *mut *mut c_void,
    _e: *mut c_char,
    _n: usize,
) -> i32 {
    1
}

unsafe extern "C" fn close_nothing(_h: *mut c_void) {}

static TYPES: Shared<[KeelsonResourceType; 1]> = Shared([KeelsonResourceType {
    name: c"dummy".as_ptr(),
    open: Some(open_fail),
    online: Some(fail),
    offline: Some(fail),
    looks_alive: Some(fail),
    is_alive: Some(fail),
    terminate: Some(fail),
    close: Some(close_nothing),
    validate: None,
    open2: None,
    validate2: None,
    params: std::ptr::null(),
    param_count: 0,
    param_struct_size: std::mem::size_of::<keelson_abi::KeelsonParamSpec>() as u32,
    type_flags: 0,
    reserved: 0,
    defaults: keelson_abi::KeelsonTypeDefaults {
        looks_alive_poll_interval_ms: 0,
        is_alive_poll_interval_ms: 0,
        pending_timeout_ms: 0,
        deadlock_timeout_ms: 0,
    },
}]);

static DESCRIPTOR: Shared<KeelsonPluginDescriptor> = Shared(KeelsonPluginDescriptor {
    magic: KEELSON_PLUGIN_MAGIC,
    abi_version: 7,
    struct_size: std::mem::size_of::<KeelsonPluginDescriptor>() as u32,
    type_count: 1,
    plugin_name: c"bad-abi".as_ptr(),
    types: &TYPES.0 as *const KeelsonResourceType,
    type_struct_size: std::mem::size_of::<KeelsonResourceType>() as u32,
    reserved: 0,
});

/// The keelson plugin entry point, with the wrong version inside.
#[no_mangle]
pub extern "C" fn keelson_plugin_v1() -> *const KeelsonPluginDescriptor {
    &DESCRIPTOR.0
}
