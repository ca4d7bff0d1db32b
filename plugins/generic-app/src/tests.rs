//! Unit tests of the type on real processes, with a test host (Host::for_tests) and a temporary
//! state directory: start, adoption by a fresh instance, stop, failed starts, a stale pid file.

use super::*;
use keelson_plugin::ErrorKind;
use keelson_sys::detached;
use std::path::Path;

fn scratch(tag: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("keelson-generic-app-{tag}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn params(pairs: &[(&str, &str)]) -> Params {
    let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
    Params::parse(&format!("{{{}}}", fields.join(","))).unwrap()
}

fn open(dir: &Path, pairs: &[(&str, &str)]) -> GenericApp {
    let host = Host::for_tests(dir, "n1", "web");
    GenericApp::open(&params(pairs), host).unwrap()
}

fn pid_of(app: &GenericApp) -> u32 {
    app.app.as_ref().expect("a process").pid()
}

#[test]
fn the_declaration_is_one_the_host_accepts() {
    keelson_plugin::schema::<GenericApp>()
        .check_declaration()
        .expect("PARAMS and DEFAULTS");
}

#[test]
fn online_starts_a_fresh_instance_adopts_and_offline_stops() {
    let dir = scratch("adopt");
    let cmd = [
        ("CommandLine", "sh -c 'echo started; exec sleep 1000'"),
        ("StartWindow", "50"),
    ];
    let mut first = open(&dir, &cmd);
    first.online().unwrap();
    let pid = pid_of(&first);
    first.looks_alive().unwrap();
    first.is_alive().unwrap();
    let record = PidFile::in_dir(&dir).read().unwrap().expect("a pid file");
    assert_eq!(record.pid, pid);
    // Where cgroup v2 is writable (as root here), the process is in a cgroup of its own.
    let cgroup = first.app.as_ref().and_then(|a| a.cgroup.clone());
    assert_eq!(record.cgroup.as_deref(), cgroup.as_ref().map(|c| c.dir()));
    if let Some(cgroup) = &cgroup {
        let mount = Cgroup::v2_mount().unwrap().unwrap();
        let inside = Cgroup::of_process(pid).unwrap().unwrap();
        assert_eq!(mount.join(inside), cgroup.dir());
    }
    assert!(detached::is_same_process(pid, record.start_time));
    // A second online of the same instance changes nothing.
    first.online().unwrap();
    assert_eq!(pid_of(&first), pid);
    // A fresh instance (a new host) adopts the running process instead of starting another.
    first.close();
    let mut second = open(&dir, &cmd);
    second.online().unwrap();
    assert_eq!(pid_of(&second), pid);
    second.looks_alive().unwrap();
    second.offline().unwrap();
    assert!(!detached::is_same_process(pid, record.start_time));
    assert_eq!(
        second.looks_alive().unwrap_err().kind(),
        ErrorKind::NotRunning
    );
    assert_eq!(second.is_alive().unwrap_err().kind(), ErrorKind::NotRunning);
    assert_eq!(PidFile::in_dir(&dir).read().unwrap(), None);
    assert!(
        cgroup.is_none_or(|c| !c.dir().exists()),
        "offline removes the cgroup"
    );
    second.offline().unwrap();
    let log = std::fs::read_to_string(dir.join("app.log")).unwrap();
    assert!(
        log.contains("keelson: starting sh -c 'echo started; exec sleep 1000'\n"),
        "{log}"
    );
    second.close();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn offline_of_a_fresh_instance_stops_the_process_the_pid_file_names() {
    let dir = scratch("offline-fresh");
    let cmd = [("CommandLine", "sleep 1000"), ("StartWindow", "0")];
    let mut first = open(&dir, &cmd);
    first.online().unwrap();
    let pid = pid_of(&first);
    first.close();
    let mut second = open(&dir, &cmd);
    second.offline().unwrap();
    assert!(!keelson_sys::process::is_alive(pid));
    assert_eq!(PidFile::in_dir(&dir).read().unwrap(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_program_is_not_installed_and_names_the_command_line() {
    let dir = scratch("missing");
    let mut bare = open(&dir, &[("CommandLine", "no-such-program-keelson --x")]);
    let err = bare.online().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotInstalled, "{}", err.message());
    assert!(
        err.message().starts_with(
            "CommandLine 'no-such-program-keelson --x': no-such-program-keelson: No such file"
        ),
        "{}",
        err.message()
    );
    let mut path = open(&dir, &[("CommandLine", "/nonexistent/x")]);
    let err = path.online().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotInstalled, "{}", err.message());
    assert_eq!(
        err.message(),
        "CommandLine '/nonexistent/x': /nonexistent/x: No such file or directory (os error 2)"
    );
    let mut cwd = open(
        &dir,
        &[
            ("CommandLine", "sleep 1"),
            ("WorkingDirectory", "/nonexistent/dir"),
        ],
    );
    let err = cwd.online().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotInstalled, "{}", err.message());
    assert!(
        err.message()
            .starts_with("WorkingDirectory '/nonexistent/dir': "),
        "{}",
        err.message()
    );
    assert_eq!(PidFile::in_dir(&dir).read().unwrap(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_process_that_exits_at_once_fails_online_with_its_status_and_last_words() {
    let dir = scratch("exits");
    let mut app = open(
        &dir,
        &[
            ("CommandLine", "sh -c 'echo bad config >&2; exit 3'"),
            ("StartWindow", "2000"),
        ],
    );
    let started = Instant::now();
    let err = app.online().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the exit ends the window early"
    );
    assert!(
        err.message()
            .contains("exited within StartWindow (2000 ms) with status 3"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("bad config"), "{}", err.message());
    assert_eq!(PidFile::in_dir(&dir).read().unwrap(), None);
    assert_eq!(app.looks_alive().unwrap_err().kind(), ErrorKind::NotRunning);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn offline_kills_an_app_that_ignores_sigterm_after_stop_timeout() {
    let dir = scratch("ignores-term");
    let mut app = open(
        &dir,
        &[
            (
                "CommandLine",
                "sh -c 'trap \"\" TERM; echo ready; while :; do sleep 1; done'",
            ),
            ("StopTimeout", "300"),
            ("StartWindow", "100"),
        ],
    );
    app.online().unwrap();
    let pid = pid_of(&app);
    let started = Instant::now();
    app.offline().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "SIGKILL came after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!keelson_sys::process::is_alive(pid));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stale_pid_file_is_never_adopted() {
    let dir = scratch("stale");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    // Our own pid with a start time that is not ours: a reused pid.
    let me = std::process::id();
    let my_start = detached::start_time(me).unwrap();
    for (pid, start_time) in [(gone_pid, 1), (me, my_start + 1)] {
        PidFile::in_dir(&dir)
            .write(&pidfile::PidRecord {
                pid,
                start_time,
                cgroup: None,
            })
            .unwrap();
        let mut app = open(&dir, &[("CommandLine", "sleep 1000"), ("StartWindow", "0")]);
        app.online().unwrap();
        assert_ne!(pid_of(&app), pid);
        app.terminate().unwrap();
        assert_eq!(PidFile::in_dir(&dir).read().unwrap(), None);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn validate_refuses_an_unknown_user_and_an_empty_command_line() {
    let err = GenericApp::validate(&params(&[
        ("CommandLine", "sleep 1"),
        ("User", "no-such-user-keelson"),
    ]))
    .unwrap_err();
    assert_eq!(err.message(), "User: unknown user 'no-such-user-keelson'");
    let err = GenericApp::validate(&params(&[("CommandLine", "")])).unwrap_err();
    assert!(
        err.message().starts_with("CommandLine: empty"),
        "{}",
        err.message()
    );
    GenericApp::validate(&params(&[("CommandLine", "sleep 1"), ("User", "nobody")])).unwrap();
}

#[test]
fn the_restart_after_a_failed_health_check_replaces_the_process() {
    let dir = scratch("unhealthy");
    let marker = dir.join("healthy");
    let check = format!("test -e {}", marker.display());
    let mut app = open(
        &dir,
        &[
            ("CommandLine", "sleep 1000"),
            ("StartWindow", "0"),
            ("StartTimeout", "0"),
            ("HealthCommand", &check),
        ],
    );
    app.online().unwrap();
    let first = pid_of(&app);
    let err = app.is_alive().unwrap_err();
    assert!(
        err.message()
            .starts_with(&format!("HealthCommand '{check}': exited with status 1")),
        "{}",
        err.message()
    );
    std::fs::write(&marker, "").unwrap();
    // The node's restart: online again on the same instance, no offline in between.
    app.online().unwrap();
    let second = pid_of(&app);
    assert_ne!(first, second);
    assert!(!keelson_sys::process::is_alive(first));
    app.is_alive().unwrap();
    // A healthy one is left alone by a second online.
    app.online().unwrap();
    assert_eq!(pid_of(&app), second);
    app.offline().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
