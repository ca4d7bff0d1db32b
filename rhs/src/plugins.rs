//! Loading plugin files: `dlopen`, find `keelson_plugin_v1`, check the descriptor's magic, version and
//! sizes before trusting anything else, copy out the type tables (the original ABI-1 layout or the
//! extended one, whose declared schema declared.rs reads), and record where the plugin's code
//! is mapped (so a crash on a thread of its own is blamed on it) and tell rcm. Every problem is an
//! error that names the file; the host keeps running. Not calling entry points (resource.rs does that).

use crate::log::Logger;
use keelson_abi::{
    check_body, check_header, KeelsonPluginDescriptor, KeelsonResourceType, KeelsonResourceTypeV1,
    PluginEntryFn, TypeLayout, KEELSON_PLUGIN_SYMBOL, KEELSON_PLUGIN_SYMBOL_NAME,
};
use keelson_proto::{HostReply, PluginMapping};
use keelson_sys::loaded_object::LoadedObject;
use keelson_types::{LogLevel, PluginInfo, ResourceTypeInfo};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::{Arc, Mutex};

/// A loaded plugin. The library stays mapped for the life of the process (plugins are never
/// unloaded: their threads and TLS may outlive any resource).
pub struct Plugin {
    pub info: PluginInfo,
    pub types: Vec<KeelsonResourceType>,
    /// Where its code is mapped (found from its entry symbol's address at load).
    pub code: Result<LoadedObject, String>,
    _library: libloading::Library,
}

// SAFETY: the type tables are immutable function pointers and C strings with static storage in the
// mapped library, which is never unloaded; calls through them are serialised per resource.
unsafe impl Send for Plugin {}
// SAFETY: as above; nothing in `Plugin` is mutated after loading.
unsafe impl Sync for Plugin {}

impl Plugin {
    /// The type table named `type_name`, with what the type declares.
    pub fn resource_type(
        &self,
        type_name: &str,
    ) -> Option<(&KeelsonResourceType, &ResourceTypeInfo)> {
        let index = self.info.types.iter().position(|t| t.name == type_name)?;
        Some((self.types.get(index)?, self.info.types.get(index)?))
    }
}

/// Every plugin this host loaded, by path.
pub struct Registry {
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    logger: Logger,
}

impl Registry {
    /// An empty registry that reports each load's code mapping through `logger`'s control socket.
    pub fn new(logger: Logger) -> Registry {
        Registry {
            loaded: Mutex::new(HashMap::new()),
            logger,
        }
    }

    /// The plugin at `path`, loading it on first use.
    pub fn get_or_load(&self, path: &str) -> Result<Arc<Plugin>, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(plugin) = loaded.get(path) {
            return Ok(plugin.clone());
        }
        let plugin = Arc::new(load(path)?);
        self.record_code(&plugin);
        loaded.insert(path.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// Puts the plugin's code ranges in the crash handler's table and tells rcm which slot is which
    /// plugin. A plugin whose ranges cannot be recorded still loads; its own threads' crashes are
    /// then blamed on nobody, and the log says so.
    fn record_code(&self, plugin: &Plugin) {
        let (name, path) = (&plugin.info.name, &plugin.info.path);
        let slot = plugin
            .code
            .as_ref()
            .map_err(String::clone)
            .and_then(|code| {
                crate::crash::PLUGIN_CODE
                    .insert(code)
                    .map(|slot| (slot, code))
                    .map_err(|e| e.to_string())
            });
        match slot {
            Ok((slot, code)) => {
                self.logger.control().send(&HostReply::PluginMapped(PluginMapping {
                    slot,
                    name: name.clone(),
                    path: path.clone(),
                    base: code.base as u64,
                }));
                self.logger.log(
                    None,
                    LogLevel::Info,
                    format!(
                        "Loaded plugin '{name}' from {path}: code slot {slot}, load address {:#x}, {}.",
                        code.base,
                        describe_segments(code)
                    ),
                );
            }
            Err(e) => self.logger.log(
                None,
                LogLevel::Warn,
                format!(
                    "Loaded plugin '{name}' from {path}, but its code ranges are not recorded ({e}): a crash \
                     on a thread of its own cannot be blamed on it."
                ),
            ),
        }
    }
}

/// `N segments 0xA-0xB, ...` for the log.
fn describe_segments(code: &LoadedObject) -> String {
    let ranges: Vec<String> = code
        .segments
        .iter()
        .map(|s| {
            let x = if s.executable { " (code)" } else { "" };
            format!("{:#x}-{:#x}{x}", s.start, s.end)
        })
        .collect();
    format!("segments {}", ranges.join(", "))
}

/// Where the object holding `entry` (the plugin's descriptor function) is mapped.
fn code_of(path: &str, entry: PluginEntryFn) -> Result<LoadedObject, String> {
    let addr = entry as *const () as usize;
    LoadedObject::containing(addr).ok_or(format!(
        "plugin {path}: no loaded object maps its entry symbol at {addr:#x}"
    ))
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
    let layout = check_body(&desc).map_err(|e| format!("plugin {path}: {e}"))?;
    let name = c_string(desc.plugin_name).ok_or(format!(
        "plugin {path}: plugin name is missing or not UTF-8"
    ))?;
    let types = read_types(path, &desc, layout)?;
    let code = code_of(path, entry);
    let info = PluginInfo {
        name,
        path: path.to_string(),
        types: types.iter().map(|(info, _)| info.clone()).collect(),
    };
    Ok(Plugin {
        info,
        types: types.into_iter().map(|(_, t)| t).collect(),
        code,
        _library: library,
    })
}

fn read_types(
    path: &str,
    desc: &KeelsonPluginDescriptor,
    layout: TypeLayout,
) -> Result<Vec<(ResourceTypeInfo, KeelsonResourceType)>, String> {
    if desc.types.is_null() {
        return Err(format!("plugin {path}: type table is NULL"));
    }
    let mut out: Vec<(ResourceTypeInfo, KeelsonResourceType)> = Vec::new();
    for i in 0..desc.type_count as usize {
        let t = type_entry(desc, layout, i);
        let name = c_string(t.name).ok_or(format!("plugin {path}: type #{i} has no UTF-8 name"))?;
        if name.is_empty() || out.iter().any(|(info, _)| info.name == name) {
            return Err(format!(
                "plugin {path}: type name '{name}' is empty or duplicated"
            ));
        }
        let missing = [
            ("open", t.open.is_none() && t.open2.is_none()),
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
        let schema = match layout {
            TypeLayout::V1 => keelson_types::TypeSchema::default(),
            TypeLayout::Extended => crate::declared::read_schema(&t)
                .map_err(|e| format!("plugin {path}: type '{name}': {e}"))?,
        };
        out.push((
            ResourceTypeInfo {
                name,
                has_validate: t.validate.is_some() || t.validate2.is_some(),
                schema,
            },
            t,
        ));
    }
    Ok(out)
}

/// Entry `i` of the descriptor's type table, in the extended form whatever its layout.
fn type_entry(desc: &KeelsonPluginDescriptor, layout: TypeLayout, i: usize) -> KeelsonResourceType {
    match layout {
        // SAFETY: check_body verified the entry size and a count of 1..=256; the plugin promises
        // `type_count` entries of the original layout at `types`.
        TypeLayout::V1 => KeelsonResourceType::from_v1(unsafe {
            *desc.types.cast::<KeelsonResourceTypeV1>().add(i)
        }),
        // SAFETY: as above, entries of the extended layout.
        TypeLayout::Extended => unsafe { *desc.types.add(i) },
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::ControlWriter;
    use keelson_proto::FrameBuf;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    /// target/<profile>/libkeelson_plugin_chaos.so, next to this test's target/<profile>/deps.
    fn chaos_path() -> String {
        let exe = std::env::current_exe().expect("current_exe");
        let path = exe
            .ancestors()
            .nth(2)
            .expect("test binary lives in target/<profile>/deps")
            .join("libkeelson_plugin_chaos.so");
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --workspace` first",
            path.display()
        );
        path.display().to_string()
    }

    fn outside_function() -> usize {
        outside_function as *const () as usize
    }

    #[test]
    fn a_loaded_plugin_owns_its_code_addresses_and_nothing_else() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let registry = Registry::new(Logger::new(ControlWriter::new(ours), false).unwrap());
        let path = chaos_path();
        let plugin = registry.get_or_load(&path).unwrap();
        let code = plugin.code.as_ref().expect("code ranges found");

        // An address of a function in the .so, found independently of the registry.
        // SAFETY: loading the same file again only bumps its refcount; the symbol has ABI v1's type.
        let lib = unsafe { libloading::Library::new(&path) }.unwrap();
        // SAFETY: as above.
        let entry = unsafe { lib.get::<PluginEntryFn>(KEELSON_PLUGIN_SYMBOL) }.unwrap();
        let inside = *entry as *const () as usize;

        let hit = crate::crash::PLUGIN_CODE
            .lookup(inside)
            .expect("the plugin's entry is in its slot");
        assert_eq!(hit.offset, inside - code.base);
        assert!(code
            .segments
            .iter()
            .any(|s| s.executable && s.contains(inside)));
        assert_eq!(crate::crash::PLUGIN_CODE.lookup(outside_function()), None);
        assert_eq!(crate::crash::PLUGIN_CODE.lookup(0x10), None);

        // rcm is told which slot is which plugin before anything else about it.
        theirs.set_nonblocking(true).unwrap();
        let mut frames = FrameBuf::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = (&theirs).read(&mut buf) {
            if n == 0 {
                break;
            }
            frames.push(&buf[..n]);
        }
        let first = frames.next_frame::<HostReply>().unwrap();
        assert_eq!(
            first,
            Some(HostReply::PluginMapped(PluginMapping {
                slot: hit.slot,
                name: "chaos".into(),
                path: path.clone(),
                base: code.base as u64,
            }))
        );
        let Some(HostReply::Log { message, .. }) = frames.next_frame::<HostReply>().unwrap() else {
            panic!("a log line follows")
        };
        assert!(
            message.starts_with("Loaded plugin 'chaos' from "),
            "{message}"
        );

        // A second use is the same plugin, not a second slot.
        let again = registry.get_or_load(&path).unwrap();
        assert!(Arc::ptr_eq(&plugin, &again));
        assert_eq!(crate::crash::PLUGIN_CODE.lookup(inside), Some(hit));
    }
}
