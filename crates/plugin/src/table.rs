//! Builds the C descriptor for a list of Rust resource types. Not the entry points themselves: those
//! are the trampolines.

use crate::trampoline;
use crate::Resource;
use keelson_abi::{
    KeelsonPluginDescriptor, KeelsonResourceType, KEELSON_ABI_VERSION, KEELSON_PLUGIN_MAGIC,
};
use std::ffi::CStr;

/// The function table of one Rust resource type.
pub fn resource_type<T: Resource>() -> KeelsonResourceType {
    KeelsonResourceType {
        name: T::TYPE_NAME.as_ptr(),
        open: Some(trampoline::open::<T>),
        online: Some(trampoline::online::<T>),
        offline: Some(trampoline::offline::<T>),
        looks_alive: Some(trampoline::looks_alive::<T>),
        is_alive: Some(trampoline::is_alive::<T>),
        terminate: Some(trampoline::terminate::<T>),
        close: Some(trampoline::close::<T>),
        validate: Some(trampoline::validate::<T>),
    }
}

/// A plugin's descriptor and the type table it points into; lives in a static for the process.
pub struct PluginTable {
    descriptor: KeelsonPluginDescriptor,
    _types: Box<[KeelsonResourceType]>,
}

// SAFETY: the table is immutable after construction and only holds pointers to 'static data
// (C string literals, the boxed type table it owns, and function pointers).
unsafe impl Send for PluginTable {}
// SAFETY: as above.
unsafe impl Sync for PluginTable {}

impl PluginTable {
    /// Builds the descriptor for `types` under the plugin name `name`.
    pub fn new(name: &'static CStr, types: Vec<KeelsonResourceType>) -> PluginTable {
        let types = types.into_boxed_slice();
        let descriptor = KeelsonPluginDescriptor {
            magic: KEELSON_PLUGIN_MAGIC,
            abi_version: KEELSON_ABI_VERSION,
            struct_size: std::mem::size_of::<KeelsonPluginDescriptor>() as u32,
            type_count: types.len() as u32,
            plugin_name: name.as_ptr(),
            types: types.as_ptr(),
            type_struct_size: std::mem::size_of::<KeelsonResourceType>() as u32,
            reserved: 0,
        };
        PluginTable {
            descriptor,
            _types: types,
        }
    }

    /// The pointer `keelson_plugin_v1` returns.
    pub fn descriptor(&self) -> *const KeelsonPluginDescriptor {
        &self.descriptor
    }
}
