//! Issue 12 item 2, the network-name type against a real Knot DNS server: knotd runs in a network
//! namespace of the test's own (192.0.2.53 on its loopback) with zone `keelson.test.`, a TSIG
//! HMAC-SHA256 key and an ACL allowing updates signed by it; keelson-rcm runs in the same
//! namespace. Covers `keelson plugin test`, bad parameters refused at create naming the parameter,
//! registration (checked with dig, a real client), the records following a changed address set,
//! offline removing them, an idempotent online (a resolver loop keeps getting the records, and the
//! zone's serial stays put, while the resource's host is SIGKILLed and replaced), the server down
//! (SIGSTOP) with RequireDNS 1 (Failed) and 0 (Online, a warning in the cluster log), and a wrong
//! key (the error names NOTAUTH and BADSIG). knotd and the namespace go in Drop guards. Needs
//! root, knotd and dig: fails in CI without them, skips locally.

mod common;

use common::lab::{ip, root_or_skip};
use common::rcm::{holds_for, wait_for, Rcm};
use keelson_proto::ControlRequest as R;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);
const SERVER: &str = "192.0.2.53";
const KEY_SECRET: &str = "a2VlbHNvbi10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=";
const WRONG_SECRET: &str = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmch";

fn s(v: &str) -> String {
    v.to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (s(k), s(v))).collect()
}

/// True when `tool` runs; in CI its absence fails the test.
fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok || !common::in_ci(),
        "{tool} is not installed (CI installs knot and dnsutils)"
    );
    if !ok {
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}

fn prerequisites(test: &str) -> bool {
    root_or_skip(test) && have("knotd", "-V") && have("dig", "-v")
}

/// A namespace of the test's own with knotd serving keelson.test. on 192.0.2.53; both are
/// removed on drop, even when the test fails.
struct Knot {
    netns: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Knot {
    fn start(tag: &str) -> Knot {
        let netns = format!("nn{tag}{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &netns])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &netns]);
        let mut knot = Knot {
            netns,
            dir: Rcm::new_dir(&format!("knot-{tag}")),
            child: None,
        };
        ip(&["-n", &knot.netns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &knot.netns,
            "addr",
            "add",
            &format!("{SERVER}/32"),
            "dev",
            "lo",
        ]);
        knot.write_config();
        let log = std::fs::File::create(knot.dir.join("knotd.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &knot.netns, "knotd", "-c"])
            .arg(knot.dir.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("knotd starts");
        knot.child = Some(child);
        let answered = common::wait_until(LIMIT, || !knot.dig("keelson.test", "SOA").is_empty());
        assert!(answered, "knotd never answered:\n{}", knot.log());
        knot
    }

    fn write_config(&self) {
        let d = self.dir.display();
        for sub in ["run", "db", "zones"] {
            std::fs::create_dir_all(self.dir.join(sub)).unwrap();
        }
        std::fs::write(
            self.dir.join("knot.conf"),
            format!(
                "server:\n    rundir: \"{d}/run\"\n    listen: {SERVER}@53\n\
                 database:\n    storage: \"{d}/db\"\n\
                 key:\n  - id: ddns-key\n    algorithm: hmac-sha256\n    secret: {KEY_SECRET}\n\
                 acl:\n  - id: update\n    key: ddns-key\n    action: update\n\
                 zone:\n  - domain: keelson.test\n    storage: \"{d}/zones\"\n    file: keelson.test.zone\n    zonefile-sync: -1\n    acl: update\n\
                 log:\n  - target: stderr\n    any: info\n"
            ),
        )
        .unwrap();
        std::fs::write(
            self.dir.join("zones/keelson.test.zone"),
            format!(
                "$ORIGIN keelson.test.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A {SERVER}\n"
            ),
        )
        .unwrap();
        // The key in the block format tsig-keygen writes, and a wrong one in the one-line format.
        std::fs::write(
            self.key_file(),
            format!(
                "key \"ddns-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{KEY_SECRET}\";\n}};\n"
            ),
        )
        .unwrap();
        std::fs::write(
            self.wrong_key_file(),
            format!("hmac-sha256:ddns-key:{WRONG_SECRET}\n"),
        )
        .unwrap();
    }

    fn key_file(&self) -> PathBuf {
        self.dir.join("ddns.key")
    }

    fn wrong_key_file(&self) -> PathBuf {
        self.dir.join("wrong.key")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default()
    }

    fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        dig(&self.netns, name, rtype)
    }

    fn serial(&self) -> String {
        let soa = self.dig("keelson.test", "SOA");
        soa.first()
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_string()
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = self.child.as_ref().unwrap().id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own child process (ip netns exec execs knotd).
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "signal {sig} to knotd");
    }

    fn rcm(&self, tag: &str) -> Rcm {
        Rcm::start_in_netns(Rcm::new_dir(tag), &self.netns, &[])
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as libc::pid_t;
            // SAFETY: signals to our own child (a stopped knotd must be continued to die by TERM).
            unsafe {
                libc::kill(pid, libc::SIGCONT);
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `dig +short` of NAME TYPE against the server, from inside `netns` (sorted lines; empty when
/// there is no answer).
fn dig(netns: &str, name: &str, rtype: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args([
            "netns", "exec", netns, "dig", "+short", "+norec", "+time=1", "+tries=1",
        ])
        .arg(format!("@{SERVER}"))
        .args([name, rtype])
        .output()
        .expect("dig runs");
    if !out.status.success() {
        return vec![];
    }
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .collect();
    lines.sort();
    lines
}

/// The parameters of a network-name `name` for `addresses`, signed with the test's key.
fn name_params(
    knot: &Knot,
    name: &str,
    addresses: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let key = knot.key_file().display().to_string();
    let mut p = pairs(&[
        ("Name", name),
        ("Zone", "keelson.test"),
        ("DnsServer", SERVER),
        ("TsigKeyFile", &key),
        ("Addresses", addresses),
        ("Ttl", "60"),
        ("DnsTimeout", "300"),
        ("WatchInterval", "200"),
    ]);
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        p.push((s(k), s(v)));
    }
    p
}

/// Group `group` with one network-name resource, brought online.
fn create_online(
    rcm: &Rcm,
    group: &str,
    res: &str,
    params: Vec<(String, String)>,
    props: &[(&str, &str)],
) {
    rcm.ok(R::GroupCreate {
        name: s(group),
        properties: vec![],
    });
    rcm.ok(R::ResourceCreate {
        name: s(res),
        type_name: s("network-name"),
        group: s(group),
        params,
        properties: pairs(props),
    });
    rcm.ok(R::GroupOnline { name: s(group) });
}

fn host_pid(view: &Value) -> u64 {
    view["host_pid"].as_u64().unwrap_or(0)
}

fn plugin_test(knot: &Knot, args: &[String]) -> (bool, String) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &knot.netns])
        .arg(common::artefact("keelson"))
        .args(["plugin", "test"])
        .arg(common::artefact("libkeelson_plugin_network_name.so"))
        .args(args)
        .env("KEELSON_RHS", common::artefact("keelson-rhs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keelson plugin test");
    let ended = common::wait_until(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        child.kill().expect("kill a plugin test that never ended");
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn plugin_test_passes_and_bad_parameters_are_refused_at_create() {
    if !prerequisites("t32 plugin test") {
        return;
    }
    let knot = Knot::start("pt");
    let key = knot.key_file().display().to_string();
    let args: Vec<String> = [
        "--param",
        "Name=web",
        "--param",
        "Zone=keelson.test",
        "--param",
        "DnsServer=192.0.2.53",
        "--param",
        &format!("TsigKeyFile={key}"),
        "--param",
        "Addresses=192.0.2.10,2001:db8::10",
        "--param",
        "Ttl=60",
        "--param",
        "DnsTimeout=500",
        "--second-param",
        "Name=db",
        "--second-param",
        "Addresses=192.0.2.11",
        "--expect-invalid",
        "Name=web.example.org.",
        "--expect-invalid",
        "Addresses=banana",
        "--expect-invalid",
        "DnsServer=dns.example",
        "--expect-invalid",
        "Ttl=-1",
        "--expect-invalid",
        "TsigKeyFile=/nonexistent/key",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let (ok, out) = plugin_test(&knot, &args);
    assert!(ok, "keelson plugin test failed:\n{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // The test's resources left nothing behind.
    assert!(knot.dig("web.keelson.test", "A").is_empty(), "{out}");

    let rcm = knot.rcm("t32-create");
    rcm.ok(R::GroupCreate {
        name: s("g"),
        properties: vec![],
    });
    for (param, value) in [
        ("Name", "web.example.org."),
        ("Zone", "."),
        ("DnsServer", "dns.example"),
        ("Addresses", "192.0.2.10,banana"),
        ("TsigKeyFile", "/nonexistent/key"),
        ("Ttl", "-5"),
        ("RequireDNS", "maybe"),
    ] {
        let message = rcm.refused(R::ResourceCreate {
            name: s("bad"),
            type_name: s("network-name"),
            group: s("g"),
            params: name_params(&knot, "web", "192.0.2.10", &[(param, value)]),
            properties: vec![],
        });
        assert!(message.contains(param), "{param}={value}: {message}");
        assert!(message.contains("nothing was changed"), "{message}");
    }
    let missing = rcm.refused(R::ResourceCreate {
        name: s("bad"),
        type_name: s("network-name"),
        group: s("g"),
        params: pairs(&[
            ("Name", "web"),
            ("DnsServer", SERVER),
            ("Addresses", "192.0.2.10"),
        ]),
        properties: vec![],
    });
    assert!(missing.contains("Zone"), "{missing}");
    let list = rcm.ok(R::ResourceList);
    let rows = list.as_array().or(list["resources"].as_array()).cloned();
    assert_eq!(rows.map(|r| r.len()), Some(0), "{list:#}");
}

#[test]
fn register_follow_the_addresses_survive_a_host_kill_and_offline_removes_them() {
    if !prerequisites("t32 register") {
        return;
    }
    let knot = Knot::start("rg");
    let rcm = knot.rcm("t32-register");
    create_online(
        &rcm,
        "g",
        "nn",
        name_params(&knot, "web", "192.0.2.10", &[]),
        &[
            ("LooksAlivePollInterval", "100"),
            ("IsAlivePollInterval", "300"),
        ],
    );
    rcm.wait_state("nn", "Online", LIMIT);
    assert_eq!(knot.dig("web.keelson.test", "A"), vec!["192.0.2.10"]);
    assert!(knot.dig("web.keelson.test", "AAAA").is_empty());
    assert!(rcm
        .cluster_log()
        .contains("network name web.keelson.test. registered"));

    // Idempotent online: a resolver loop keeps getting the record while the host is killed and
    // the resource re-hosted; the zone is not even updated again (same serial).
    let serial = knot.serial();
    let old = host_pid(&rcm.resource("nn"));
    assert!(old > 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resolver = {
        let stop = stop.clone();
        let netns = knot.netns.clone();
        std::thread::spawn(move || {
            let (mut asked, mut failed) = (0u32, Vec::new());
            let start = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::SeqCst)
                && asked < 2000
                && start.elapsed() < Duration::from_secs(30)
            {
                let got = dig(&netns, "web.keelson.test", "A");
                asked += 1;
                if got != vec!["192.0.2.10"] {
                    failed.push(format!("{:?}: {got:?}", start.elapsed()));
                }
            }
            (asked, failed)
        })
    };
    wait_for("a few lookups", LIMIT, || {
        knot.dig("web.keelson.test", "A").len() == 1
    });
    // SAFETY: SIGKILL to the resource's host process, as a host death.
    assert_eq!(unsafe { libc::kill(old as libc::pid_t, libc::SIGKILL) }, 0);
    let view = rcm.wait_resource("nn", LIMIT, "Online in a new host", |v| {
        v["state"] == "Online" && host_pid(v) != old && host_pid(v) > 0
    });
    // Two health polls in the new host.
    let polled = view["call_stats"]["ISALIVE"]["count"].as_u64().unwrap_or(0);
    rcm.wait_resource("nn", LIMIT, "polled", |v| {
        v["call_stats"]["ISALIVE"]["count"].as_u64().unwrap_or(0) >= polled + 2
            && v["state"] == "Online"
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (asked, failed) = resolver.join().unwrap();
    assert!(asked >= 5, "only {asked} lookups");
    assert!(
        failed.is_empty(),
        "lookups failed during the re-hosting: {failed:?}"
    );
    assert_eq!(
        knot.serial(),
        serial,
        "the re-hosted online updated the zone"
    );
    assert!(
        rcm.cluster_log().contains("already registered"),
        "{}",
        rcm.cluster_log()
    );
    println!("t32: {asked} lookups, none failed, while host {old} was killed and replaced");

    // A move to a changed address set (parameters take effect at the next online, as in WSFC):
    // the offline removes the old record, the online registers exactly the new set.
    rcm.ok(R::ResourceSet {
        name: s("nn"),
        properties: vec![],
        params: pairs(&[("Addresses", "192.0.2.11,2001:db8::11")]),
        unset_params: vec![],
    });
    assert_eq!(knot.dig("web.keelson.test", "A"), vec!["192.0.2.10"]);
    rcm.ok(R::ResourceOffline { name: s("nn") });
    rcm.wait_state("nn", "Offline", LIMIT);
    assert!(knot.dig("web.keelson.test", "A").is_empty());
    rcm.ok(R::ResourceOnline { name: s("nn") });
    rcm.wait_state("nn", "Online", LIMIT);
    assert_eq!(knot.dig("web.keelson.test", "A"), vec!["192.0.2.11"]);
    assert_eq!(knot.dig("web.keelson.test", "AAAA"), vec!["2001:db8::11"]);

    // Offline removes them.
    rcm.ok(R::ResourceOffline { name: s("nn") });
    rcm.wait_state("nn", "Offline", LIMIT);
    assert!(knot.dig("web.keelson.test", "A").is_empty());
    assert!(knot.dig("web.keelson.test", "AAAA").is_empty());
}

#[test]
fn server_down_fails_with_require_dns_and_warns_without() {
    if !prerequisites("t32 server down") {
        return;
    }
    let knot = Knot::start("dn");
    let rcm = knot.rcm("t32-down");
    let props = [
        ("LooksAlivePollInterval", "100"),
        ("IsAlivePollInterval", "300"),
        ("RestartAction", "NoRestart"),
    ];
    create_online(
        &rcm,
        "g1",
        "strict",
        name_params(&knot, "strict", "192.0.2.20", &[]),
        &props,
    );
    create_online(
        &rcm,
        "g2",
        "lenient",
        name_params(&knot, "lenient", "192.0.2.21", &[("RequireDNS", "0")]),
        &props,
    );
    rcm.wait_state("strict", "Online", LIMIT);
    rcm.wait_state("lenient", "Online", LIMIT);

    knot.signal(libc::SIGSTOP);
    let failed = rcm.wait_state("strict", "Failed", LIMIT);
    let log = rcm.cluster_log();
    assert!(
        log.contains("no answer from DNS server 192.0.2.53:53 within 300 ms"),
        "{failed:#}\n{log}"
    );
    holds_for("lenient stays Online", Duration::from_secs(2), || {
        rcm.resource("lenient")["state"] == "Online"
    });
    wait_for("the RequireDNS=0 warning", LIMIT, || {
        rcm.cluster_log()
            .contains("RequireDNS=0: network name lenient.keelson.test.")
    });
    knot.signal(libc::SIGCONT);
}

#[test]
fn a_wrong_key_fails_naming_notauth_and_badsig() {
    if !prerequisites("t32 wrong key") {
        return;
    }
    let knot = Knot::start("wk");
    let rcm = knot.rcm("t32-key");
    let wrong = knot.wrong_key_file().display().to_string();
    create_online(
        &rcm,
        "g",
        "nn",
        name_params(&knot, "web", "192.0.2.30", &[("TsigKeyFile", &wrong)]),
        &[("RestartAction", "NoRestart")],
    );
    let view = rcm.wait_state("nn", "Failed", LIMIT);
    let errors = view["last_errors"].to_string();
    assert!(
        errors.contains("NOTAUTH") && errors.contains("BADSIG"),
        "{view:#}"
    );
    assert!(knot.dig("web.keelson.test", "A").is_empty());
}
