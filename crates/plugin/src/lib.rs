//! The keelson Rust plugin SDK. Implement [`Resource`] for each resource type and list the types in
//! [`export_plugin!`]; the SDK builds the C ABI descriptor, turns every `Err` into a status and
//! message, and catches every panic at the ABI so it never unwinds into the host. Entry points return
//! [`Error`]: a `String` or `&str` converts into a generic one (`Err("…".into())`, `?`), and
//! [`Error::misconfigured`], [`Error::not_installed`] and [`Error::not_running`] tell the node more
//! (see [`ErrorKind`]). [`Host`] may be used from any thread of the plugin, and
//! [`Host::report_failure`] tells the node at once that the resource died. Not the host side:
//! loading and timing calls is rhs's job.
//!
//! ```ignore
//! struct Web { port: u64 }
//! impl keelson_plugin::Resource for Web {
//!     const TYPE_NAME: &'static std::ffi::CStr = c"web";
//!     fn open(params: &Params, _host: Host) -> Result<Self, Error> { Ok(Web { port: params.u64_or("port", 80)? }) }
//!     fn online(&mut self) -> Result<(), Error> { Ok(()) }
//!     fn offline(&mut self) -> Result<(), Error> { Ok(()) }
//!     fn looks_alive(&mut self) -> Result<(), Error> { Ok(()) }
//!     fn is_alive(&mut self) -> Result<(), Error> { Err(Error::not_running("web is stopped")) }
//! }
//! keelson_plugin::export_plugin!(name: c"web", types: [Web]);
//! ```

mod error;
mod host;
mod params;
mod table;
mod trampoline;

pub use error::{Error, ErrorKind};
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

    /// Checks parameters without opening anything. The default accepts everything. A generic error
    /// here (and from `open`) means rejected parameters (`KEELSON_INVALID`).
    fn validate(params: &Params) -> Result<(), Error> {
        let _ = params;
        Ok(())
    }
    /// Creates the resource's state from its private parameters. Must not bring anything online.
    fn open(params: &Params, host: Host) -> Result<Self, Error>;
    /// Brings the resource online; may take up to PendingTimeout.
    fn online(&mut self) -> Result<(), Error>;
    /// Takes the resource offline gracefully.
    fn offline(&mut self) -> Result<(), Error>;
    /// Cheap health check, run every LooksAlivePollInterval. [`Error::not_running`] says the
    /// resource is cleanly down rather than broken (both are health failures).
    fn looks_alive(&mut self) -> Result<(), Error>;
    /// Thorough health check, run every IsAlivePollInterval and whenever LooksAlive fails.
    fn is_alive(&mut self) -> Result<(), Error>;
    /// Takes the resource offline at once, without grace. The default calls `offline`.
    fn terminate(&mut self) -> Result<(), Error> {
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
