//! The disk resource type on real loop devices, as root: `keelson plugin test` passes on a loop
//! device; bad parameters are refused at create naming the parameter; two nodes (keelson-rcm in
//! two network namespaces of the test's own, so two mount namespaces) share one disk: exactly one
//! mounts, the other is refused naming the holder, and after kill -9 of the holder it takes over
//! once the lease ran out and reads back what the first wrote; a stuck disk (a loop device backed
//! by a file on a bindfs mount whose daemon is SIGSTOPped) fails IsAlive within ProbeTimeoutMs
//! while rcm keeps answering; and a re-host after a host SIGKILL adopts the mount, so a process
//! writing on it never sees a failure. Every loop device, mount, namespace and daemon goes in a
//! Drop guard. Not the lease's unit rules (plugins/disk/src/lease.rs).

mod common;

use common::rcm::{wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const DEVICE_MIB: u64 = 48;

fn s(v: &str) -> String {
    v.to_string()
}

fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    kv.iter().map(|(k, v)| (s(k), s(v))).collect()
}

/// Root and the tools the test needs, or a skip locally (a failure in CI).
fn prerequisites(test: &str, tools: &[&str]) -> bool {
    if !common::lab::root_or_skip(test) {
        return false;
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !found {
            assert!(!common::in_ci(), "{test} needs {tool}, and CI installs it");
            eprintln!("skipped: {test} needs {tool}");
            return false;
        }
    }
    true
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A sparse backing file attached to a loop device, with ext4 leaving the last MiB free.
struct LoopDisk {
    file: PathBuf,
    device: String,
}

impl LoopDisk {
    fn create(file: PathBuf, fs_mib: u64) -> LoopDisk {
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(DEVICE_MIB * MIB).unwrap();
        drop(f);
        let device = run("losetup", &["-f", "--show", &file.display().to_string()]);
        let disk = LoopDisk { file, device };
        run(
            "mkfs.ext4",
            &["-q", "-F", &disk.device, &format!("{}k", fs_mib * 1024)],
        );
        disk
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        if !matches!(Command::new("losetup").args(["-d", &self.device]).status(), Ok(s) if s.success())
        {
            eprintln!("cleanup: losetup -d {} failed", self.device);
        }
        std::fs::remove_file(&self.file).ok();
    }
}

/// A network namespace of the test's own (and so, for rcm under `ip netns exec`, a mount one).
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("dk{tag}{}", std::process::id());
        common::lab::ip(&["netns", "add", &name]);
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !matches!(Command::new("ip").args(["netns", "del", &self.0]).status(), Ok(s) if s.success())
        {
            eprintln!("cleanup: ip netns del {} failed", self.0);
        }
    }
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keelson-t33-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `sh -c script` inside the mount namespace of process `pid`.
fn in_mount_ns(pid: u32, script: &str) -> std::process::Output {
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "sh", "-c", script])
        .output()
        .expect("nsenter")
}

/// The mountinfo line of `mount_point` in process `pid`'s mount namespace, if mounted.
fn mounted_in(pid: u32, mount_point: &Path) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let want = format!(" {} ", mount_point.display());
    info.lines().find(|l| l.contains(&want)).map(str::to_string)
}

fn disk_params(device: &str, mount_point: &Path, lease_ms: &str) -> Vec<(String, String)> {
    pairs(&[
        ("Device", device),
        ("MountPoint", &mount_point.display().to_string()),
        ("LeaseMs", lease_ms),
        ("ProbeTimeoutMs", "500"),
        ("StopTimeoutMs", "1000"),
    ])
}

fn create_disk(rcm: &Rcm, params: Vec<(String, String)>, props: &[(&str, &str)]) {
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s("d"),
        type_name: s("disk"),
        group: s("g"),
        params,
        properties: pairs(props),
    });
}

fn host_pid(v: &Value) -> u32 {
    v["host_pid"].as_u64().unwrap_or(0) as u32
}

#[test]
fn plugin_test_passes_on_a_loop_device() {
    if !prerequisites("t33 plugin test", &["losetup", "mkfs.ext4", "unshare"]) {
        return;
    }
    let dir = scratch("ptest");
    let a = LoopDisk::create(dir.join("a.img"), DEVICE_MIB - 1);
    let b = LoopDisk::create(dir.join("b.img"), DEVICE_MIB - 1);
    let plugin = common::artefact("libkeelson_plugin_disk.so");
    // A private mount namespace: whatever the run mounts goes away with it.
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(common::artefact("keelson"))
        .args(["plugin", "test"])
        .arg(&plugin)
        .args(["--pending-timeout", "20000", "--deadlock-timeout", "5000"])
        .args(["--param", &format!("Device={}", a.device)])
        .args([
            "--param",
            &format!("MountPoint={}", dir.join("ma").display()),
        ])
        .args(["--param", "LeaseMs=400"])
        .args(["--second-param", &format!("Device={}", b.device)])
        .args([
            "--second-param",
            &format!("MountPoint={}", dir.join("mb").display()),
        ])
        .args(["--expect-invalid", "LeaseMs=5"])
        .args(["--expect-invalid", "MountPoint=relative"])
        .args(["--expect-invalid", "MountOptions=bind"])
        .args(["--expect-invalid", "Device=/proc/self/status"])
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .output()
        .expect("run keelson plugin test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "plugin test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_parameters_are_refused_at_create_naming_the_parameter() {
    if !prerequisites("t33 bad params", &["losetup", "mkfs.ext4"]) {
        return;
    }
    let dir = scratch("bad");
    let whole = LoopDisk::create(dir.join("whole.img"), DEVICE_MIB);
    let rcm = Rcm::start("t33bad");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    let mp = dir.join("m").display().to_string();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("Device", &whole.device),
                ("MountPoint", &mp),
                ("LeaseMs", "5"),
            ],
            "'LeaseMs'",
        ),
        (
            &[("Device", &whole.device), ("MountPoint", "rel")],
            "'MountPoint'",
        ),
        (
            &[("Device", "/proc/self/status"), ("MountPoint", &mp)],
            "'Device'",
        ),
        (
            &[("Device", &whole.device), ("MountPoint", &mp)],
            "reserved last MiB",
        ),
    ];
    for (params, needle) in cases {
        let err = rcm.refused(R::ResourceCreate {
            name: s("d"),
            type_name: s("disk"),
            group: s("g"),
            params: pairs(params),
            properties: vec![],
        });
        assert!(err.contains(needle), "{params:?}: {err}");
        assert!(err.contains("nothing was changed"), "{err}");
    }
    let list = rcm.ok(R::ResourceList);
    assert!(!list.to_string().contains("\"d\""), "{list}");
    drop(whole);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn one_of_two_nodes_mounts_and_the_other_takes_over_after_the_lease() {
    if !prerequisites("t33 two nodes", &["losetup", "mkfs.ext4", "nsenter"]) {
        return;
    }
    let dir = scratch("two");
    let disk = LoopDisk::create(dir.join("shared.img"), DEVICE_MIB - 1);
    let mp = dir.join("mnt");
    let (ns1, ns2) = (Netns::create("a"), Netns::create("b"));
    let mut n1 = Rcm::start_in_netns(Rcm::new_dir("t33n1"), &ns1.0, &["--node-name", "n1"]);
    let n2 = Rcm::start_in_netns(Rcm::new_dir("t33n2"), &ns2.0, &["--node-name", "n2"]);
    let props = [("RestartAction", "NoRestart")];
    create_disk(&n1, disk_params(&disk.device, &mp, "1500"), &props);
    create_disk(&n2, disk_params(&disk.device, &mp, "1500"), &props);

    n1.ok(R::ResourceOnline { name: s("d") });
    n1.wait_state("d", "Online", Duration::from_secs(20));
    let wrote = in_mount_ns(
        n1.pid(),
        &format!("echo from-n1 > {}/note && sync", mp.display()),
    );
    assert!(wrote.status.success(), "{wrote:?}");

    n2.request(R::ResourceOnline { name: s("d") });
    let failed = n2.wait_state("d", "Failed", Duration::from_secs(20));
    let msg = failed["last_errors"]["ONLINE"]["message"].to_string();
    assert!(msg.contains("is held by node n1 (renewed"), "{failed:#}");
    assert!(mounted_in(n1.pid(), &mp).is_some(), "n1 lost its mount");
    assert!(
        mounted_in(n2.pid(), &mp).is_none(),
        "both nodes mounted the disk"
    );

    let n1_host = host_pid(&n1.resource("d"));
    n1.kill9();
    if n1_host != 0 {
        keelson_sys::process::kill(n1_host, keelson_sys::Signal::SIGKILL).unwrap();
    }
    let killed = Instant::now();
    n2.ok(R::ResourceOnline { name: s("d") });
    n2.wait_state("d", "Online", Duration::from_secs(20));
    let took = killed.elapsed();
    eprintln!(
        "takeover after kill -9 of the holder: {} ms",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_millis(1500),
        "took over within the lease: {took:?}"
    );
    let read = in_mount_ns(n2.pid(), &format!("cat {}/note", mp.display()));
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim(),
        "from-n1",
        "{read:?}"
    );
    n2.ok(R::ResourceOffline { name: s("d") });
    n2.wait_state("d", "Offline", Duration::from_secs(20));
    assert!(
        mounted_in(n2.pid(), &mp).is_none(),
        "offline left the mount"
    );
    drop(n2);
    drop(n1);
    std::fs::remove_dir_all(&dir).ok();
}

/// A loop device backed by a file on a bindfs mount, with the daemon SIGSTOPped by `freeze`;
/// drop continues the daemon first, then stops rcm, detaches the loop and unmounts bindfs.
struct StuckLab {
    dir: PathBuf,
    fuse: PathBuf,
    bindfs: Option<Child>,
    rcm: Option<Rcm>,
    device: String,
    netns: Option<Netns>,
}

impl StuckLab {
    fn bindfs_pid(&self) -> u32 {
        self.bindfs.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn signal_bindfs(&self, signal: keelson_sys::Signal) {
        keelson_sys::process::kill(self.bindfs_pid(), signal).unwrap();
    }
}

impl Drop for StuckLab {
    fn drop(&mut self) {
        if self.bindfs.is_some() {
            keelson_sys::process::kill(self.bindfs_pid(), keelson_sys::Signal::SIGCONT).ok();
        }
        drop(self.rcm.take());
        drop(self.netns.take());
        if !self.device.is_empty() {
            Command::new("losetup")
                .args(["-d", &self.device])
                .status()
                .ok();
        }
        if let Some(mut child) = self.bindfs.take() {
            Command::new("fusermount3")
                .args(["-u", "-z"])
                .arg(&self.fuse)
                .status()
                .ok();
            child.kill().ok();
            child.wait().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[test]
fn a_stuck_disk_fails_is_alive_at_its_deadline_and_rcm_keeps_answering() {
    if !prerequisites(
        "t33 stuck disk",
        &["losetup", "mkfs.ext4", "bindfs", "fusermount3"],
    ) {
        return;
    }
    let dir = scratch("stuck");
    let (backing, fuse) = (dir.join("backing"), dir.join("fuse"));
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::create_dir_all(&fuse).unwrap();
    let mut lab = StuckLab {
        dir: dir.clone(),
        fuse: fuse.clone(),
        bindfs: None,
        rcm: None,
        device: String::new(),
        netns: None,
    };
    lab.bindfs = Some(
        Command::new("bindfs")
            .args(["-f", "--no-allow-other"])
            .arg(&backing)
            .arg(&fuse)
            .stdout(Stdio::null())
            .spawn()
            .expect("start bindfs"),
    );
    let fuse_up = wait_for("bindfs mounted", Duration::from_secs(10), || {
        mounted_in(std::process::id(), &fuse).is_some()
    });
    eprintln!("bindfs up in {} ms", fuse_up.as_millis());
    let image = fuse.join("stuck.img");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(DEVICE_MIB * MIB)
        .unwrap();
    lab.device = run("losetup", &["-f", "--show", &image.display().to_string()]);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            &lab.device,
            &format!("{}k", (DEVICE_MIB - 1) * 1024),
        ],
    );
    lab.netns = Some(Netns::create("s"));
    let ns = lab.netns.as_ref().unwrap().0.clone();
    lab.rcm = Some(Rcm::start_in_netns(
        Rcm::new_dir("t33stuck"),
        &ns,
        &["--node-name", "n1"],
    ));
    let rcm = lab.rcm.as_ref().unwrap();
    let props = [
        ("RestartAction", "NoRestart"),
        ("IsAlivePollInterval", "300"),
        ("LooksAlivePollInterval", "300"),
    ];
    create_disk(
        rcm,
        disk_params(&lab.device, &dir.join("mnt"), "10000"),
        &props,
    );
    rcm.ok(R::ResourceOnline { name: s("d") });
    rcm.wait_state("d", "Online", Duration::from_secs(30));

    lab.signal_bindfs(keelson_sys::Signal::SIGSTOP);
    let stopped = Instant::now();
    let rcm = lab.rcm.as_ref().unwrap();
    let failed = rcm.wait_state("d", "Failed", Duration::from_secs(10));
    let took = stopped.elapsed();
    eprintln!("stuck disk detected in {} ms", took.as_millis());
    let err = &failed["last_errors"]["ISALIVE"];
    assert!(
        err["message"]
            .to_string()
            .contains("did not answer within 500 ms"),
        "{failed:#}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    for _ in 0..3 {
        let asked = Instant::now();
        let view = rcm.ok_within(R::ResourceGet { name: s("d") }, Duration::from_secs(1));
        assert!(asked.elapsed() < Duration::from_secs(1), "{view}");
    }
    lab.signal_bindfs(keelson_sys::Signal::SIGCONT);
}

#[test]
fn a_host_kill_rehosts_without_unmounting_under_a_busy_writer() {
    if !prerequisites("t33 idempotent", &["losetup", "mkfs.ext4", "nsenter"]) {
        return;
    }
    let dir = scratch("idem");
    let disk = LoopDisk::create(dir.join("idem.img"), DEVICE_MIB - 1);
    let mp = dir.join("mnt");
    let ns = Netns::create("i");
    let rcm = Rcm::start_in_netns(Rcm::new_dir("t33idem"), &ns.0, &["--node-name", "n1"]);
    create_disk(&rcm, disk_params(&disk.device, &mp, "1500"), &[]);
    rcm.ok(R::ResourceOnline { name: s("d") });
    let before = rcm.wait_state("d", "Online", Duration::from_secs(20));
    let mount_before = mounted_in(rcm.pid(), &mp).expect("mounted");
    let stop = dir.join("stop-writer");
    let script = format!(
        "exec 3>>{mnt}/log; i=0; while [ $i -lt 3000 ] && [ ! -e {stop} ]; do \
         echo $i >&3 || exit 7; i=$((i+1)); sleep 0.01; done; echo $i",
        mnt = mp.display(),
        stop = stop.display()
    );
    let writer = Command::new("nsenter")
        .args(["-t", &rcm.pid().to_string(), "-m", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let old_host = host_pid(&before);
    keelson_sys::process::kill(old_host, keelson_sys::Signal::SIGKILL).unwrap();
    let back = rcm.wait_resource("d", Duration::from_secs(20), "re-hosted Online", |v| {
        v["state"] == "Online" && host_pid(v) != 0 && host_pid(v) != old_host
    });
    // A health check on the new host, through the adopted lease and mount.
    let log = rcm.cluster_log();
    assert!(
        log.contains("already mounted on"),
        "the new host did not adopt:\n{log}"
    );
    std::fs::write(&stop, b"").unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(out.status.success(), "a write failed: {out:?}");
    let lines: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(lines > 0);
    assert_eq!(
        mounted_in(rcm.pid(), &mp).as_deref(),
        Some(mount_before.as_str())
    );
    assert_eq!(host_pid(&back), host_pid(&rcm.resource("d")));
    writer_file_is_complete(&rcm, &mp, lines);
    std::fs::remove_file(&stop).ok();
    drop(rcm);
    std::fs::remove_dir_all(&dir).ok();
}

/// The writer's log holds every number from 0 to `lines - 1`, in order.
fn writer_file_is_complete(rcm: &Rcm, mp: &Path, lines: u64) {
    let read = in_mount_ns(rcm.pid(), &format!("cat {}/log", mp.display()));
    let text = String::from_utf8_lossy(&read.stdout);
    let got: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(got, (0..lines).collect::<Vec<_>>());
}
