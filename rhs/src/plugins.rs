//! Loading plugin files: `dlopen`, find `keelson_plugin_v1`, check the descriptor's magic, version and
//! sizes before trusting anything else, and copy out the type tables. Every problem is an error that
//! names the file; the host keeps running. Not calling entry points (resource.rs does that).

use keelson_abi::{
    check_body, check_header, KeelsonPluginDescriptor, KeelsonResourceType, PluginEntryFn,
    KEELSON_PLUGIN_SYMBOL, KEELSON_PLUGIN_SYMBOL_NAME,
};
use keelson_types::{PluginInfo, ResourceTypeInfo};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::{Arc, Mutex};

/// A loaded plugin. The library stays mapped for the life of the process (plugins are never
/// unloaded: their threads and TLS may outlive any resource).
pub struct Plugin {
    pub info: PluginInfo,
    pub types: Vec<KeelsonResourceType>,
    _library: libloading::Library,
}

// SAFETY: the type tables are immutable function pointers and C strings with static storage in the
// mapped library, which is never unloaded; calls through them are serialised per resource.
unsafe impl Send for Plugin {}
// SAFETY: as above; nothing in `Plugin` is mutated after loading.
unsafe impl Sync for Plugin {}

impl Plugin {
    /// The type table named `type_name`.
    pub fn resource_type(&self, type_name: &str) -> Option<&KeelsonResourceType> {
        let index = self.info.types.iter().position(|t| t.name == type_name)?;
        self.types.get(index)
    }
}

/// Every plugin this host loaded, by path.
#[derive(Default)]
pub struct Registry {
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
}

impl Registry {
    /// The plugin at `path`, loading it on first use.
    pub fn get_or_load(&self, path: &str) -> Result<Arc<Plugin>, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(plugin) = loaded.get(path) {
            return Ok(plugin.clone());
        }
        let plugin = Arc::new(load(path)?);
        loaded.insert(path.to_string(), plugin.clone());
        Ok(plugin)
    }
}

fn load(path: &str) -> Result<Plugin, String> {
    // SAFETY: loading a library runs its initialisers; that is the point of a host process, which is
    // isolated from rcm precisely so that misbehaving initialisers only hurt this process.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("plugin {path}: cannot load: {e}"))?;
    // SAFETY: the symbol's type is fixed by ABI v1; a library exporting something else under this
    // name is caught by the magic check below before any other field is used.
    let entry: PluginEntryFn = unsafe { library.get::<PluginEntryFn>(KEELSON_PLUGIN_SYMBOL) }
        .map(|sym| *sym)
        .map_err(|_| {
            format!(
                "plugin {path}: missing symbol {KEELSON_PLUGIN_SYMBOL_NAME} (not a keelson plugin)"
            )
        })?;
    // SAFETY: calling the plugin's exported entry; it takes no arguments.
    let desc = unsafe { entry() };
    if desc.is_null() {
        return Err(format!(
            "plugin {path}: {KEELSON_PLUGIN_SYMBOL_NAME} returned NULL"
        ));
    }
    // SAFETY: the first three u32 fields keep their place in every ABI version, so reading them is
    // valid for any descriptor; nothing else is read before the header check passes.
    let (magic, version, size) = unsafe {
        let words = desc.cast::<u32>();
        (
            words.read_unaligned(),
            words.add(1).read_unaligned(),
            words.add(2).read_unaligned(),
        )
    };
    check_header(magic, version, size).map_err(|e| format!("plugin {path}: {e}"))?;
    // SAFETY: header checked: this is a v1 descriptor of exactly our size.
    let desc: KeelsonPluginDescriptor = unsafe { *desc };
    check_body(&desc).map_err(|e| format!("plugin {path}: {e}"))?;
    let name = c_string(desc.plugin_name).ok_or(format!(
        "plugin {path}: plugin name is missing or not UTF-8"
    ))?;
    let types = read_types(path, &desc)?;
    let info = PluginInfo {
        name,
        path: path.to_string(),
        types: types.iter().map(|(info, _)| info.clone()).collect(),
    };
    Ok(Plugin {
        info,
        types: types.into_iter().map(|(_, t)| t).collect(),
        _library: library,
    })
}

fn read_types(
    path: &str,
    desc: &KeelsonPluginDescriptor,
) -> Result<Vec<(ResourceTypeInfo, KeelsonResourceType)>, String> {
    if desc.types.is_null() {
        return Err(format!("plugin {path}: type table is NULL"));
    }
    let mut out: Vec<(ResourceTypeInfo, KeelsonResourceType)> = Vec::new();
    for i in 0..desc.type_count as usize {
        // SAFETY: check_body verified the entry size and a count of 1..=256; the plugin promises
        // `type_count` entries at `types`.
        let t: KeelsonResourceType = unsafe { *desc.types.add(i) };
        let name = c_string(t.name).ok_or(format!("plugin {path}: type #{i} has no UTF-8 name"))?;
        if name.is_empty() || out.iter().any(|(info, _)| info.name == name) {
            return Err(format!(
                "plugin {path}: type name '{name}' is empty or duplicated"
            ));
        }
        let missing = [
            ("open", t.open.is_none()),
            ("online", t.online.is_none()),
            ("offline", t.offline.is_none()),
            ("looks_alive", t.looks_alive.is_none()),
            ("is_alive", t.is_alive.is_none()),
            ("terminate", t.terminate.is_none()),
            ("close", t.close.is_none()),
        ];
        if let Some((entry, _)) = missing.iter().find(|(_, absent)| *absent) {
            return Err(format!(
                "plugin {path}: type '{name}' lacks the required entry point {entry}"
            ));
        }
        out.push((
            ResourceTypeInfo {
                name,
                has_validate: t.validate.is_some(),
            },
            t,
        ));
    }
    Ok(out)
}

/// Copies a C string owned by the plugin; None for NULL or invalid UTF-8.
fn c_string(ptr: *const std::ffi::c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the ABI requires NUL-terminated strings with static storage.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .ok()
        .map(str::to_string)
}
