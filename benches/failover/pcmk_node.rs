//! One Pacemaker node of the benchmark: a directory of its own (its "disk": /etc/corosync,
//! /var/lib/corosync, /var/lib/pacemaker, /var/log/pacemaker, kept across boots) and, while it
//! runs, a boot: `ip netns exec` into the node's network namespace, then `unshare` into a new
//! mount, pid and UTS namespace whose pid 1 (node.sh) bind-mounts those directories over the system's,
//! puts fresh tmpfs on /run and /dev/shm (libqb's IPC files, /run/crm, the Dummy agent's state file
//! live there: lost at each boot like a real node's), and starts corosync, then pacemakerd.
//! Commands run "on the node" through nsenter into its three namespaces. A node death is SIGKILL
//! of that pid 1: the kernel then SIGKILLs every other process of the pid namespace (corosync,
//! pacemakerd and its six daemons, any agent they forked) at once. Not the cluster's configuration
//! or the measurement (pacemaker.rs, measure.rs).

use crate::cleanup::{self, Item};
use crate::crm_status::CrmStatus;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long a boot's pid 1 may take to appear, and a killed boot to be reaped.
const PROCESS_LIMIT: Duration = Duration::from_secs(5);
/// How long one command on a node may run (crm_mon and friends take tens of milliseconds).
pub const COMMAND_LIMIT: Duration = Duration::from_secs(15);
/// The pause between two looks at /proc while waiting for a process to appear or go.
const PROC_POLL: Duration = Duration::from_millis(2);

/// pid 1 of a node's boot. $1 is the node's directory, $2 its name (also its hostname, in a UTS
/// namespace of its own, so that its logs say which node wrote them).
pub const BOOT_SCRIPT: &str = r#"#!/bin/bash
# pid 1 of one Pacemaker node's boot (benches/failover/pcmk_node.rs): private directories over the
# system's, fresh /run and /dev/shm, then corosync and, once it answers, pacemakerd. When either
# daemon ends, this ends, and the kernel kills the rest of the node with it.
set -euo pipefail
D=$1
hostname "$2"
# The daemons' log timestamps in UTC, so that the bench can read them against its own clock.
export TZ=UTC
mount --bind "$D/etc-corosync" /etc/corosync
mount --bind "$D/lib-corosync" /var/lib/corosync
mount --bind "$D/lib-pacemaker" /var/lib/pacemaker
mount --bind "$D/log-pacemaker" /var/log/pacemaker
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
corosync -f >>"$D/corosync.out" 2>&1 &
corosync_pid=$!
up=no
# Bounded: 400 looks, 25 ms apart (10 s), or until corosync is gone.
for _ in $(seq 1 400); do
  if corosync-cfgtool -s >/dev/null 2>&1; then up=yes; break; fi
  kill -0 "$corosync_pid" 2>/dev/null || break
  sleep 0.025
done
if [ "$up" != yes ]; then echo "node.sh: corosync did not answer within 10 s" >&2; exit 1; fi
PCMK_logfile=/var/log/pacemaker/pacemaker.log pacemakerd -f >>"$D/pacemakerd.out" 2>&1 &
echo "node.sh: corosync and pacemakerd started"
status=0
wait -n || status=$?
echo "node.sh: a daemon ended (status $status); the node goes down" >&2
exit 1
"#;

/// A running boot: the `ip netns exec … unshare` process (our child) and the node's pid 1 (its
/// child, pid 1 inside).
struct Boot {
    child: Child,
    init: u32,
}

/// What a node death did.
#[derive(Debug)]
pub struct Killed {
    /// Stamped immediately before the kill.
    pub at: Instant,
    /// The same instant by the wall clock.
    pub wall: SystemTime,
    /// The command names of the processes that died with the node.
    pub processes: Vec<String>,
}

pub struct PcmkNode {
    pub name: String,
    netns: String,
    dir: PathBuf,
    script: PathBuf,
    boots: u32,
    boot: Option<Boot>,
}

impl PcmkNode {
    /// Lays out node `index`'s directory under `parent` with `corosync_conf` in its /etc/corosync.
    pub fn prepare(
        parent: &Path,
        script: &Path,
        index: usize,
        netns: String,
        corosync_conf: &str,
    ) -> Result<PcmkNode, String> {
        let dir = parent.join(format!("node{index}"));
        let (uid, gid) = pacemaker_owner()?;
        for (sub, owned) in [
            ("etc-corosync", false),
            ("lib-corosync", false),
            ("lib-pacemaker", true),
            ("lib-pacemaker/cib", true),
            ("lib-pacemaker/pengine", true),
            ("lib-pacemaker/blackbox", true),
            ("lib-pacemaker/cores", true),
            ("log-pacemaker", true),
        ] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if owned {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
        }
        let conf = dir.join("etc-corosync/corosync.conf");
        std::fs::write(&conf, corosync_conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        Ok(PcmkNode {
            name: format!("node{index}"),
            netns,
            dir,
            script: script.to_path_buf(),
            boots: 0,
            boot: None,
        })
    }

    /// Where node `index` keeps its corosync log (named in its corosync.conf).
    pub fn corosync_log(parent: &Path, index: usize) -> PathBuf {
        parent.join(format!("node{index}/corosync.log"))
    }

    pub fn is_up(&self) -> bool {
        self.boot.is_some()
    }

    /// Boots the node. Must be called from the main thread: the boot asks for SIGKILL when the
    /// thread that started it ends (setpriv --pdeathsig, then unshare --kill-child).
    pub fn boot(&mut self) -> Result<(), String> {
        if self.boot.is_some() {
            return Err(format!("{} is already up", self.name));
        }
        self.boots += 1;
        let log = self.dir.join(format!("boot{}.out", self.boots));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "ip", "netns", "exec", &self.netns])
            .args([
                "unshare",
                "--mount",
                "--pid",
                "--uts",
                "--fork",
                "--kill-child",
            ])
            .args(["--mount-proc", "--propagation", "private", "/bin/bash"])
            .arg(&self.script)
            .arg(&self.dir)
            .arg(&self.name)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot boot {}: {e}", self.name))?;
        cleanup::register(Item::Process(child.id()));
        let init = first_child(child.id()).map_err(|e| format!("booting {}: {e}", self.name))?;
        cleanup::register(Item::Process(init));
        self.boot = Some(Boot { child, init });
        Ok(())
    }

    /// Runs `args` on the node (in its network, mount and pid namespaces), at most COMMAND_LIMIT;
    /// its stdout, or an error naming the command with its stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let Some(boot) = &self.boot else {
            return Err(format!("{} is down", self.name));
        };
        let limit = format!("{}", COMMAND_LIMIT.as_secs());
        let target = boot.init.to_string();
        let out = Command::new("timeout")
            .args(["--kill-after=1", &limit, "nsenter", "--target", &target])
            .args(["--net", "--mount", "--pid", "--"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {} on {}: {e}", args.join(" "), self.name))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(format!(
            "{} on {} failed ({}): {}",
            args.join(" "),
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    /// crm_mon's report as this node sees it.
    pub fn status(&self) -> Result<CrmStatus, String> {
        let xml = self.run(&["crm_mon", "--one-shot", "--output-as=xml"])?;
        CrmStatus::parse(&xml).map_err(|e| format!("crm_mon on {}: {e}", self.name))
    }

    /// The node dies: SIGKILL of its pid 1, which takes every process of the node with it. Waits
    /// (bounded) until the boot is reaped and checks that none of the node's processes is left.
    pub fn kill(&mut self) -> Result<Killed, String> {
        let Some(boot) = self.boot.take() else {
            return Err(format!("{} is already down", self.name));
        };
        let members = pid_namespace_members(boot.init)?;
        let (at, wall) = (Instant::now(), SystemTime::now());
        keelson_sys::process::kill(boot.init, keelson_sys::Signal::SIGKILL)
            .map_err(|e| format!("kill -9 {} ({}'s pid 1): {e}", boot.init, self.name))?;
        self.reap(boot)?;
        let survivors: Vec<String> = members
            .iter()
            .filter(|(pid, _)| keelson_sys::process::is_alive(*pid))
            .map(|(pid, comm)| format!("{comm} ({pid})"))
            .collect();
        if !survivors.is_empty() {
            return Err(format!(
                "{} was killed but these of its processes live on: {}",
                self.name,
                survivors.join(", ")
            ));
        }
        Ok(Killed {
            at,
            wall,
            processes: members.into_iter().map(|(_, comm)| comm).collect(),
        })
    }

    fn reap(&self, mut boot: Boot) -> Result<(), String> {
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            match boot.child.try_wait() {
                Ok(Some(_)) => {
                    cleanup::forget(&Item::Process(boot.child.id()));
                    cleanup::forget(&Item::Process(boot.init));
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(PROC_POLL),
                Ok(None) => {
                    return Err(format!(
                        "{}'s boot (pid {}) was not reaped within {PROCESS_LIMIT:?}",
                        self.name,
                        boot.child.id()
                    ))
                }
                Err(e) => return Err(format!("waiting for {}'s boot: {e}", self.name)),
            }
        }
    }

    /// The node's corosync log (every boot appends to it).
    pub fn corosync_log_text(&self) -> Result<String, String> {
        let path = self.dir.join("corosync.log");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The node's pacemaker log (every boot appends to it).
    pub fn pacemaker_log_text(&self) -> Result<String, String> {
        let path = self.dir.join("log-pacemaker/pacemaker.log");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The end of the node's current boot log, for error messages.
    pub fn boot_log(&self) -> String {
        let log = self.dir.join(format!("boot{}.out", self.boots));
        std::fs::read_to_string(&log)
            .map(|text| {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(5)..].join(" | ")
            })
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", log.display()))
    }
}

impl Drop for PcmkNode {
    fn drop(&mut self) {
        if self.boot.is_some() {
            if let Err(e) = self.kill() {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// The owner of the package's /var/lib/pacemaker (hacluster:haclient): the daemons run as it.
fn pacemaker_owner() -> Result<(u32, u32), String> {
    let meta = std::fs::metadata("/var/lib/pacemaker")
        .map_err(|e| format!("/var/lib/pacemaker (from the pacemaker package): {e}"))?;
    Ok((meta.uid(), meta.gid()))
}

/// The first child of `pid` (unshare's forked child, the node's pid 1), waited for (bounded).
fn first_child(pid: u32) -> Result<u32, String> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let deadline = Instant::now() + PROCESS_LIMIT;
    loop {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        // The first child is unshare's fork only once setpriv and ip have exec'ed into unshare.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "unshare" {
            if let Some(child) = text.split_whitespace().next() {
                return child.parse().map_err(|e| format!("{path}: '{child}': {e}"));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "unshare (pid {pid}) had no child within {PROCESS_LIMIT:?}"
            ));
        }
        std::thread::sleep(PROC_POLL);
    }
}

/// Every process in `init`'s pid namespace, with its command name.
fn pid_namespace_members(init: u32) -> Result<Vec<(u32, String)>, String> {
    let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid"));
    let target = ns(init).map_err(|e| format!("/proc/{init}/ns/pid: {e}"))?;
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    let mut members = Vec::new();
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        // A process may end while we look: then it is no member.
        if ns(pid).is_ok_and(|link| link == target) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            members.push((pid, comm.trim().to_string()));
        }
    }
    Ok(members)
}
