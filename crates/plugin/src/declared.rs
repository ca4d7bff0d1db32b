//! The C form of a Rust type's declaration: the `KeelsonParamSpec` array the type table points at,
//! with the C strings and option arrays it points into, built once with the plugin's table and kept
//! alive by it; and the type's defaults as the ABI carries them (0 = not set). Not the declaration
//! (param.rs) nor its check (the host runs `TypeSchema::check_declaration` at load).

use crate::param::{Kind, Param};
use keelson_abi::{
    KeelsonParamSpec, KeelsonTypeDefaults, KEELSON_PARAM_ADDRESS, KEELSON_PARAM_BOOLEAN,
    KEELSON_PARAM_ENUM, KEELSON_PARAM_HAS_MAX, KEELSON_PARAM_HAS_MIN, KEELSON_PARAM_INTEGER,
    KEELSON_PARAM_PATH, KEELSON_PARAM_REQUIRED, KEELSON_PARAM_SECRET, KEELSON_PARAM_STRING,
};
use keelson_types::TypeDefaults;
use std::ffi::{c_char, CString};

/// A type's declared parameters as C structs, with everything they point into.
pub struct DeclaredParams {
    specs: Box<[KeelsonParamSpec]>,
    _strings: Vec<CString>,
    _options: Vec<Box<[*const c_char]>>,
}

impl DeclaredParams {
    /// The C array for `params`. A NUL inside a name or text becomes U+FFFD (which the host's
    /// declaration check then refuses, naming the parameter).
    pub fn new(params: &[Param]) -> DeclaredParams {
        let mut strings = Vec::new();
        let mut options = Vec::new();
        let specs = params
            .iter()
            .map(|p| spec(p, &mut strings, &mut options))
            .collect();
        DeclaredParams {
            specs,
            _strings: strings,
            _options: options,
        }
    }

    /// The array's first element (NULL when empty) and its length.
    pub fn raw(&self) -> (*const KeelsonParamSpec, u32) {
        if self.specs.is_empty() {
            return (std::ptr::null(), 0);
        }
        (self.specs.as_ptr(), self.specs.len() as u32)
    }
}

/// `text` as a C string kept in `strings`; the pointer stays valid while `strings`' elements live
/// (a CString's buffer does not move with it).
fn keep(text: &str, strings: &mut Vec<CString>) -> *const c_char {
    let c = CString::new(text.replace('\0', "\u{FFFD}")).expect("NULs were replaced");
    let ptr = c.as_ptr();
    strings.push(c);
    ptr
}

fn spec(
    p: &Param,
    strings: &mut Vec<CString>,
    option_arrays: &mut Vec<Box<[*const c_char]>>,
) -> KeelsonParamSpec {
    let mut flags = 0;
    if p.required {
        flags |= KEELSON_PARAM_REQUIRED;
    }
    if p.secret {
        flags |= KEELSON_PARAM_SECRET;
    }
    let (mut min, mut max, mut options, mut option_count) = (0, 0, std::ptr::null(), 0);
    let kind = match p.kind {
        Kind::String => KEELSON_PARAM_STRING,
        Kind::Integer { min: lo, max: hi } => {
            if let Some(lo) = lo {
                flags |= KEELSON_PARAM_HAS_MIN;
                min = lo;
            }
            if let Some(hi) = hi {
                flags |= KEELSON_PARAM_HAS_MAX;
                max = hi;
            }
            KEELSON_PARAM_INTEGER
        }
        Kind::Boolean => KEELSON_PARAM_BOOLEAN,
        Kind::Enum(values) => {
            let array: Box<[*const c_char]> = values.iter().map(|v| keep(v, strings)).collect();
            options = array.as_ptr();
            option_count = array.len() as u32;
            option_arrays.push(array);
            KEELSON_PARAM_ENUM
        }
        Kind::Path => KEELSON_PARAM_PATH,
        Kind::Address => KEELSON_PARAM_ADDRESS,
    };
    KeelsonParamSpec {
        name: keep(p.name, strings),
        description: keep(p.description, strings),
        default_value: p.default.map_or(std::ptr::null(), |d| keep(d, strings)),
        options,
        min,
        max,
        kind,
        flags,
        option_count,
        reserved: 0,
    }
}

/// The ABI form of a type's defaults: None (and 0) become 0, "not set".
pub fn c_defaults(d: &TypeDefaults) -> KeelsonTypeDefaults {
    KeelsonTypeDefaults {
        looks_alive_poll_interval_ms: d.looks_alive_poll_interval_ms.unwrap_or(0),
        is_alive_poll_interval_ms: d.is_alive_poll_interval_ms.unwrap_or(0),
        pending_timeout_ms: d.pending_timeout_ms.unwrap_or(0),
        deadlock_timeout_ms: d.deadlock_timeout_ms.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(ptr: *const c_char) -> &'static str {
        // SAFETY: test-only; the pointers come from a DeclaredParams kept alive by the caller.
        unsafe { CStr::from_ptr(ptr) }.to_str().unwrap()
    }

    #[test]
    fn the_c_array_carries_every_field() {
        let declared = DeclaredParams::new(&[
            Param::integer("port")
                .min(0)
                .max(9)
                .required()
                .describe("p"),
            Param::one_of("mode", &["a", "b"]).default("b").secret(),
        ]);
        let (ptr, len) = declared.raw();
        assert_eq!(len, 2);
        // SAFETY: `len` elements at `ptr`, owned by `declared`.
        let specs = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
        assert_eq!(text(specs[0].name), "port");
        assert_eq!(text(specs[0].description), "p");
        assert!(specs[0].default_value.is_null());
        assert_eq!(
            (specs[0].kind, specs[0].min, specs[0].max),
            (KEELSON_PARAM_INTEGER, 0, 9)
        );
        assert_eq!(
            specs[0].flags,
            KEELSON_PARAM_REQUIRED | KEELSON_PARAM_HAS_MIN | KEELSON_PARAM_HAS_MAX
        );
        assert_eq!(
            (specs[1].kind, specs[1].flags),
            (KEELSON_PARAM_ENUM, KEELSON_PARAM_SECRET)
        );
        assert_eq!(text(specs[1].default_value), "b");
        assert_eq!(specs[1].option_count, 2);
        // SAFETY: `option_count` pointers at `options`, owned by `declared`.
        let options = unsafe { std::slice::from_raw_parts(specs[1].options, 2) };
        assert_eq!([text(options[0]), text(options[1])], ["a", "b"]);
        assert_eq!(DeclaredParams::new(&[]).raw(), (std::ptr::null(), 0));
    }

    #[test]
    fn unset_defaults_are_zero() {
        let d = TypeDefaults {
            pending_timeout_ms: Some(5000),
            ..TypeDefaults::default()
        };
        let c = c_defaults(&d);
        assert_eq!(c.pending_timeout_ms, 5000);
        assert_eq!(c.looks_alive_poll_interval_ms + c.deadlock_timeout_ms, 0);
    }
}
