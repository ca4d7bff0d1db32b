//! Compiles the plain-C plugins and libraries into shared objects with the C compiler cc finds (a
//! Rust cdylib would not export symbols of linked C code), into OUT_DIR, and copies them next to
//! the Rust plugins in target/<profile>/ so users find them there too: the `c-example` plugin (with
//! -fvisibility=hidden, so KEELSON_EXPORT is what exports its entry point), the no-symbol library,
//! a plugin built against a frozen copy of the original ABI-1 layout, and one with a bad
//! declaration. Only c-example carries the `libkeelson_plugin_` prefix, so a node service scanning
//! target/<profile> finds only it; tests copy the others into plugin directories of their own.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let include = manifest.join("../../include");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!(
        "cargo:rerun-if-changed={}",
        include.join("keelson_plugin.h").display()
    );
    let libraries = [
        ("c_example.c", "libkeelson_plugin_c_example.so", true),
        ("no_symbol.c", "libkeelson_nosymbol.so", false),
        ("abi1_legacy.c", "libkeelson_abi1_legacy.so", false),
        ("bad_declaration.c", "libkeelson_bad_declaration.so", false),
    ];
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out; its third ancestor is target/<profile>.
    let profile_dir = out.ancestors().nth(3);
    for (source, library, hidden) in libraries {
        println!("cargo:rerun-if-changed={source}");
        let built = out.join(library);
        compile(&manifest.join(source), &include, &built, hidden);
        if let Some(dir) = profile_dir {
            let _ = std::fs::copy(&built, dir.join(library));
        }
    }
}

fn compile(source: &Path, include: &Path, output: &Path, hidden: bool) {
    let compiler = cc::Build::new().get_compiler();
    let mut command = compiler.to_command();
    command.args([
        "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c11",
    ]);
    if hidden {
        command.arg("-fvisibility=hidden");
    }
    let status = command
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(output)
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", compiler.path()));
    assert!(status.success(), "compiling {} failed", source.display());
}
