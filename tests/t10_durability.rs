//! Durable or refused, with real processes and a real small file system: a full disk refuses
//! requests with one clear line and changes nothing, every acknowledged change survives `kill -9`,
//! and changes are accepted again once space is freed, without a restart; a damaged, emptied or
//! deleted cluster database stops the node with one line naming the file, and `--repair` recovers
//! what can be read; the data directory and database are not readable by others; secret parameter
//! values never reach the logs or events; and private parameter changes really reach the plugin.

mod common;

use common::rcm::Rcm;
use common::{artefact, in_ci, target_dir, wait_until};
use keelson_proto::{ControlReply, ControlRequest as R};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

fn s(v: &str) -> String {
    v.to_string()
}

fn is_root() -> bool {
    keelson_sys::process::geteuid() == 0
}

/// Root is needed to mount a file system; in CI its absence is a failure.
fn need_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(!in_ci(), "{test} needs root in CI (CI=true)");
    eprintln!("skipping {test}: needs root to mount a small tmpfs");
    false
}

/// A tmpfs of its own, unmounted (lazily, so a leftover process cannot keep it) on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("keelson-tmpfs-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &dir.display().to_string(),
            ],
        );
        Tmpfs { dir }
    }

    fn resize(&self, size: &str) {
        run(
            "mount",
            &[
                "-o",
                &format!("remount,size={size}"),
                &self.dir.display().to_string(),
            ],
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create(name: &str) -> R {
    R::ResourceCreate {
        name: name.into(),
        type_name: s("dummy"),
        group: s("g"),
        params: vec![],
        properties: vec![],
    }
}

/// What the node answered to one request: Ok(message) or Err(message).
fn answer(rcm: &Rcm, request: R) -> Result<String, String> {
    match rcm.request(request).into_iter().next() {
        Some(ControlReply::Done { message }) => Ok(message),
        Some(ControlReply::Error { message }) => Err(message),
        other => panic!("unexpected reply {other:?}"),
    }
}

fn resource_names(rcm: &Rcm) -> Vec<String> {
    let list = rcm.ok(R::ResourceList);
    let rows = list
        .as_array()
        .cloned()
        .or_else(|| list["resources"].as_array().cloned());
    rows.unwrap_or_default()
        .iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect()
}

/// Creates resources until 20 in a row are refused; (acknowledged names, (refused name, message)).
fn fill(rcm: &Rcm) -> (Vec<String>, Vec<(String, String)>) {
    let (mut acknowledged, mut refused) = (vec![], vec![]);
    let mut refusals_in_a_row = 0;
    for i in 0..20_000 {
        let name = format!("r{i}");
        match answer(rcm, create(&name)) {
            Ok(_) => {
                acknowledged.push(name);
                refusals_in_a_row = 0;
            }
            Err(message) => {
                assert!(message.ends_with("; nothing was changed"), "{message}");
                refused.push((name, message));
                refusals_in_a_row += 1;
                if refusals_in_a_row == 20 {
                    return (acknowledged, refused);
                }
            }
        }
    }
    panic!("the 1 MiB file system never filled up");
}

/// With the logs elsewhere (symlinks out of the small file system), the database is what fills up:
/// its refusal is the one line the issue asks for, the engine keeps nothing refused, and status
/// tells while the file cannot be reopened.
#[test]
fn a_full_database_refuses_with_one_line_and_keeps_nothing_refused() {
    if !need_root("the full-database test") {
        return;
    }
    let fs = Tmpfs::mount("fulldb", "1m");
    let dir = fs.dir.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let logs = Rcm::new_dir("fulldb-logs");
    for f in ["cluster.log", "events.jsonl", "audit.log", "rcm.out"] {
        std::os::unix::fs::symlink(logs.join(f), dir.join(f)).unwrap();
    }
    let rcm = Rcm::start_in(dir.clone());
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let (acknowledged, refused) = fill(&rcm);
    for (_, m) in &refused {
        assert_eq!(
            m,
            "cannot save the cluster database: no space left on device; nothing was changed"
        );
    }
    let listed = resource_names(&rcm);
    assert_eq!(listed.len(), acknowledged.len());
    let status = rcm.ok(R::Status);
    let state = status["database"]["state"].as_str().unwrap().to_string();
    assert!(state == "ok" || state == "unavailable", "{status:#}");
    fs.resize("64m");
    let start = Instant::now();
    while let Err(m) = answer(&rcm, create("after")) {
        assert!(start.elapsed() < LIMIT, "still refused: {m}");
    }
    assert_eq!(rcm.ok(R::Status)["database"]["state"], "ok");
    drop(rcm);
    let _ = std::fs::remove_dir_all(&logs);
}

#[test]
fn a_full_disk_refuses_changes_loses_no_acknowledged_one_and_recovers_without_a_restart() {
    if !need_root("the full-disk test") {
        return;
    }
    let fs = Tmpfs::mount("full", "1m");
    let dir = fs.dir.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rcm = Rcm::start_in(dir.clone());
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let (mut acknowledged, refused) = fill(&rcm);
    // The audit record is written before the change, so on a disk full for both it is what
    // refuses first; the database's own refusal is tested on its own below.
    assert!(refused.iter().all(|(_, m)| m
        == "cannot save the cluster database: no space left on device; nothing was changed"
        || m == "cannot write the audit log: no space left on device; nothing was changed"));
    let listed = resource_names(&rcm);
    for (name, _) in &refused {
        assert!(!listed.contains(name), "refused '{name}' is in the engine");
    }
    let status = rcm.ok(R::Status);
    let failing = status["logs"].as_array().unwrap().iter().any(|l| {
        l["write_failures"].as_u64().unwrap() > 0
            && l["last_error"]
                .as_str()
                .unwrap()
                .contains("no space left on device")
    });
    assert!(failing, "status does not say the logs fail: {status:#}");

    // Space comes back: changes are accepted again, by the same node service.
    fs.resize("64m");
    let start = Instant::now();
    let mut later = 0;
    while later < 10 {
        let name = format!("later{later}");
        match answer(&rcm, create(&name)) {
            Ok(_) => {
                acknowledged.push(name);
                later += 1;
            }
            Err(m) => assert!(
                start.elapsed() < LIMIT,
                "still refused after space came back: {m}"
            ),
        }
    }
    let status = rcm.ok(R::Status);
    assert_eq!(status["database"]["state"], "ok", "{status:#}");

    // Every acknowledged change is on disk; no refused one is.
    rcm.kill9();
    let rcm = Rcm::start_in(rcm.keep_dir());
    let listed = resource_names(&rcm);
    for name in &acknowledged {
        assert!(listed.contains(name), "acknowledged '{name}' was lost");
    }
    for (name, _) in &refused {
        assert!(!listed.contains(name), "refused '{name}' was saved");
    }
    assert_eq!(listed.len(), acknowledged.len());
    drop(rcm);
}

/// Starts keelson-rcm on `dir` expecting it to exit; its exit code and output (bounded wait).
fn start_expecting_exit(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(artefact("keelson-rcm"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--plugin-dir")
        .arg(target_dir())
        .args(extra)
        .env("KEELSON_RHS", artefact("keelson-rhs"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(LIMIT, || matches!(child.try_wait(), Ok(Some(_))));
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exited, "keelson-rcm did not exit: {text}");
    (out.status.code(), text)
}

/// A data directory holding group g with resources a, b, c, and the node stopped.
fn populated(tag: &str) -> PathBuf {
    let rcm = Rcm::start(tag);
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    for n in ["a", "b", "c"] {
        rcm.ok(create(n));
    }
    rcm.keep_dir()
}

#[test]
fn a_damaged_database_stops_the_node_with_one_line_and_repair_recovers_it() {
    let dir = populated("damaged");
    let db = dir.join("cluster.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    let half = bytes.len() / 2;
    for (i, b) in bytes[4096.min(half)..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(131).wrapping_add(17);
    }
    std::fs::write(&db, &bytes).unwrap();
    let (code, text) = start_expecting_exit(&dir, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        !text.contains("panicked"),
        "a panic reached the user: {text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {text}");
    assert!(lines[0].contains(&db.display().to_string()), "{text}");
    assert!(lines[0].contains("--repair"), "{text}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the damaged file was left untouched"
    );

    let (code, report) = start_expecting_exit(&dir, &["--repair"]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("damaged database copied to"), "{report}");
    assert!(report.contains("recovered"), "{report}");
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("cluster.redb.damaged-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(kept[0].path()).unwrap(), bytes);
    // The node starts on the repaired database.
    let rcm = Rcm::start_in(dir);
    rcm.ok(R::Status);
}

#[test]
fn repair_of_an_intact_database_keeps_every_record() {
    let dir = populated("intact-repair");
    let (code, report) = start_expecting_exit(&dir, &["--repair"]);
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.contains("recovered 1 groups and 3 resources"),
        "{report}"
    );
    let rcm = Rcm::start_in(dir);
    let mut names = resource_names(&rcm);
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn an_emptied_or_deleted_database_is_refused_not_replaced() {
    let dir = populated("emptied");
    let db = dir.join("cluster.redb");
    std::fs::write(&db, b"").unwrap();
    let (code, text) = start_expecting_exit(&dir, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("is empty, but this data directory held one"),
        "{text}"
    );
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "not replaced");
    std::fs::remove_file(&db).unwrap();
    let (code, text) = start_expecting_exit(&dir, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("is missing, but this data directory held one"),
        "{text}"
    );
    assert!(!db.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_data_directory_and_database_are_private_and_secrets_stay_out_of_logs() {
    let dir = Rcm::new_dir("private").join("fresh");
    // rcm creates a missing data directory itself (here through --repair, which exits at once).
    let (code, text) = start_expecting_exit(&dir, &["--repair"]);
    assert_eq!(code, Some(0), "{text}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o750);
    // An existing directory that others may enter is tightened.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rcm = Rcm::start_in(dir.clone());
    assert_eq!(mode(&dir), 0o750);
    for f in ["cluster.redb", "cluster.id", "rcm.lock"] {
        let m = mode(&dir.join(f));
        assert_eq!(m & 0o027, 0, "{f} is {m:o}");
    }
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let secret = "hunter2-correct-horse";
    rcm.ok(R::ResourceCreate {
        name: s("leaky"),
        type_name: s("chaos"),
        group: s("g"),
        params: vec![
            (s("leak_password"), s(secret)),
            (s("entry"), s("online")),
            (s("fault"), s("error")),
        ],
        properties: vec![(s("RestartAction"), s("Restart"))],
    });
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("leaky", "Failed", LIMIT);
    assert!(
        wait_until(LIMIT, || rcm.cluster_log().contains("(my password is ***)")),
        "the plugin's error never reached the log:\n{}",
        rcm.cluster_log()
    );
    assert!(rcm
        .cluster_log()
        .contains("chaos: opened; my password is ***"));
    assert_eq!(rcm.resource("leaky")["parameters"]["leak_password"], "***");
    for file in ["cluster.log", "events.jsonl", "rcm.out"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(!text.contains(secret), "{file} holds the secret:\n{text}");
    }
    drop(rcm);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_parameter_change_reaches_the_plugin_and_parameters_can_be_removed() {
    let rcm = Rcm::start("params");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(create("a"));
    rcm.wait_resource("a", LIMIT, "open", |v| v["host_pid"].is_number());
    // A parameter the dummy plugin refuses: refused now by the plugin itself (validation before
    // commit), not at the next open, and nothing changes.
    let refusal = rcm.refused(R::ResourceSet {
        name: s("a"),
        properties: vec![],
        params: vec![(s("colour"), s("red"))],
        unset_params: vec![],
    });
    assert!(refusal.contains("resource 'a'"), "{refusal}");
    assert!(
        wait_until(LIMIT, || rcm
            .cluster_log()
            .contains("unknown parameter 'colour'")),
        "the change never reached the plugin:\n{}\n{:#}",
        rcm.cluster_log(),
        rcm.resource("a")
    );
    assert_eq!(rcm.resource("a")["parameters"], serde_json::json!({}));
    // One it takes: the resource is reopened with it now.
    let done = rcm.ok(R::ResourceSet {
        name: s("a"),
        properties: vec![],
        params: vec![(s("online_delay_ms"), s("1"))],
        unset_params: vec![],
    });
    assert_eq!(
        done,
        "resource 'a' updated (parameters changed: reopened with them now)"
    );
    assert!(
        rcm.cluster_log()
            .contains("Resource 'a': private parameters changed (online_delay_ms)."),
        "{}",
        rcm.cluster_log()
    );
    rcm.ok(R::ResourceSet {
        name: s("a"),
        properties: vec![],
        params: vec![],
        unset_params: vec![s("online_delay_ms")],
    });
    assert_eq!(rcm.resource("a")["parameters"], serde_json::json!({}));
    // A parameter that makes IsAlive fail, set while Online, applies at the next online only.
    rcm.ok(R::GroupOnline { name: s("g") });
    rcm.wait_state("a", "Online", LIMIT);
    let done = rcm.ok(R::ResourceSet {
        name: s("a"),
        properties: vec![(s("LooksAlivePollInterval"), s("10"))],
        params: vec![
            (s("fail_looks_alive"), s("true")),
            (s("fail_is_alive"), s("true")),
        ],
        unset_params: vec![],
    });
    assert_eq!(
        done,
        "resource 'a' updated (parameters changed: they apply at its next online)"
    );
    let pid = rcm.resource("a")["host_pid"].clone();
    rcm.ok(R::ResourceOffline { name: s("a") });
    rcm.wait_state("a", "Offline", LIMIT);
    rcm.ok(R::ResourceOnline { name: s("a") });
    // Reopened with the failing checks: it fails its health checks (and its restart) now.
    rcm.wait_resource("a", LIMIT, "failing its checks", |v| {
        v["state"] == "Failed" || v["state"] == "OnlinePending" && v["host_pid"] != pid
    });
    assert!(
        wait_until(LIMIT, || rcm.cluster_log().contains("IsAlive")
            || rcm.cluster_log().contains("ISALIVE")),
        "{}",
        rcm.cluster_log()
    );
    let stored = rcm.resource("a")["parameters"].clone();
    assert_eq!(stored["fail_is_alive"], "true", "{stored}");
}

#[test]
fn a_dependency_can_be_removed_so_the_provider_can_be_deleted() {
    let rcm = Rcm::start("undepend");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(create("disk"));
    rcm.ok(create("share"));
    rcm.ok(R::ResourceDepend {
        name: s("share"),
        on: s("disk"),
    });
    let refused = rcm.refused(R::ResourceDelete { name: s("disk") });
    assert!(
        refused.contains("remove those dependencies first"),
        "{refused}"
    );
    let done = rcm.ok(R::ResourceUndepend {
        name: s("share"),
        on: s("disk"),
    });
    assert_eq!(done, "resource 'share' no longer depends on 'disk'");
    let again = rcm.refused(R::ResourceUndepend {
        name: s("share"),
        on: s("disk"),
    });
    assert_eq!(again, "resource 'share' does not depend on 'disk'");
    rcm.ok(R::ResourceDelete { name: s("disk") });
    assert_eq!(resource_names(&rcm), ["share"]);
}

/// The CLI's way to the same: `resource set --unset-param` and `resource undepend`.
#[test]
fn the_cli_removes_parameters_and_dependencies() {
    let rcm = Rcm::start("cli-unset");
    let keelson = |args: &[&str]| {
        let out = Command::new(artefact("keelson"))
            .arg("--data-dir")
            .arg(&rcm.dir)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let cmds: [&[&str]; 3] = [
        &["resource", "create", "a", "--type", "dummy", "--group", "g"],
        &[
            "resource",
            "create",
            "b",
            "--type",
            "dummy",
            "--group",
            "g",
            "--param",
            "online_delay_ms=1",
        ],
        &["resource", "depend", "b", "--on", "a"],
    ];
    for args in cmds {
        let (code, text) = keelson(args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
    }
    let (code, text) = keelson(&["resource", "set", "b", "--unset-param", "online_delay_ms"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("parameters changed"), "{text}");
    assert_eq!(rcm.resource("b")["parameters"], serde_json::json!({}));
    let (code, text) = keelson(&["resource", "set", "b", "--unset-param", "online_delay_ms"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.trim(),
        "keelson: resource 'b' has no parameter 'online_delay_ms' to remove"
    );
    let (code, text) = keelson(&["resource", "undepend", "b", "--on", "a"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(rcm.resource("b")["depends_on"], serde_json::json!([]));
}
