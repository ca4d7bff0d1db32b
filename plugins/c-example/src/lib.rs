//! Paths of the shared objects this crate's build script compiles from plain C: the `c-example`
//! plugin (proof that `include/keelson_plugin.h` is enough to write a plugin, parameters and all),
//! a library without the plugin symbol, a plugin compiled against the original ABI-1 layout, and a
//! plugin with a bad declaration (for tests of the host's refusals and compatibility). Not Rust
//! plugin code: nothing here is loaded.
#![forbid(unsafe_code)]

/// The plain-C plugin `libkeelson_plugin_c_example.so` (type `c-example`).
pub const C_EXAMPLE_PLUGIN: &str = concat!(env!("OUT_DIR"), "/libkeelson_plugin_c_example.so");

/// A shared library that exports no `keelson_plugin_v1`.
pub const NO_SYMBOL_LIBRARY: &str = concat!(env!("OUT_DIR"), "/libkeelson_nosymbol.so");

/// A plugin (type `c-legacy`) compiled against a frozen copy of the original ABI-1 type table.
pub const ABI1_LEGACY_PLUGIN: &str = concat!(env!("OUT_DIR"), "/libkeelson_abi1_legacy.so");

/// A plugin (type `c-bad-decl`) that declares parameter `port` twice.
pub const BAD_DECLARATION_PLUGIN: &str = concat!(env!("OUT_DIR"), "/libkeelson_bad_declaration.so");
