//! The node's JSON configuration file: which namespace to enter, which node of the topology it is,
//! the key file, the port, the incarnation, the NetFT settings by their WSFC names (with the
//! test-only lower limits when asked for explicitly) and the whole topology. Parsing and checking
//! only: every refusal names the file and the thing; nothing is started here.

use keelson_netft::settings::Bounds;
use keelson_netft::{
    ClusterKey, DetectorConfig, InterfaceSpec, NetftSettings, NetworkSpec, NodeId, NodeSpec,
    Topology, DEFAULT_PORT,
};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// A network namespace to enter before binding anything (`/var/run/netns/NAME`).
    pub netns: Option<PathBuf>,
    /// This node's id in `nodes`.
    pub local: u32,
    /// The cluster key (at least 16 bytes, read raw).
    pub key_file: PathBuf,
    #[serde(default = "default_port")]
    pub port: u16,
    /// Higher on every start than on the one before; the wall clock in milliseconds if absent.
    pub incarnation: Option<u64>,
    #[serde(default)]
    pub settings: SettingsFile,
    pub networks: Vec<NetworkFile>,
    pub nodes: Vec<NodeFile>,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

/// NetFT settings by their WSFC names; absent ones keep WSFC's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    #[serde(rename = "SameSubnetDelay")]
    pub same_subnet_delay: Option<u32>,
    #[serde(rename = "SameSubnetThreshold")]
    pub same_subnet_threshold: Option<u32>,
    #[serde(rename = "CrossSubnetDelay")]
    pub cross_subnet_delay: Option<u32>,
    #[serde(rename = "CrossSubnetThreshold")]
    pub cross_subnet_threshold: Option<u32>,
    /// Allow delays down to 10 ms and thresholds down to 2 (tests and benchmarks only).
    #[serde(rename = "TestOnlyLowerLimits", default)]
    pub test_only_lower_limits: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub name: String,
    pub priority: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub id: u32,
    pub name: String,
    pub interfaces: Vec<InterfaceFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceFile {
    pub adapter: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub network: String,
}

/// Everything the node runs with, checked.
#[derive(Debug)]
pub struct NodeConfig {
    pub netns: Option<PathBuf>,
    pub detector: DetectorConfig,
}

/// Reads and checks `path`; the error names the file and what is wrong with it.
pub fn load(path: &Path) -> Result<NodeConfig, String> {
    let named = |what: String| format!("config {}: {what}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| named(format!("cannot read: {e}")))?;
    let file: ConfigFile = serde_json::from_str(&text).map_err(|e| named(e.to_string()))?;
    let settings = settings(&file.settings).map_err(named)?;
    let key = std::fs::read(&file.key_file).map_err(|e| {
        named(format!(
            "cannot read key file {}: {e}",
            file.key_file.display()
        ))
    })?;
    let key = ClusterKey::new(&key)
        .map_err(|e| named(format!("key file {}: {e}", file.key_file.display())))?;
    let topology = topology(&file).map_err(named)?;
    let incarnation = match file.incarnation {
        Some(n) => n,
        None => wall_clock_ms().map_err(named)?,
    };
    Ok(NodeConfig {
        netns: file.netns,
        detector: DetectorConfig {
            topology,
            settings,
            key,
            incarnation,
            port: file.port,
            contact: None,
        },
    })
}

fn settings(file: &SettingsFile) -> Result<NetftSettings, String> {
    let mut settings = NetftSettings {
        bounds: if file.test_only_lower_limits {
            Bounds::TestOnlyLowerLimits
        } else {
            Bounds::Normal
        },
        ..NetftSettings::default()
    };
    let given = [
        ("SameSubnetDelay", file.same_subnet_delay),
        ("SameSubnetThreshold", file.same_subnet_threshold),
        ("CrossSubnetDelay", file.cross_subnet_delay),
        ("CrossSubnetThreshold", file.cross_subnet_threshold),
    ];
    for (name, value) in given {
        if let Some(value) = value {
            settings.set(name, value).map_err(|e| e.to_string())?;
        }
    }
    Ok(settings)
}

fn topology(file: &ConfigFile) -> Result<Topology, String> {
    let nodes = file
        .nodes
        .iter()
        .map(|n| NodeSpec {
            id: NodeId(n.id),
            name: n.name.clone(),
            interfaces: n
                .interfaces
                .iter()
                .map(|i| InterfaceSpec {
                    adapter: i.adapter.clone(),
                    addr: i.addr,
                    prefix_len: i.prefix_len,
                    network: i.network.clone(),
                })
                .collect(),
        })
        .collect();
    let networks = file
        .networks
        .iter()
        .map(|n| NetworkSpec {
            name: n.name.clone(),
            priority: n.priority,
        })
        .collect();
    Topology::new(NodeId(file.local), nodes, networks).map_err(|e| e.to_string())
}

/// Milliseconds since the Unix epoch (a default incarnation that grows across restarts).
pub fn wall_clock_ms() -> Result<u64, String> {
    wall_clock_ns().map(|ns| ns / 1_000_000)
}

/// Nanoseconds since the Unix epoch: CLOCK_REALTIME, which every network namespace on a machine
/// shares, so a benchmark can compare instants across node processes.
pub fn wall_clock_ns() -> Result<u64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .map_err(|e| format!("the wall clock is before 1970: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text)
            .unwrap();
        path
    }

    fn config_text(key: &Path, settings: &str) -> String {
        format!(
            r#"{{"local": 1, "key_file": "{}", "settings": {settings},
              "networks": [{{"name": "net1", "priority": 1}}],
              "nodes": [
                {{"id": 1, "name": "A", "interfaces": [{{"adapter": "eth0", "addr": "192.0.2.1", "prefix_len": 24, "network": "net1"}}]}},
                {{"id": 2, "name": "B", "interfaces": [{{"adapter": "eth0", "addr": "192.0.2.2", "prefix_len": 24, "network": "net1"}}]}}
              ]}}"#,
            key.display()
        )
    }

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "keelson-netft-node-config-{tag}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_good_file_gives_settings_topology_and_defaults() {
        let d = dir("good");
        let key = write(&d, "key", b"0123456789abcdef0123");
        let cfg = write(
            &d,
            "c.json",
            config_text(
                &key,
                r#"{"SameSubnetDelay": 100, "SameSubnetThreshold": 5, "TestOnlyLowerLimits": true}"#,
            )
            .as_bytes(),
        );
        let loaded = load(&cfg).unwrap();
        assert_eq!(loaded.detector.settings.timing(true), (100, 5));
        assert_eq!(loaded.detector.settings.timing(false), (1000, 5));
        assert_eq!(loaded.detector.port, DEFAULT_PORT);
        assert_eq!(loaded.detector.topology.routes().len(), 1);
        assert!(
            loaded.detector.incarnation > 1_700_000_000_000,
            "wall clock ms"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_the_thing() {
        let d = dir("bad");
        let key = write(&d, "key", b"0123456789abcdef0123");
        let short = write(&d, "short", b"short");
        let err = |name: &str, text: String| {
            let path = write(&d, name, text.as_bytes());
            let e = load(&path).unwrap_err();
            assert!(
                e.starts_with(&format!("config {}: ", path.display())),
                "{e}"
            );
            e
        };
        let e = err("a.json", config_text(&key, r#"{"SameSubnetDelay": 100}"#));
        assert!(e.contains("SameSubnetDelay 100 is out of range"), "{e}");
        let e = err("b.json", config_text(&short, "{}"));
        assert!(e.contains("too short"), "{e}");
        let e = err("c.json", config_text(&key, r#"{"SameSubnetDelai": 100}"#));
        assert!(e.contains("SameSubnetDelai"), "{e}");
        let e = err(
            "d.json",
            config_text(&key, "{}").replace("\"local\": 1", "\"local\": 9"),
        );
        assert!(e.contains("local node 9"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
