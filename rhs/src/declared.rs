//! Reading one type's declaration out of its extended table at load: the `KeelsonParamSpec` array
//! (name, kind, flags, default, description, bounds, options) and the type's own defaults, into a
//! `TypeSchema`, defensively: a NULL or non-UTF-8 string, an unknown kind or flag, a bad size or
//! count, or a declaration `TypeSchema::check_declaration` refuses is one error naming the
//! parameter. Not loading the library (plugins.rs) nor checking a resource's parameters (params.rs).

use keelson_abi::{
    KeelsonParamSpec, KeelsonResourceType, KeelsonTypeDefaults, KEELSON_MAX_PARAMS,
    KEELSON_PARAM_ADDRESS, KEELSON_PARAM_BOOLEAN, KEELSON_PARAM_ENUM, KEELSON_PARAM_HAS_MAX,
    KEELSON_PARAM_HAS_MIN, KEELSON_PARAM_INTEGER, KEELSON_PARAM_KNOWN_FLAGS, KEELSON_PARAM_PATH,
    KEELSON_PARAM_REQUIRED, KEELSON_PARAM_SECRET, KEELSON_PARAM_STRING,
    KEELSON_TYPE_DECLARES_PARAMS,
};
use keelson_types::{ParamKind, ParamSpec, TypeDefaults, TypeSchema};
use std::ffi::{c_char, CStr};

/// The schema an extended table declares (`declared` only with `KEELSON_TYPE_DECLARES_PARAMS`).
/// The error names the parameter (by name, or by index when it has none) and what is wrong.
pub fn read_schema(t: &KeelsonResourceType) -> Result<TypeSchema, String> {
    let unknown = t.type_flags & !KEELSON_TYPE_DECLARES_PARAMS;
    if unknown != 0 {
        return Err(format!("unknown type_flags bits {unknown:#x}"));
    }
    let declared = t.type_flags & KEELSON_TYPE_DECLARES_PARAMS != 0;
    if !declared && t.param_count > 0 {
        return Err(format!(
            "lists {} parameters but does not set KEELSON_TYPE_DECLARES_PARAMS",
            t.param_count
        ));
    }
    let schema = TypeSchema {
        declared,
        params: read_params(t)?,
        defaults: defaults(&t.defaults),
    };
    schema.check_declaration()?;
    Ok(schema)
}

fn read_params(t: &KeelsonResourceType) -> Result<Vec<ParamSpec>, String> {
    if t.param_count == 0 {
        return Ok(Vec::new());
    }
    if t.param_count > KEELSON_MAX_PARAMS {
        return Err(format!(
            "declares {} parameters (at most {KEELSON_MAX_PARAMS})",
            t.param_count
        ));
    }
    if t.params.is_null() {
        return Err(format!(
            "declares {} parameters but params is NULL",
            t.param_count
        ));
    }
    let expected = std::mem::size_of::<KeelsonParamSpec>() as u32;
    if t.param_struct_size != expected {
        return Err(format!(
            "parameter entry size {} bytes, host expects {expected}",
            t.param_struct_size
        ));
    }
    (0..t.param_count as usize)
        .map(|i| {
            // SAFETY: non-null, entries of our size, and the plugin promises `param_count` of them
            // with static storage.
            let raw = unsafe { *t.params.add(i) };
            read_param(i, &raw)
        })
        .collect()
}

fn read_param(index: usize, raw: &KeelsonParamSpec) -> Result<ParamSpec, String> {
    let name = match text(raw.name) {
        Text::Null => return Err(format!("parameter #{index} has no name (NULL)")),
        Text::NotUtf8 => return Err(format!("parameter #{index}: its name is not UTF-8")),
        Text::Ok(name) => name,
    };
    let field = |what: &str, ptr: *const c_char| match text(ptr) {
        Text::Null => Ok(None),
        Text::NotUtf8 => Err(format!("parameter '{name}': its {what} is not UTF-8")),
        Text::Ok(s) => Ok(Some(s)),
    };
    let description = field("description", raw.description)?.unwrap_or_default();
    let default = field("default", raw.default_value)?;
    let unknown = raw.flags & !KEELSON_PARAM_KNOWN_FLAGS;
    if unknown != 0 {
        return Err(format!("parameter '{name}': unknown flags {unknown:#x}"));
    }
    let kind = kind(&name, raw)?;
    Ok(ParamSpec {
        kind,
        required: raw.flags & KEELSON_PARAM_REQUIRED != 0,
        default,
        secret: raw.flags & KEELSON_PARAM_SECRET != 0,
        description,
        name,
    })
}

fn kind(name: &str, raw: &KeelsonParamSpec) -> Result<ParamKind, String> {
    let bound = |flag: u32, value: i64| (raw.flags & flag != 0).then_some(value);
    Ok(match raw.kind {
        KEELSON_PARAM_STRING => ParamKind::String,
        KEELSON_PARAM_INTEGER => ParamKind::Integer {
            min: bound(KEELSON_PARAM_HAS_MIN, raw.min),
            max: bound(KEELSON_PARAM_HAS_MAX, raw.max),
        },
        KEELSON_PARAM_BOOLEAN => ParamKind::Boolean,
        KEELSON_PARAM_ENUM => ParamKind::Enum {
            options: options(name, raw)?,
        },
        KEELSON_PARAM_PATH => ParamKind::Path,
        KEELSON_PARAM_ADDRESS => ParamKind::Address,
        other => return Err(format!("parameter '{name}': unknown kind {other}")),
    })
}

fn options(name: &str, raw: &KeelsonParamSpec) -> Result<Vec<String>, String> {
    if raw.option_count == 0 {
        return Ok(Vec::new()); // check_declaration refuses an enum without options
    }
    if raw.option_count > KEELSON_MAX_PARAMS || raw.options.is_null() {
        return Err(format!(
            "enum parameter '{name}': {} options at {:p} (1..={KEELSON_MAX_PARAMS}, not NULL)",
            raw.option_count, raw.options
        ));
    }
    (0..raw.option_count as usize)
        .map(|j| {
            // SAFETY: non-null, and the plugin promises `option_count` pointers there.
            let ptr = unsafe { *raw.options.add(j) };
            match text(ptr) {
                Text::Ok(s) => Ok(s),
                _ => Err(format!(
                    "enum parameter '{name}': option #{j} is NULL or not UTF-8"
                )),
            }
        })
        .collect()
}

fn defaults(d: &KeelsonTypeDefaults) -> TypeDefaults {
    let set = |ms: u64| (ms != 0).then_some(ms);
    TypeDefaults {
        looks_alive_poll_interval_ms: set(d.looks_alive_poll_interval_ms),
        is_alive_poll_interval_ms: set(d.is_alive_poll_interval_ms),
        pending_timeout_ms: set(d.pending_timeout_ms),
        deadlock_timeout_ms: set(d.deadlock_timeout_ms),
    }
}

enum Text {
    Null,
    NotUtf8,
    Ok(String),
}

/// A C string owned by the plugin, copied.
fn text(ptr: *const c_char) -> Text {
    if ptr.is_null() {
        return Text::Null;
    }
    // SAFETY: non-null, and the ABI requires NUL-terminated strings with static storage.
    match unsafe { CStr::from_ptr(ptr) }.to_str() {
        Ok(s) => Text::Ok(s.to_string()),
        Err(_) => Text::NotUtf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keelson_abi::KeelsonResourceTypeV1;

    fn table(params: &[KeelsonParamSpec]) -> KeelsonResourceType {
        let v1 = KeelsonResourceTypeV1 {
            name: c"t".as_ptr(),
            open: None,
            online: None,
            offline: None,
            looks_alive: None,
            is_alive: None,
            terminate: None,
            close: None,
            validate: None,
        };
        KeelsonResourceType {
            params: if params.is_empty() {
                std::ptr::null()
            } else {
                params.as_ptr()
            },
            param_count: params.len() as u32,
            type_flags: KEELSON_TYPE_DECLARES_PARAMS,
            ..KeelsonResourceType::from_v1(v1)
        }
    }

    fn spec(name: *const c_char, kind: u32) -> KeelsonParamSpec {
        KeelsonParamSpec {
            name,
            description: std::ptr::null(),
            default_value: std::ptr::null(),
            options: std::ptr::null(),
            min: 0,
            max: 0,
            kind,
            flags: 0,
            option_count: 0,
            reserved: 0,
        }
    }

    #[test]
    fn a_good_declaration_is_read_whole() {
        let options = [c"fast".as_ptr(), c"safe".as_ptr()];
        let mut port = spec(c"port".as_ptr(), KEELSON_PARAM_INTEGER);
        port.flags = KEELSON_PARAM_REQUIRED | KEELSON_PARAM_HAS_MIN;
        port.min = 1;
        port.max = 7; // no HAS_MAX: not a bound
        port.description = c"TCP port".as_ptr();
        let mut mode = spec(c"mode".as_ptr(), KEELSON_PARAM_ENUM);
        mode.options = options.as_ptr();
        mode.option_count = 2;
        mode.default_value = c"safe".as_ptr();
        mode.flags = KEELSON_PARAM_SECRET;
        let params = [port, mode];
        let mut t = table(&params);
        t.defaults.pending_timeout_ms = 5000;
        let schema = read_schema(&t).unwrap();
        assert!(schema.declared);
        assert_eq!(
            schema.params[0].kind,
            ParamKind::Integer {
                min: Some(1),
                max: None
            }
        );
        assert!(schema.params[0].required && !schema.params[0].secret);
        assert_eq!(schema.params[0].description, "TCP port");
        assert_eq!(
            schema.params[1].kind,
            ParamKind::Enum {
                options: vec!["fast".into(), "safe".into()]
            }
        );
        assert_eq!(schema.params[1].default.as_deref(), Some("safe"));
        assert!(schema.params[1].secret);
        assert_eq!(schema.defaults.pending_timeout_ms, Some(5000));
        assert_eq!(schema.defaults.deadlock_timeout_ms, None);
    }

    #[test]
    fn a_bad_declaration_is_one_error_naming_the_parameter() {
        let bad_utf8 = [0xffu8, 0];
        let bad = bad_utf8.as_ptr().cast::<c_char>();
        let mut bad_default = spec(c"port".as_ptr(), KEELSON_PARAM_INTEGER);
        bad_default.default_value = c"eighty".as_ptr();
        let mut enum_null_option = spec(c"mode".as_ptr(), KEELSON_PARAM_ENUM);
        let null_options = [std::ptr::null::<c_char>()];
        enum_null_option.options = null_options.as_ptr();
        enum_null_option.option_count = 1;
        let mut unknown_flag = spec(c"x".as_ptr(), KEELSON_PARAM_STRING);
        unknown_flag.flags = 0x40;
        let cases: Vec<(Vec<KeelsonParamSpec>, &str)> = vec![
            (
                vec![spec(std::ptr::null(), KEELSON_PARAM_STRING)],
                "parameter #0 has no name (NULL)",
            ),
            (
                vec![spec(bad, KEELSON_PARAM_STRING)],
                "parameter #0: its name is not UTF-8",
            ),
            (
                vec![spec(c"a".as_ptr(), 0), spec(c"a".as_ptr(), 0)],
                "parameter 'a' is declared twice",
            ),
            (
                vec![bad_default],
                "the default of parameter 'port' is not valid: expected an integer",
            ),
            (
                vec![spec(c"a".as_ptr(), 9)],
                "parameter 'a': unknown kind 9",
            ),
            (
                vec![enum_null_option],
                "enum parameter 'mode': option #0 is NULL or not UTF-8",
            ),
            (
                vec![spec(c"mode".as_ptr(), KEELSON_PARAM_ENUM)],
                "enum parameter 'mode' has no options",
            ),
            (vec![unknown_flag], "parameter 'x': unknown flags 0x40"),
        ];
        for (params, want) in cases {
            assert_eq!(read_schema(&table(&params)).unwrap_err(), want);
        }
        let params = [spec(c"a".as_ptr(), 0)];
        let mut t = table(&params);
        t.param_struct_size = 8;
        assert_eq!(
            read_schema(&t).unwrap_err(),
            format!(
                "parameter entry size 8 bytes, host expects {}",
                std::mem::size_of::<KeelsonParamSpec>()
            )
        );
        let mut t = table(&params);
        t.type_flags = 0;
        assert_eq!(
            read_schema(&t).unwrap_err(),
            "lists 1 parameters but does not set KEELSON_TYPE_DECLARES_PARAMS"
        );
    }

    #[test]
    fn a_table_without_the_flag_declares_nothing() {
        let mut t = table(&[]);
        t.type_flags = 0;
        let schema = read_schema(&t).unwrap();
        assert!(!schema.declared && schema.params.is_empty());
    }
}
