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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Host, Param, Params, TypeDefaults, NO_DEFAULTS};

    struct Declared;
    struct Plain;

    macro_rules! healthy {
        () => {
            fn open(_: &Params, _: Host) -> Result<Self, crate::Error> {
                Ok(Self)
            }
            fn online(&mut self) -> Result<(), crate::Error> {
                Ok(())
            }
            fn offline(&mut self) -> Result<(), crate::Error> {
                Ok(())
            }
            fn looks_alive(&mut self) -> Result<(), crate::Error> {
                Ok(())
            }
            fn is_alive(&mut self) -> Result<(), crate::Error> {
                Ok(())
            }
        };
    }

    impl Resource for Declared {
        const TYPE_NAME: &'static CStr = c"declared";
        const PARAMS: Option<&'static [Param]> = Some(&[Param::path("root").required()]);
        const DEFAULTS: TypeDefaults = TypeDefaults {
            is_alive_poll_interval_ms: Some(7000),
            ..NO_DEFAULTS
        };
        healthy!();
    }

    impl Resource for Plain {
        const TYPE_NAME: &'static CStr = c"plain";
        healthy!();
    }

    #[test]
    fn the_descriptor_carries_each_types_declaration_and_defaults() {
        let table = PluginTable::new(
            c"p",
            vec![resource_type::<Declared>(), resource_type::<Plain>()],
        );
        // SAFETY: the descriptor and its tables live as long as `table`.
        let (desc, types) = unsafe {
            let desc = &*table.descriptor();
            (desc, std::slice::from_raw_parts(desc.types, 2))
        };
        assert_eq!(
            desc.type_struct_size as usize,
            std::mem::size_of::<KeelsonResourceType>()
        );
        assert_eq!(types[0].type_flags, KEELSON_TYPE_DECLARES_PARAMS);
        assert_eq!(types[0].param_count, 1);
        assert_eq!(types[0].defaults.is_alive_poll_interval_ms, 7000);
        assert_eq!(types[0].defaults.pending_timeout_ms, 0);
        // SAFETY: one spec, owned by `table`.
        let root = unsafe { CStr::from_ptr((*types[0].params).name) };
        assert_eq!(root, c"root");
        assert_eq!((types[1].type_flags, types[1].param_count), (0, 0));
        assert!(types[1].params.is_null());
        assert!(!crate::schema::<Plain>().declared);
        assert!(crate::schema::<Declared>().check_declaration().is_ok());
    }
}
