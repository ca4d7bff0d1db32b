//! The structure's dependency rule, checked mechanically: only crates/sys calls nix/libc, with four
//! deliberate exceptions. rhs, crates/plugin and crates/abi sit on the C ABI and signal boundary, and
//! the `chaos` test plugin is allowed on purpose (it faults with raw signals and syscalls to prove
//! isolation, and must not be able to reach keelson's own wrappers to do it). The end-to-end test
//! package (`keelson`, tests/) may use libc as a dev-dependency only: t07 drops privileges in a
//! `pre_exec`. Reads `cargo metadata --no-deps` (no network), so it runs offline in CI. Not a
//! transitive check: tokio and friends use libc themselves; the rule is about what our code calls.

use serde_json::Value;

/// The crates that call the operating system directly.
const SYSTEM_CRATES: [&str; 2] = ["nix", "libc"];
/// Workspace packages that may depend on them (any kind of dependency).
const ALLOWED: [&str; 5] = [
    "keelson-sys",
    "keelson-rhs",
    "keelson-plugin",
    "keelson-abi",
    "keelson-plugin-chaos",
];
/// Workspace packages that may depend on them as dev-dependencies only (test fixtures).
const ALLOWED_FOR_TESTS: [&str; 1] = ["keelson"];

/// One line per direct dependency on nix/libc that the rule forbids, naming the package, the
/// system crate and the dependency kind, from `cargo metadata --format-version 1` output.
fn violations(metadata: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or("?");
        if ALLOWED.contains(&name) {
            continue;
        }
        let deps = package["dependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for dep in &deps {
            let dep_name = dep["name"].as_str().unwrap_or("");
            if !SYSTEM_CRATES.contains(&dep_name) {
                continue;
            }
            let kind = dep["kind"].as_str().unwrap_or("normal");
            if kind == "dev" && ALLOWED_FOR_TESTS.contains(&name) {
                continue;
            }
            found.push(format!("{name} depends on {dep_name} ({kind})"));
        }
    }
    found
}

/// This workspace's metadata, without resolving (or fetching) anything outside it.
fn workspace_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn only_the_allowed_crates_depend_on_nix_or_libc() {
    let metadata = workspace_metadata();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    // The check must see the workspace: the crates it exempts and a few it polices.
    for expected in [
        "keelson-sys",
        "keelson-engine",
        "keelson-rcm",
        "keelson-host",
        "keelson-ctl",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    assert_eq!(violations(&metadata), Vec::<String>::new());
}

/// A package in a fake metadata document with the given dependencies (name, kind).
fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
    let deps: Vec<Value> = deps
        .iter()
        .map(|(dep, kind)| serde_json::json!({ "name": dep, "kind": kind, "rename": null }))
        .collect();
    serde_json::json!({ "name": name, "dependencies": deps })
}

#[test]
fn a_forbidden_crate_gaining_nix_or_libc_is_caught() {
    let metadata = serde_json::json!({ "packages": [
        package("keelson-engine", &[("keelson-types", None), ("nix", None)]),
        package("keelson-rcm", &[("libc", Some("build"))]),
        package("keelson-host", &[("libc", Some("dev"))]),
        package("keelson-store", &[("redb", None)]),
    ]});
    assert_eq!(
        violations(&metadata),
        vec![
            "keelson-engine depends on nix (normal)",
            "keelson-rcm depends on libc (build)",
            "keelson-host depends on libc (dev)",
        ]
    );
}

#[test]
fn the_allowed_crates_and_test_fixtures_pass() {
    let metadata = serde_json::json!({ "packages": [
        package("keelson-sys", &[("nix", None), ("libc", None)]),
        package("keelson-plugin-chaos", &[("libc", None)]),
        package("keelson-rhs", &[("libc", None)]),
        package("keelson-plugin", &[("libc", None)]),
        package("keelson-abi", &[("libc", None)]),
        package("keelson", &[("libc", Some("dev"))]),
    ]});
    assert_eq!(violations(&metadata), Vec::<String>::new());
    // The end-to-end package may use libc in tests only, not in what it builds.
    let shipped = serde_json::json!({ "packages": [package("keelson", &[("libc", None)])] });
    assert_eq!(
        violations(&shipped),
        vec!["keelson depends on libc (normal)"]
    );
}
