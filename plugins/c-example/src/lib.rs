//! Paths of the shared objects this crate's build script compiles from plain C: the `c-example`
//! plugin (proof that `include/keelson_plugin.h` is enough to write a plugin) and a library without
//! the plugin symbol (for tests of the host's refusal). Not Rust plugin code: nothing here is loaded.
#![forbid(unsafe_code)]

/// The plain-C plugin `libkeelson_plugin_c_example.so` (type `c-example`).
pub const C_EXAMPLE_PLUGIN: &str = concat!(env!("OUT_DIR"), "/libkeelson_plugin_c_example.so");

/// A shared library that exports no `keelson_plugin_v1`.
pub const NO_SYMBOL_LIBRARY: &str = concat!(env!("OUT_DIR"), "/libkeelson_nosymbol.so");
