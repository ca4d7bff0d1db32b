//! A test fixture: a plugin whose library constructor (an `.init_array` entry, run by `dlopen` before
//! anything else) blocks for as long as the file named by `KEELSON_HANG_LOAD_WHILE` exists, so a test
//! can hang a load on purpose and release it by removing the file. With the variable unset (or the
//! file absent) it loads at once and offers `hang_load`, a resource type that does nothing and is
//! always healthy. Not for production plugin directories.
// Not forbid: the `.init_array` entry below needs `link_section`, which the lint counts as unsafe.
#![deny(unsafe_code)]

use keelson_plugin::{export_plugin, Error, Host, Params, Resource};
use std::time::Duration;

/// The environment variable naming the file whose existence holds the load.
pub const HOLD_ENV: &str = "KEELSON_HANG_LOAD_WHILE";
/// How often the constructor looks at the file again.
const POLL: Duration = Duration::from_millis(5);

/// Blocks while the hold file exists. A plain constructor: it takes no arguments, never panics
/// (everything it calls returns values, not errors) and returns nothing.
extern "C" fn hold_while_file_exists() {
    let Some(path) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    while path.exists() {
        std::thread::sleep(POLL);
    }
}

/// Registered in `.init_array`, so the dynamic loader runs it inside `dlopen`, as a C
/// `__attribute__((constructor))` would be.
#[used]
#[allow(unsafe_code)] // the one exception: a constructor entry the loader calls with no arguments
#[link_section = ".init_array"]
static HOLD_AT_LOAD: extern "C" fn() = hold_while_file_exists;

/// One `hang_load` resource: nothing to bring online, always healthy.
pub struct HangLoad;

impl Resource for HangLoad {
    const TYPE_NAME: &'static std::ffi::CStr = c"hang_load";

    fn open(_params: &Params, _host: Host) -> Result<Self, Error> {
        Ok(HangLoad)
    }

    fn online(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn offline(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

export_plugin!(name: c"hang-load", types: [HangLoad]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_hold_file_the_constructor_returns_at_once() {
        // The variable is private to this fixture; nothing else in this test binary reads it.
        std::env::remove_var(HOLD_ENV);
        hold_while_file_exists();
        let mut r = HangLoad::open(&Params::parse("{}").unwrap(), Host::detached()).unwrap();
        assert!(r.online().is_ok() && r.looks_alive().is_ok() && r.is_alive().is_ok());
    }
}
