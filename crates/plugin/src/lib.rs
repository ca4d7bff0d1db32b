//! The keelson Rust plugin SDK. Implement [`Resource`] for each resource type and list the types in
//! [`export_plugin!`]; the SDK builds the C ABI descriptor (with the type's declared parameters and
//! defaults), checks parameters against the declaration and fills in declared defaults before
//! `validate` and `open` see them, turns every `Err` into a status and message, and catches every
//! panic at the ABI so it never unwinds into the host. Entry points return [`Error`]: a `String`
//! or `&str` converts into a generic one (`Err("…".into())`, `?`), and
//! [`Error::misconfigured`], [`Error::not_installed`] and [`Error::not_running`] tell the node more
//! (see [`ErrorKind`]). [`Host`] may be used from any thread of the plugin, and
//! [`Host::report_failure`] tells the node at once that the resource died. Not the host side:
//! loading and timing calls is rhs's job.
//!
//! ```ignore
//! struct Web { port: u64 }
//! impl keelson_plugin::Resource for Web {
//!     const TYPE_NAME: &'static std::ffi::CStr = c"web";
//!     const PARAMS: Option<&'static [Param]> =
//!         Some(&[Param::integer("port").min(1).max(65535).default("80").describe("TCP port")]);
//!     fn open(params: &Params, _host: Host) -> Result<Self, Error> { Ok(Web { port: params.u64_or("port", 80)? }) }
//!     fn online(&mut self) -> Result<(), Error> { Ok(()) }
//!     fn offline(&mut self) -> Result<(), Error> { Ok(()) }
//!     fn looks_alive(&mut self) -> Result<(), Error> { Ok(()) }
//!     fn is_alive(&mut self) -> Result<(), Error> { Err(Error::not_running("web is stopped")) }
//! }
//! keelson_plugin::export_plugin!(name: c"web", types: [Web]);
//! ```

mod declared;
mod error;
mod host;
mod param;
mod params;
mod table;
mod trampoline;

pub use error::{Error, ErrorKind};
pub use host::{Host, Level};
pub use keelson_abi as abi;
pub use keelson_types::{TypeDefaults, TypeSchema};
pub use param::{Kind, Param};
pub use params::Params;
pub use table::{resource_type, PluginTable, TypeEntry};

use std::ffi::CStr;

/// A type's defaults that set nothing (keelson's own defaults apply), for struct update syntax in
/// a `const`: `TypeDefaults { pending_timeout_ms: Some(5_000), ..NO_DEFAULTS }`.
pub const NO_DEFAULTS: TypeDefaults = TypeDefaults {
    looks_alive_poll_interval_ms: None,
    is_alive_poll_interval_ms: None,
    pending_timeout_ms: None,
    deadlock_timeout_ms: None,
};

/// What `T` declares, as the host and `keelson plugin describe` see it. Check it in a unit test
/// with `schema::<T>().check_declaration()`; the host refuses a bad one at load.
pub fn schema<T: Resource>() -> TypeSchema {
    TypeSchema {
        declared: T::PARAMS.is_some(),
        params: T::PARAMS.unwrap_or(&[]).iter().map(Param::spec).collect(),
        defaults: T::DEFAULTS,
    }
}

/// One resource type implemented in Rust. Calls on one resource never overlap; each may block, but
/// the host kills the whole process if a call outlives its DeadlockTimeout.
pub trait Resource: Sized + Send + 'static {
    /// The type name users give to `--type`.
    const TYPE_NAME: &'static CStr;

    /// Every parameter the type takes, or None (the default) to declare nothing and accept any
    /// parameters. When declared, the host and the SDK refuse an unknown name, a missing required
    /// parameter or a value not of its kind before `validate`/`open` run, and fill in defaults.
    const PARAMS: Option<&'static [Param]> = None;

    /// The type's own defaults for LooksAlivePollInterval, IsAlivePollInterval, PendingTimeout and
    /// DeadlockTimeout, used where a resource sets none. The default sets none.
    const DEFAULTS: TypeDefaults = NO_DEFAULTS;

    /// Checks parameters without opening anything. The default accepts everything. Runs after the
    /// declared schema's check, with declared defaults filled in. A generic error here (and from
    /// `open`) means rejected parameters (`KEELSON_INVALID`).
    fn validate(params: &Params) -> Result<(), Error> {
        let _ = params;
        Ok(())
    }
    /// Creates the resource's state from its private parameters (checked and defaulted like those
    /// of `validate`). Must not bring anything online.
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
