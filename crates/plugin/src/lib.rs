//! The keelson Rust plugin SDK. Implement [`Resource`] for each resource type and list the types in
//! [`export_plugin!`]; the SDK builds the C ABI descriptor, turns every `Err` into a status and
//! message, and catches every panic at the ABI so it never unwinds into the host. Not the host side:
//! loading and timing calls is rhs's job.
//!
//! ```ignore
//! struct Web { port: u64 }
//! impl keelson_plugin::Resource for Web {
//!     const TYPE_NAME: &'static std::ffi::CStr = c"web";
//!     fn open(params: &Params, _host: Host) -> Result<Self, String> { Ok(Web { port: params.u64_or("port", 80)? }) }
//!     fn online(&mut self) -> Result<(), String> { Ok(()) }
//!     fn offline(&mut self) -> Result<(), String> { Ok(()) }
//!     fn looks_alive(&mut self) -> Result<(), String> { Ok(()) }
//!     fn is_alive(&mut self) -> Result<(), String> { Ok(()) }
//! }
//! keelson_plugin::export_plugin!(name: c"web", types: [Web]);
//! ```

mod host;
mod params;
mod table;
mod trampoline;

pub use host::{Host, Level};
pub use keelson_abi as abi;
pub use params::Params;
pub use table::{resource_type, PluginTable};

use std::ffi::CStr;

/// One resource type implemented in Rust. Calls on one resource never overlap; each may block, but
/// the host kills the whole process if a call outlives its DeadlockTimeout.
pub trait Resource: Sized + Send + 'static {
    /// The type name users give to `--type`.
    const TYPE_NAME: &'static CStr;

    /// Checks parameters without opening anything. The default accepts everything.
    fn validate(params: &Params) -> Result<(), String> {
        let _ = params;
        Ok(())
    }
    /// Creates the resource's state from its private parameters. Must not bring anything online.
    fn open(params: &Params, host: Host) -> Result<Self, String>;
    /// Brings the resource online; may take up to PendingTimeout.
    fn online(&mut self) -> Result<(), String>;
    /// Takes the resource offline gracefully.
    fn offline(&mut self) -> Result<(), String>;
    /// Cheap health check, run every LooksAlivePollInterval.
    fn looks_alive(&mut self) -> Result<(), String>;
    /// Thorough health check, run every IsAlivePollInterval and whenever LooksAlive fails.
    fn is_alive(&mut self) -> Result<(), String>;
    /// Takes the resource offline at once, without grace. The default calls `offline`.
    fn terminate(&mut self) -> Result<(), String> {
        self.offline()
    }
    /// Releases the resource's state.
    fn close(self) {}
}

/// Exports `keelson_plugin_v1` for the listed [`Resource`] types.
///
/// `export_plugin!(name: c"my-plugin", types: [TypeA, TypeB]);`
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, types: [$($ty:ty),+ $(,)?]) => {
        /// The keelson plugin entry point (ABI v1).
        #[no_mangle]
        pub extern "C" fn keelson_plugin_v1() -> *const $crate::abi::KeelsonPluginDescriptor {
            static TABLE: ::std::sync::OnceLock<$crate::PluginTable> = ::std::sync::OnceLock::new();
            let built = ::std::panic::catch_unwind(|| {
                TABLE
                    .get_or_init(|| {
                        $crate::PluginTable::new($name, ::std::vec![$($crate::resource_type::<$ty>()),+])
                    })
                    .descriptor()
            });
            built.unwrap_or(::std::ptr::null())
        }
    };
}
