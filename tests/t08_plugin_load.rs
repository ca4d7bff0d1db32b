//! Plugins that misbehave at load, against a real keelson-rcm and `keelson plugin test`: a library
//! constructor that never returns holds neither rcm's start nor other plugins and is listed as hung
//! once the probe deadline passes; a dangling symlink, a duplicate type and a wrong ABI are listed
//! with their problems; a stored resource whose type is still being probed waits for it and is never
//! given an empty plugin; `plugin test` ends within its deadline. The hanging plugin is
//! plugins/hang-load, held by a file the test removes (also when it fails). Not the loader's own
//! checks (t01).

mod common;

use common::rcm::Rcm;
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The variable plugins/hang-load reads: its constructor blocks while this file exists.
const HOLD_ENV: &str = "KEELSON_HANG_LOAD_WHILE";
const HANG_FILE: &str = "libkeelson_plugin_hang_load.so";

fn s(v: &str) -> String {
    v.to_string()
}

/// The hold file of the hanging constructor; removed on drop, so nothing stays hung after a test.
struct Hold(PathBuf);

impl Hold {
    fn new(dir: &Path) -> Hold {
        let path = dir.join("hold-the-load");
        std::fs::write(&path, b"").unwrap();
        Hold(path)
    }

    fn release(&self) {
        std::fs::remove_file(&self.0).unwrap();
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh plugin directory holding copies of the named built plugins (under their own names).
fn plugin_dir(tag: &str, plugins: &[(&str, &str)]) -> PathBuf {
    let dir = Rcm::new_dir(&format!("{tag}-plugins"));
    for (built, as_name) in plugins {
        std::fs::copy(common::plugin(built), dir.join(as_name)).unwrap();
    }
    dir
}

/// The plugin list entry of the file named `file`.
fn entry(list: &Value, file: &str) -> Value {
    list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["path"]
                .as_str()
                .unwrap_or("")
                .ends_with(&format!("/{file}"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{file} is not listed: {list:#}"))
}

/// Waits (bounded) until `file`'s entry has `status`; returns the list then.
fn wait_status(rcm: &Rcm, file: &str, status: &str, limit: Duration) -> Value {
    let start = Instant::now();
    loop {
        let list = rcm.plugins();
        if entry(&list, file)["status"] == status {
            return list;
        }
        assert!(
            start.elapsed() < limit,
            "{file} never became {status}: {list:#}\nlog:\n{}",
            rcm.cluster_log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn create(rcm: &Rcm, name: &str, type_name: &str, group: &str) -> Vec<keelson_proto::ControlReply> {
    rcm.request(R::ResourceCreate {
        name: s(name),
        type_name: s(type_name),
        group: s(group),
        params: vec![],
        properties: vec![],
    })
}

fn group(rcm: &Rcm, name: &str) {
    rcm.ok(R::GroupCreate {
        name: s(name),
        properties: vec![],
    });
}

#[test]
fn a_hung_constructor_holds_neither_start_up_nor_other_plugins_and_is_listed_as_hung() {
    let plugins = plugin_dir(
        "hung",
        &[
            ("dummy", "libkeelson_plugin_dummy.so"),
            ("hang-load", HANG_FILE),
        ],
    );
    let hold = Hold::new(&plugins);
    let deadline = Duration::from_millis(2000);
    let started = Instant::now();
    let rcm = Rcm::start_with(
        Rcm::new_dir("hung"),
        &plugins,
        &["--probe-timeout", "2000"],
        &[(HOLD_ENV, &hold.0)],
    );
    let answered = started.elapsed();
    // Start-up did not wait for the hung probe: status answered before its deadline, and the file is
    // still being probed.
    assert!(
        answered < deadline,
        "status answered only after {answered:?}"
    );
    let list = rcm.plugins();
    assert_eq!(entry(&list, HANG_FILE)["status"], "probing", "{list:#}");
    assert_eq!(list["complete"], false);

    // A healthy plugin is usable meanwhile.
    group(&rcm, "g");
    let reply = create(&rcm, "d", "dummy", "g");
    assert!(
        matches!(
            reply.first(),
            Some(keelson_proto::ControlReply::Done { .. })
        ),
        "{reply:?}"
    );
    assert_eq!(entry(&rcm.plugins(), HANG_FILE)["status"], "probing");

    // A create of the hung file's type waits for its verdict, then is refused naming the file.
    let refused = rcm.refused(R::ResourceCreate {
        name: s("h"),
        type_name: s("hang_load"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    assert!(
        refused.starts_with("unknown resource type 'hang_load'")
            && refused.contains(&format!("{HANG_FILE} (hung at load)")),
        "{refused}"
    );

    let list = wait_status(&rcm, HANG_FILE, "hung", Duration::from_secs(10));
    let hung_after = started.elapsed();
    assert!(
        hung_after >= deadline && hung_after < deadline + Duration::from_secs(5),
        "listed as hung after {hung_after:?} with a {deadline:?} deadline"
    );
    assert_eq!(list["complete"], true);
    let error = entry(&list, HANG_FILE)["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("within the probe deadline of 2000 ms"),
        "{error}"
    );
    // The probe host was killed, not left hanging.
    let pid: u32 = error
        .split("probe host ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no probe host pid in: {error}"));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "probe host {pid} is still there"
    );
    assert!(
        rcm.cluster_log().contains("hung at load"),
        "{}",
        rcm.cluster_log()
    );
    drop(rcm);
    let _ = std::fs::remove_dir_all(&plugins);
}

#[test]
fn a_dangling_symlink_a_duplicate_type_and_a_wrong_abi_are_listed_with_their_problems() {
    let plugins = plugin_dir(
        "problems",
        &[
            ("dummy", "libkeelson_plugin_dummy.so"),
            ("dummy", "libkeelson_plugin_dummy_again.so"),
            ("bad-abi", "libkeelson_plugin_bad_abi.so"),
            ("chaos", "libkeelson_plugin_chaos.so"),
        ],
    );
    std::os::unix::fs::symlink(
        "/nonexistent/plugin.so",
        plugins.join("libkeelson_plugin_gone.so"),
    )
    .unwrap();
    let rcm = Rcm::start_with(Rcm::new_dir("problems"), &plugins, &[], &[]);
    let start = Instant::now();
    let list = loop {
        let list = rcm.plugins();
        if list["complete"] == true {
            break list;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "probes never finished: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(list["plugins"].as_array().unwrap().len(), 5, "{list:#}");

    let gone = entry(&list, "libkeelson_plugin_gone.so");
    assert_eq!(gone["status"], "failed");
    assert_eq!(
        gone["error"],
        format!(
            "{} -> /nonexistent/plugin.so: no such file",
            plugins.join("libkeelson_plugin_gone.so").display()
        )
    );

    let bad = entry(&list, "libkeelson_plugin_bad_abi.so");
    assert_eq!(bad["status"], "failed");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .ends_with("ABI version 7, host speaks 1"),
        "{bad}"
    );

    let first = entry(&list, "libkeelson_plugin_dummy.so");
    let again = entry(&list, "libkeelson_plugin_dummy_again.so");
    for (this, other) in [(&first, &again), (&again, &first)] {
        assert_eq!(this["status"], "conflict", "{this}");
        assert_eq!(this["conflicting_types"], serde_json::json!(["dummy"]));
        let note = this["error"].as_str().unwrap();
        assert!(note.contains(other["path"].as_str().unwrap()), "{note}");
    }
    assert_eq!(list["conflicts"][0]["type"], "dummy");
    assert_eq!(
        list["conflicts"][0]["files"],
        serde_json::json!([first["path"], again["path"]])
    );
    assert_eq!(
        entry(&list, "libkeelson_plugin_chaos.so")["status"],
        "loaded"
    );

    // The conflicting type is offered to no one; the healthy one is.
    group(&rcm, "g");
    let refused = rcm.refused(R::ResourceCreate {
        name: s("d"),
        type_name: s("dummy"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    });
    assert!(refused.contains("more than one plugin file"), "{refused}");
    assert!(matches!(
        create(&rcm, "c", "chaos", "g").first(),
        Some(keelson_proto::ControlReply::Done { .. })
    ));

    // The CLI shows every problem in place of the types.
    let out = Command::new(common::artefact("keelson"))
        .arg("--data-dir")
        .arg(&rcm.dir)
        .args(["plugin", "list"])
        .env_remove("KEELSON_DATA_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("-> /nonexistent/plugin.so: no such file"),
        "{text}"
    );
    assert!(
        text.contains("dummy (conflict: type 'dummy' is also provided by"),
        "{text}"
    );
    assert!(text.contains("error: plugin "), "{text}");
    drop(rcm);
    let _ = std::fs::remove_dir_all(&plugins);
}

#[test]
fn a_stored_resource_waits_for_its_type_and_never_gets_an_empty_plugin() {
    let plugins = plugin_dir("stored", &[("hang-load", HANG_FILE)]);
    let rcm = Rcm::start_with(Rcm::new_dir("stored"), &plugins, &[], &[]);
    group(&rcm, "g");
    create(&rcm, "h", "hang_load", "g");
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("h", "Online", Duration::from_secs(10));
    let dir = rcm.keep_dir();

    // Restart with the plugin's load held: rcm answers at once, the resource is there with its
    // plugin, waiting; once the load is released it comes back Online.
    let hold = Hold::new(&plugins);
    let rcm = Rcm::start_with(
        dir,
        &plugins,
        &["--probe-timeout", "20000"],
        &[(HOLD_ENV, &hold.0)],
    );
    assert_eq!(entry(&rcm.plugins(), HANG_FILE)["status"], "probing");
    let view = rcm.resource("h");
    assert_eq!(view["plugin"], "hang-load", "{view:#}");
    assert_ne!(view["state"], "Online", "{view:#}");
    hold.release();
    rcm.wait_state("h", "Online", Duration::from_secs(10));
    let dir = rcm.keep_dir();

    // Restart without the plugin: the resource is kept, with its plugin name, and fails its open
    // with the reason instead of being resolved to "".
    let empty = plugin_dir("stored-none", &[]);
    let rcm = Rcm::start_with(dir, &empty, &[], &[]);
    let view = rcm.wait_state("h", "Failed", Duration::from_secs(10));
    assert_eq!(view["plugin"], "hang-load", "{view:#}");
    assert!(
        rcm.cluster_log()
            .contains("no plugin provides resource type 'hang_load'"),
        "{}",
        rcm.cluster_log()
    );
    drop(rcm);
    let _ = std::fs::remove_dir_all(&plugins);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn plugin_test_fails_a_hung_constructor_within_its_deadline() {
    let plugins = plugin_dir("ptest", &[("hang-load", HANG_FILE)]);
    let hold = Hold::new(&plugins);
    let deadline = Duration::from_millis(500);
    for json in [false, true] {
        let mut cmd = Command::new(common::artefact("keelson"));
        cmd.args(["plugin", "test"])
            .arg(plugins.join(HANG_FILE))
            .args(["--deadlock-timeout", "500"])
            .env(HOLD_ENV, &hold.0)
            .env("KEELSON_RHS", common::artefact("keelson-rhs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if json {
            cmd.arg("--json");
        }
        let start = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let ended = common::wait_until(Duration::from_secs(20), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !ended {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let elapsed = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(ended, "plugin test never ended: {stdout}");
        assert!(
            elapsed < deadline + Duration::from_secs(3),
            "plugin test took {elapsed:?} with a {deadline:?} deadline"
        );
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        if json {
            let report: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(report["passed"], false);
            assert_eq!(report["load"]["result"], "fail");
            let message = report["load"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("hung:") && message.contains("500 ms"),
                "{message}"
            );
        } else {
            assert!(stdout.contains("  FAIL  load "), "{stdout}");
            assert!(
                stdout.contains(
                    "hung: the library did not finish loading within DeadlockTimeout 500 ms"
                ),
                "{stdout}"
            );
        }
    }
    drop(hold);
    let _ = std::fs::remove_dir_all(&plugins);
}
