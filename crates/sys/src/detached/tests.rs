//! Unit tests of detached launches: real processes, checked through /proc.

use super::cgroup::Cgroup;
use super::identity::Identity;
use super::pidfd::{Exit, Woke};
use super::*;
use nix::sys::signal::Signal;
use std::path::Path;

const LIMIT: Duration = Duration::from_secs(10);

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keelson-detached-{tag}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spec(dir: &Path, args: &[&str]) -> Launch {
    Launch {
        program: PathBuf::from(args[0]),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("ONLY".into(), "this".into()),
        ],
        working_dir: dir.to_path_buf(),
        identity: None,
        output: File::options()
            .create(true)
            .append(true)
            .open(dir.join("out.log"))
            .unwrap(),
        cgroup_procs: None,
    }
}

/// Waits (bounded) for the process to end and returns its output file's text.
fn output_after_exit(launched: &Launched, dir: &Path) -> String {
    assert_eq!(launched.pidfd.wait_exit(LIMIT).unwrap(), Woke::Exited);
    std::fs::read_to_string(dir.join("out.log")).unwrap()
}

/// Waits (bounded: LIMIT, 2 ms a turn) until `path` holds `want`.
fn wait_for_text(path: &Path, want: &str) {
    let deadline = Instant::now() + LIMIT;
    while std::fs::read_to_string(path).unwrap_or_default() != want {
        assert!(
            Instant::now() < deadline,
            "{} never held {want:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn stat(pid: u32) -> Vec<String> {
    crate::process::stat_fields(&format!("/proc/{pid}/stat")).unwrap()
}

#[test]
fn the_process_runs_in_its_own_session_outside_our_tree_with_its_own_output() {
    let dir = scratch("session");
    let launched = launch(
        &spec(
            &dir,
            &["/bin/sh", "-c", "echo out; echo err >&2; exec sleep 100"],
        ),
        LIMIT,
    )
    .unwrap();
    let pid = launched.pidfd.pid();
    let fields = stat(pid);
    // ppid (field 4), pgrp (5), session (6): not our child; its own group and session.
    assert_ne!(fields[1], std::process::id().to_string(), "{fields:?}");
    assert_eq!(fields[2], pid.to_string(), "process group: {fields:?}");
    assert_eq!(fields[3], pid.to_string(), "session: {fields:?}");
    assert_eq!(launched.start_time, start_time(pid).unwrap());
    assert!(is_same_process(pid, launched.start_time));
    assert!(!is_same_process(pid, launched.start_time + 1));
    wait_for_text(&dir.join("out.log"), "out\nerr\n");
    launched.pidfd.signal_group(Signal::SIGKILL).unwrap();
    let text = output_after_exit(&launched, &dir);
    assert_eq!(text, "out\nerr\n");
    assert_eq!(
        launched
            .pidfd
            .exit_status()
            .unwrap()
            .map(|e| matches!(e, Exit::Signal(9, _) | Exit::Unknown)),
        Some(true)
    );
    assert!(!is_same_process(pid, launched.start_time));
    // Never our zombie.
    assert!(!crate::process::zombie_children(std::process::id())
        .unwrap()
        .contains(&pid));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn environment_directory_descriptors_and_signals_are_the_launchs_own() {
    let dir = scratch("env");
    let script = "env | sort; pwd; ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; \
                  grep -E '^Sig(Ign|Blk)' /proc/self/status";
    let launched = launch(&spec(&dir, &["/bin/sh", "-c", script]), LIMIT).unwrap();
    let text = output_after_exit(&launched, &dir);
    let lines: Vec<&str> = text.lines().collect();
    // sh adds PWD (and may add SHLVL, _) of its own; nothing of ours leaks in.
    let env: Vec<&str> = lines
        .iter()
        .copied()
        .take_while(|l| !l.starts_with('/'))
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
        .collect();
    assert_eq!(env, ["ONLY=this", "PATH=/usr/bin:/bin"], "{text}");
    assert!(lines.contains(&dir.to_str().unwrap()), "{text}");
    // 0, 1, 2 and the directory ls itself reads.
    assert!(lines.contains(&"0 1 2 3 "), "{text}");
    assert!(lines.contains(&"SigBlk:\t0000000000000000"), "{text}");
    assert!(lines.contains(&"SigIgn:\t0000000000000000"), "{text}");
    assert_eq!(
        launched
            .pidfd
            .exit_status()
            .unwrap()
            .map(|e| matches!(e, Exit::Code(0) | Exit::Unknown)),
        Some(true)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_program_fails_at_exec_and_a_missing_directory_at_chdir() {
    let dir = scratch("missing");
    let err = launch(&spec(&dir, &["/nonexistent/program"]), LIMIT).unwrap_err();
    assert_eq!(err.stage, Stage::Exec, "{err}");
    assert_eq!(err.error.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert_eq!(
        err.to_string(),
        "cannot execute the program: No such file or directory (os error 2)"
    );
    let mut gone = spec(&dir, &["/bin/true"]);
    gone.working_dir = dir.join("no-such-dir");
    let err = launch(&gone, LIMIT).unwrap_err();
    assert_eq!(err.stage, Stage::WorkingDirectory, "{err}");
    let err = launch(&spec(&dir, &["/bin/echo", "a\0b"]), LIMIT).unwrap_err();
    assert_eq!(err.stage, Stage::Arguments, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_process_runs_as_the_user_it_is_given() {
    if crate::process::geteuid() != 0 {
        eprintln!("skipped: switching users needs root");
        return;
    }
    let dir = scratch("user");
    let mut as_nobody = spec(&dir, &["/bin/sh", "-c", "id -u; id -g"]);
    let nobody = Identity::resolve("nobody").unwrap();
    as_nobody.identity = Some(nobody.clone());
    as_nobody.working_dir = PathBuf::from("/");
    let launched = launch(&as_nobody, LIMIT).unwrap();
    let text = output_after_exit(&launched, &dir);
    assert_eq!(text, format!("{}\n{}\n", nobody.uid, nobody.gid));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cgroup_of_its_own_holds_the_process_and_its_children_until_killed() {
    let Some(mount) = Cgroup::v2_mount().unwrap() else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let relative = PathBuf::from(format!(
        "keelson-test.slice/detached-{}.scope",
        std::process::id()
    ));
    let cgroup = match Cgroup::create(&mount, &relative) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: cannot create a cgroup: {e}");
            return;
        }
    };
    let dir = scratch("cgroup");
    let mut inside = spec(&dir, &["/bin/sh", "-c", "sleep 100 & sleep 100 & wait"]);
    inside.cgroup_procs = Some(cgroup.procs_for_join().unwrap());
    let launched = launch(&inside, LIMIT).unwrap();
    let pid = launched.pidfd.pid();
    assert_eq!(Cgroup::of_process(pid).unwrap(), Some(relative.clone()));
    assert!(cgroup.is_populated().unwrap());
    assert!(cgroup.kill_all().unwrap());
    assert!(cgroup.wait_empty(LIMIT).unwrap());
    assert_eq!(launched.pidfd.wait_exit(LIMIT).unwrap(), Woke::Exited);
    cgroup.remove().unwrap();
    Cgroup::at(mount.join("keelson-test.slice")).remove().ok();
    std::fs::remove_dir_all(&dir).unwrap();
}
