//! `include/keelson_plugin.h` and crates/abi must describe the same ABI: this compiles a C program
//! against the header that prints every struct size, field offset and constant, and compares each
//! number with the Rust side. Also checks that the plain-C plugin was built. Not a load test: plugin
//! code is only ever loaded by keelson-rhs.

mod common;

use keelson_abi::*;
use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include "keelson_plugin.h"
#define S(T) printf("sizeof " #T " %zu\n", sizeof(T))
#define O(T, f) printf("offsetof " #T "." #f " %zu\n", offsetof(T, f))
#define C(name) printf("const " #name " %lld\n", (long long)(name))
int main(void) {
    S(KeelsonHost); O(KeelsonHost, ctx); O(KeelsonHost, log); O(KeelsonHost, set_status);
    S(KeelsonResourceType); O(KeelsonResourceType, name); O(KeelsonResourceType, open);
    O(KeelsonResourceType, online); O(KeelsonResourceType, offline); O(KeelsonResourceType, looks_alive);
    O(KeelsonResourceType, is_alive); O(KeelsonResourceType, terminate); O(KeelsonResourceType, close);
    O(KeelsonResourceType, validate);
    O(KeelsonResourceType, open2); O(KeelsonResourceType, validate2); O(KeelsonResourceType, params);
    O(KeelsonResourceType, param_count); O(KeelsonResourceType, param_struct_size);
    O(KeelsonResourceType, type_flags); O(KeelsonResourceType, reserved); O(KeelsonResourceType, defaults);
    S(KeelsonParam); O(KeelsonParam, key); O(KeelsonParam, value);
    S(KeelsonParams); O(KeelsonParams, json); O(KeelsonParams, items); O(KeelsonParams, count);
    S(KeelsonParamSpec); O(KeelsonParamSpec, name); O(KeelsonParamSpec, description);
    O(KeelsonParamSpec, default_value); O(KeelsonParamSpec, options); O(KeelsonParamSpec, min);
    O(KeelsonParamSpec, max); O(KeelsonParamSpec, kind); O(KeelsonParamSpec, flags);
    O(KeelsonParamSpec, option_count); O(KeelsonParamSpec, reserved);
    S(KeelsonTypeDefaults); O(KeelsonTypeDefaults, looks_alive_poll_interval_ms);
    O(KeelsonTypeDefaults, is_alive_poll_interval_ms); O(KeelsonTypeDefaults, pending_timeout_ms);
    O(KeelsonTypeDefaults, deadlock_timeout_ms);
    C(KEELSON_PARAM_STRING); C(KEELSON_PARAM_INTEGER); C(KEELSON_PARAM_BOOLEAN); C(KEELSON_PARAM_ENUM);
    C(KEELSON_PARAM_PATH); C(KEELSON_PARAM_ADDRESS); C(KEELSON_PARAM_REQUIRED); C(KEELSON_PARAM_SECRET);
    C(KEELSON_PARAM_HAS_MIN); C(KEELSON_PARAM_HAS_MAX); C(KEELSON_TYPE_DECLARES_PARAMS);
    C(KEELSON_MAX_PARAMS);
    {
        static const KeelsonParam items[] = {{"b", "2"}, {"a", "1"}};
        const KeelsonParams p = {"{}", items, 2};
        printf("param a %s\n", keelson_param(&p, "a"));
        printf("param missing %s\n", keelson_param(&p, "c") == NULL ? "NULL" : "set");
    }
    S(KeelsonPluginDescriptor); O(KeelsonPluginDescriptor, magic); O(KeelsonPluginDescriptor, abi_version);
    O(KeelsonPluginDescriptor, struct_size); O(KeelsonPluginDescriptor, type_count);
    O(KeelsonPluginDescriptor, plugin_name); O(KeelsonPluginDescriptor, types);
    O(KeelsonPluginDescriptor, type_struct_size); O(KeelsonPluginDescriptor, reserved);
    C(KEELSON_PLUGIN_MAGIC); C(KEELSON_ABI_VERSION); C(KEELSON_OK); C(KEELSON_ERROR); C(KEELSON_PANIC);
    C(KEELSON_INVALID); C(KEELSON_LOG_ERR); C(KEELSON_LOG_WARN); C(KEELSON_LOG_INFO); C(KEELSON_LOG_DBG);
    printf("symbol %s\n", KEELSON_PLUGIN_SYMBOL);
    /* issue 11: failure reports and status codes */
    O(KeelsonHost, report_failure); C(KEELSON_MISCONFIGURED); C(KEELSON_NOT_INSTALLED);
    C(KEELSON_NOT_RUNNING);
    /* issue 12: where a resource runs */
    O(KeelsonHost, node_name); O(KeelsonHost, resource_name); O(KeelsonHost, state_dir);
    return 0;
}
"#;

/// Compiles and runs the probe; `None` (skip) only outside CI when no C compiler exists.
fn c_layout() -> Option<HashMap<String, String>> {
    let dir = std::env::temp_dir().join(format!("keelson-t02-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, exe) = (dir.join("probe.c"), dir.join("probe"));
    std::fs::write(&src, PROBE).unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let compiled = Command::new("cc")
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", include, "-o",
        ])
        .arg(&exe)
        .arg(&src)
        .status();
    match compiled {
        Err(e) if !common::in_ci() => {
            println!("skipping: no C compiler ({e})");
            return None;
        }
        Err(e) => panic!("CI=true but no C compiler: {e}"),
        Ok(status) => assert!(status.success(), "the header does not compile cleanly"),
    }
    let out = Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        text.lines()
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect(),
    )
}

#[test]
fn header_layout_matches_the_rust_abi() {
    let Some(c) = c_layout() else { return };
    let n = |k: &str| -> usize {
        c.get(k)
            .unwrap_or_else(|| panic!("probe printed no {k}"))
            .parse()
            .unwrap()
    };
    assert_eq!(n("sizeof KeelsonHost"), size_of::<KeelsonHost>());
    assert_eq!(n("offsetof KeelsonHost.ctx"), offset_of!(KeelsonHost, ctx));
    assert_eq!(n("offsetof KeelsonHost.log"), offset_of!(KeelsonHost, log));
    assert_eq!(
        n("offsetof KeelsonHost.set_status"),
        offset_of!(KeelsonHost, set_status)
    );

    type T = KeelsonResourceType;
    assert_eq!(n("sizeof KeelsonResourceType"), size_of::<T>());
    assert_eq!(n("offsetof KeelsonResourceType.name"), offset_of!(T, name));
    assert_eq!(n("offsetof KeelsonResourceType.open"), offset_of!(T, open));
    assert_eq!(
        n("offsetof KeelsonResourceType.online"),
        offset_of!(T, online)
    );
    assert_eq!(
        n("offsetof KeelsonResourceType.offline"),
        offset_of!(T, offline)
    );
    assert_eq!(
        n("offsetof KeelsonResourceType.looks_alive"),
        offset_of!(T, looks_alive)
    );
    assert_eq!(
        n("offsetof KeelsonResourceType.is_alive"),
        offset_of!(T, is_alive)
    );
    assert_eq!(
        n("offsetof KeelsonResourceType.terminate"),
        offset_of!(T, terminate)
    );
    assert_eq!(
        n("offsetof KeelsonResourceType.close"),
        offset_of!(T, close)
    );
    assert_eq!(
        n("offsetof KeelsonResourceType.validate"),
        offset_of!(T, validate)
    );

    macro_rules! same_layout {
        ($t:ident: $($f:ident),+) => {
            assert_eq!(n(concat!("sizeof ", stringify!($t))), size_of::<$t>(), stringify!($t));
            $(assert_eq!(
                n(concat!("offsetof ", stringify!($t), ".", stringify!($f))),
                offset_of!($t, $f),
                concat!(stringify!($t), ".", stringify!($f))
            );)+
        };
    }
    same_layout!(KeelsonResourceType: open2, validate2, params, param_count, param_struct_size,
        type_flags, reserved, defaults);
    same_layout!(KeelsonParam: key, value);
    same_layout!(KeelsonParams: json, items, count);
    same_layout!(KeelsonParamSpec: name, description, default_value, options, min, max, kind,
        flags, option_count, reserved);
    same_layout!(KeelsonTypeDefaults: looks_alive_poll_interval_ms, is_alive_poll_interval_ms,
        pending_timeout_ms, deadlock_timeout_ms);
    assert_eq!(c["param a"], "1", "keelson_param finds a key");
    assert_eq!(
        c["param missing"], "NULL",
        "keelson_param: an absent key is NULL"
    );

    type D = KeelsonPluginDescriptor;
    assert_eq!(n("sizeof KeelsonPluginDescriptor"), size_of::<D>());
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.magic"),
        offset_of!(D, magic)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.abi_version"),
        offset_of!(D, abi_version)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.struct_size"),
        offset_of!(D, struct_size)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.type_count"),
        offset_of!(D, type_count)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.plugin_name"),
        offset_of!(D, plugin_name)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.types"),
        offset_of!(D, types)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.type_struct_size"),
        offset_of!(D, type_struct_size)
    );
    assert_eq!(
        n("offsetof KeelsonPluginDescriptor.reserved"),
        offset_of!(D, reserved)
    );

    let k = |name: &str| -> i64 { c[&format!("const {name}")].parse().unwrap() };
    assert_eq!(k("KEELSON_PLUGIN_MAGIC"), i64::from(KEELSON_PLUGIN_MAGIC));
    assert_eq!(k("KEELSON_ABI_VERSION"), i64::from(KEELSON_ABI_VERSION));
    assert_eq!(k("KEELSON_OK"), i64::from(KEELSON_OK));
    assert_eq!(k("KEELSON_ERROR"), i64::from(KEELSON_ERROR));
    assert_eq!(k("KEELSON_PANIC"), i64::from(KEELSON_PANIC));
    assert_eq!(k("KEELSON_INVALID"), i64::from(KEELSON_INVALID));
    assert_eq!(k("KEELSON_LOG_ERR"), i64::from(KEELSON_LOG_ERR));
    assert_eq!(k("KEELSON_LOG_WARN"), i64::from(KEELSON_LOG_WARN));
    assert_eq!(k("KEELSON_LOG_INFO"), i64::from(KEELSON_LOG_INFO));
    assert_eq!(k("KEELSON_LOG_DBG"), i64::from(KEELSON_LOG_DBG));
    assert_eq!(c["symbol"], KEELSON_PLUGIN_SYMBOL_NAME);
    // issue 11: failure reports and status codes
    assert_eq!(
        n("offsetof KeelsonHost.report_failure"),
        offset_of!(KeelsonHost, report_failure)
    );
    assert_eq!(k("KEELSON_MISCONFIGURED"), i64::from(KEELSON_MISCONFIGURED));
    assert_eq!(k("KEELSON_NOT_INSTALLED"), i64::from(KEELSON_NOT_INSTALLED));
    assert_eq!(k("KEELSON_NOT_RUNNING"), i64::from(KEELSON_NOT_RUNNING));
    // issue 12: where a resource runs
    for (field, offset) in [
        ("node_name", offset_of!(KeelsonHost, node_name)),
        ("resource_name", offset_of!(KeelsonHost, resource_name)),
        ("state_dir", offset_of!(KeelsonHost, state_dir)),
    ] {
        assert_eq!(
            n(&format!("offsetof KeelsonHost.{field}")),
            offset,
            "{field}"
        );
    }
    for (name, value) in [
        ("KEELSON_PARAM_STRING", KEELSON_PARAM_STRING),
        ("KEELSON_PARAM_INTEGER", KEELSON_PARAM_INTEGER),
        ("KEELSON_PARAM_BOOLEAN", KEELSON_PARAM_BOOLEAN),
        ("KEELSON_PARAM_ENUM", KEELSON_PARAM_ENUM),
        ("KEELSON_PARAM_PATH", KEELSON_PARAM_PATH),
        ("KEELSON_PARAM_ADDRESS", KEELSON_PARAM_ADDRESS),
        ("KEELSON_PARAM_REQUIRED", KEELSON_PARAM_REQUIRED),
        ("KEELSON_PARAM_SECRET", KEELSON_PARAM_SECRET),
        ("KEELSON_PARAM_HAS_MIN", KEELSON_PARAM_HAS_MIN),
        ("KEELSON_PARAM_HAS_MAX", KEELSON_PARAM_HAS_MAX),
        ("KEELSON_TYPE_DECLARES_PARAMS", KEELSON_TYPE_DECLARES_PARAMS),
        ("KEELSON_MAX_PARAMS", KEELSON_MAX_PARAMS),
    ] {
        assert_eq!(k(name), i64::from(value), "{name}");
    }
}

/// With `-fvisibility=hidden`, a plugin that marks its entry point `KEELSON_EXPORT` (as the
/// header's own declaration does) still exports `keelson_plugin_v1`.
#[test]
fn keelson_export_survives_hidden_visibility() {
    let dir = std::env::temp_dir().join(format!("keelson-t02-vis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, lib) = (dir.join("vis.c"), dir.join("libvis.so"));
    std::fs::write(
        &src,
        "#include \"keelson_plugin.h\"\n\
         static const KeelsonPluginDescriptor D = {0};\n\
         KEELSON_EXPORT const KeelsonPluginDescriptor *keelson_plugin_v1(void) { return &D; }\n\
         int keelson_hidden_helper(void) { return 1; }\n",
    )
    .unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let compiled = Command::new("cc")
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
        ])
        .args(["-fvisibility=hidden", "-I", include, "-o"])
        .arg(&lib)
        .arg(&src)
        .status();
    match compiled {
        Err(e) if !common::in_ci() => return println!("skipping: no C compiler ({e})"),
        Err(e) => panic!("CI=true but no C compiler: {e}"),
        Ok(status) => assert!(status.success(), "the visibility probe does not compile"),
    }
    let symbols = match Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
    {
        Err(e) if !common::in_ci() => return println!("skipping: no nm ({e})"),
        Err(e) => panic!("CI=true but no nm: {e}"),
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(symbols.contains(" keelson_plugin_v1"), "{symbols}");
    assert!(
        !symbols.contains("keelson_hidden_helper"),
        "hidden visibility applies: {symbols}"
    );
}

#[test]
fn the_plain_c_plugin_and_the_no_symbol_library_are_built() {
    for path in [
        keelson_plugin_c_example::C_EXAMPLE_PLUGIN,
        keelson_plugin_c_example::NO_SYMBOL_LIBRARY,
    ] {
        assert!(std::path::Path::new(path).is_file(), "{path} was not built");
    }
}
