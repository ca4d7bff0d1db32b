//! Builds the C descriptor for a list of Rust resource types: each type's extended table with its
//! declared parameters and defaults, all owned by one [`PluginTable`] that lives in a static. Not
//! the entry points themselves (the trampolines) nor the C form of a declaration (declared.rs).

use crate::declared::{c_defaults, DeclaredParams};
use crate::trampoline;
use crate::Resource;
use keelson_abi::{
    KeelsonParamSpec, KeelsonPluginDescriptor, KeelsonResourceType, KEELSON_ABI_VERSION,
    KEELSON_PLUGIN_MAGIC, KEELSON_TYPE_DECLARES_PARAMS,
};
use std::ffi::CStr;

/// One Rust resource type's table and the declaration it points into.
pub struct TypeEntry {
    table: KeelsonResourceType,
    _declared: DeclaredParams,
}

/// The table of one Rust resource type, with its declared parameters (if it declares them).
pub fn resource_type<T: Resource>() -> TypeEntry {
    let declared = DeclaredParams::new(T::PARAMS.unwrap_or(&[]));
    let (params, param_count) = declared.raw();
    let table = KeelsonResourceType {
        name: T::TYPE_NAME.as_ptr(),
        open: Some(trampoline::open::<T>),
        online: Some(trampoline::online::<T>),
        offline: Some(trampoline::offline::<T>),
        looks_alive: Some(trampoline::looks_alive::<T>),
        is_alive: Some(trampoline::is_alive::<T>),
        terminate: Some(trampoline::terminate::<T>),
        close: Some(trampoline::close::<T>),
        validate: Some(trampoline::validate::<T>),
        open2: None,
        validate2: None,
        params,
        param_count,
        param_struct_size: std::mem::size_of::<KeelsonParamSpec>() as u32,
        type_flags: if T::PARAMS.is_some() {
            KEELSON_TYPE_DECLARES_PARAMS
        } else {
            0
        },
        reserved: 0,
        defaults: c_defaults(&T::DEFAULTS),
    };
    TypeEntry {
        table,
        _declared: declared,
    }
}

/// A plugin's descriptor and the type tables it points into; lives in a static for the process.
pub struct PluginTable {
    descriptor: KeelsonPluginDescriptor,
    _tables: Box<[KeelsonResourceType]>,
    _entries: Vec<TypeEntry>,
}

// SAFETY: the table is immutable after construction and only holds pointers to 'static data
// (C string literals, function pointers) and to the boxed arrays and strings it owns.
unsafe impl Send for PluginTable {}
// SAFETY: as above.
unsafe impl Sync for PluginTable {}

impl PluginTable {
    /// Builds the descriptor for `types` under the plugin name `name`.
    pub fn new(name: &'static CStr, types: Vec<TypeEntry>) -> PluginTable {
        let tables: Box<[KeelsonResourceType]> = types.iter().map(|t| t.table).collect();
        let descriptor = KeelsonPluginDescriptor {
            magic: KEELSON_PLUGIN_MAGIC,
            abi_version: KEELSON_ABI_VERSION,
            struct_size: std::mem::size_of::<KeelsonPluginDescriptor>() as u32,
            type_count: tables.len() as u32,
            plugin_name: name.as_ptr(),
            types: tables.as_ptr(),
            type_struct_size: std::mem::size_of::<KeelsonResourceType>() as u32,
            reserved: 0,
        };
        PluginTable {
            descriptor,
            _tables: tables,
            _entries: types,
        }
    }

    /// The pointer `keelson_plugin_v1` returns.
    pub fn descriptor(&self) -> *const KeelsonPluginDescriptor {
        &self.descriptor
    }
}
