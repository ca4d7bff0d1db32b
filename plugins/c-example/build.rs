//! Compiles the plain-C plugin and the no-symbol library into shared objects with the C compiler cc
//! finds (a Rust cdylib would not export symbols of linked C code), into OUT_DIR, and copies them
//! next to the Rust plugins in target/<profile>/ so users find them there too.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let include = manifest.join("../../include");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=c_example.c");
    println!("cargo:rerun-if-changed=no_symbol.c");
    println!(
        "cargo:rerun-if-changed={}",
        include.join("keelson_plugin.h").display()
    );
    let plugin = out.join("libkeelson_plugin_c_example.so");
    let nosym = out.join("libkeelson_nosymbol.so");
    compile(&manifest.join("c_example.c"), &include, &plugin);
    compile(&manifest.join("no_symbol.c"), &include, &nosym);
    // OUT_DIR is target/<profile>/build/<pkg>-<hash>/out; its third ancestor is target/<profile>.
    if let Some(profile_dir) = out.ancestors().nth(3) {
        for file in [&plugin, &nosym] {
            let _ = std::fs::copy(file, profile_dir.join(file.file_name().unwrap()));
        }
    }
}

fn compile(source: &Path, include: &Path, output: &Path) {
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-std=c11",
        ])
        .arg("-I")
        .arg(include)
        .arg("-o")
        .arg(output)
        .arg(source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", compiler.path()));
    assert!(status.success(), "compiling {} failed", source.display());
}
