//! A network-name resource's parameters, read and checked once (`validate` and `open` share this):
//! the FQDN to register, its zone, the server, the key file, the addresses, RequireDNS, the TTL
//! and the timings. Checks what the declared schema cannot say (a name inside its zone, a server
//! address with an optional port, a list of addresses). Not the key file's contents (tsig_key.rs).

use hickory_proto::rr::Name;
use keelson_plugin::{Error, Params};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The DNS port a DnsServer without one is asked on.
pub const DNS_PORT: u16 = 53;

/// The parameters of one network-name resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The fully qualified name whose A/AAAA records this resource owns.
    pub fqdn: Name,
    /// The zone the update is sent for (its SOA owner).
    pub zone: Name,
    pub server: SocketAddr,
    pub key_file: Option<PathBuf>,
    /// The addresses the name must resolve to, exactly.
    pub addresses: BTreeSet<IpAddr>,
    pub require_dns: bool,
    pub ttl: u32,
    /// The bound on one DNS exchange (a query or an update, UDP tries and TCP fallback together).
    pub timeout: Duration,
    /// How often the watcher thread checks the records while online; None: no watcher.
    pub watch: Option<Duration>,
}

impl Config {
    pub fn parse(params: &Params) -> Result<Config, Error> {
        let zone = parse_zone(&required(params, "Zone")?)?;
        let fqdn = parse_name(&required(params, "Name")?, &zone)?;
        let timeout_ms = params.u64_or("DnsTimeout", 2000)?;
        let watch_ms = params.u64_or("WatchInterval", 10_000)?;
        Ok(Config {
            fqdn,
            zone,
            server: parse_server(&required(params, "DnsServer")?)?,
            key_file: params.str("TsigKeyFile").map(PathBuf::from),
            addresses: parse_addresses(&required(params, "Addresses")?)?,
            require_dns: params.bool_or("RequireDNS", true)?,
            ttl: u32::try_from(params.u64_or("Ttl", 1200)?)
                .map_err(|_| Error::misconfigured("Ttl: larger than 2147483647"))?,
            timeout: Duration::from_millis(timeout_ms),
            watch: (watch_ms > 0).then(|| Duration::from_millis(watch_ms)),
        })
    }
}

fn required(params: &Params, key: &str) -> Result<String, Error> {
    params
        .str(key)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::misconfigured(format!("missing required parameter '{key}'")))
}

fn parse_zone(text: &str) -> Result<Name, Error> {
    let mut zone = Name::from_ascii(text.trim())
        .map_err(|e| Error::misconfigured(format!("Zone={text:?}: not a DNS name: {e}")))?;
    if zone.is_root() {
        return Err(Error::misconfigured(format!(
            "Zone={text:?}: the root zone cannot be updated"
        )));
    }
    zone.set_fqdn(true);
    Ok(zone)
}

/// A single label is registered under the zone; a name with a dot (or a trailing dot) is taken
/// as fully qualified and must be inside the zone.
fn parse_name(text: &str, zone: &Name) -> Result<Name, Error> {
    let text = text.trim();
    let bad = |why: String| Error::misconfigured(format!("Name={text:?}: {why}"));
    let name = Name::from_ascii(text).map_err(|e| bad(format!("not a DNS name: {e}")))?;
    if name.is_wildcard() || text.contains('*') {
        return Err(bad("a wildcard cannot be registered".into()));
    }
    if name.num_labels() == 0 {
        return Err(bad("empty".into()));
    }
    if !name.iter().all(|label| {
        label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    }) {
        return Err(bad("a host name holds letters, digits and '-' only".into()));
    }
    let fqdn = if text.contains('.') {
        let mut n = name;
        n.set_fqdn(true);
        n
    } else {
        name.append_domain(zone)
            .map_err(|e| bad(format!("too long under zone {zone}: {e}")))?
    };
    if !zone.zone_of(&fqdn) || fqdn == *zone {
        return Err(bad(format!("not a name inside zone {zone}")));
    }
    Ok(fqdn)
}

/// `ADDR`, `ADDR:PORT` or `[V6ADDR]:PORT`.
fn parse_server(text: &str) -> Result<SocketAddr, Error> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    let server = text.parse::<SocketAddr>().map_err(|_| {
        Error::misconfigured(format!(
            "DnsServer={text:?}: expected an IP address or ADDRESS:PORT ([IPV6]:PORT)"
        ))
    })?;
    if server.port() == 0 {
        return Err(Error::misconfigured(format!("DnsServer={text:?}: port 0")));
    }
    Ok(server)
}

fn parse_addresses(text: &str) -> Result<BTreeSet<IpAddr>, Error> {
    let mut addresses = BTreeSet::new();
    for item in text.split(',').map(str::trim) {
        let ip = item.parse::<IpAddr>().map_err(|_| {
            Error::misconfigured(format!(
                "Addresses={text:?}: {item:?} is not an IPv4 or IPv6 address"
            ))
        })?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(Error::misconfigured(format!(
                "Addresses={text:?}: {ip} cannot be a host's address"
            )));
        }
        if !addresses.insert(ip) {
            return Err(Error::misconfigured(format!(
                "Addresses={text:?}: {ip} is listed twice"
            )));
        }
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(extra: &[(&str, &str)]) -> Params {
        let mut map = serde_json_map(&[
            ("Name", "web"),
            ("Zone", "keelson.test"),
            ("DnsServer", "192.0.2.53"),
            ("Addresses", "192.0.2.10, 2001:db8::10"),
        ]);
        for (k, v) in extra {
            map.insert((*k).into(), (*v).into());
        }
        Params::parse(&format!("{{{}}}", json_pairs(&map))).unwrap()
    }

    fn serde_json_map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn json_pairs(map: &std::collections::BTreeMap<String, String>) -> String {
        map.iter()
            .map(|(k, v)| format!("{k:?}:{v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn a_label_goes_under_the_zone_and_defaults_apply() {
        let c = Config::parse(&params(&[])).unwrap();
        assert_eq!(c.fqdn.to_string(), "web.keelson.test.");
        assert_eq!(c.zone.to_string(), "keelson.test.");
        assert_eq!(c.server, "192.0.2.53:53".parse().unwrap());
        assert_eq!(c.addresses.len(), 2);
        assert!(c.require_dns);
        assert_eq!(c.ttl, 1200);
        assert_eq!(c.timeout, Duration::from_millis(2000));
        assert_eq!(c.watch, Some(Duration::from_secs(10)));
    }

    #[test]
    fn fqdns_ports_and_options_are_read() {
        let c = Config::parse(&params(&[
            ("Name", "db.site.keelson.test."),
            ("DnsServer", "[2001:db8::53]:5353"),
            ("RequireDNS", "0"),
            ("Ttl", "0"),
            ("WatchInterval", "0"),
        ]))
        .unwrap();
        assert_eq!(c.fqdn.to_string(), "db.site.keelson.test.");
        assert_eq!(c.server, "[2001:db8::53]:5353".parse().unwrap());
        assert!(!c.require_dns);
        assert_eq!(c.ttl, 0);
        assert_eq!(c.watch, None);
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        let refused = |k: &str, v: &str| Config::parse(&params(&[(k, v)])).unwrap_err();
        for (k, v) in [
            ("Name", "web.example.org."),
            ("Name", "keelson.test."),
            ("Name", "*"),
            ("Name", "we_b"),
            ("Zone", "."),
            ("DnsServer", "dns.example"),
            ("DnsServer", "192.0.2.53:0"),
            ("Addresses", "192.0.2.10,banana"),
            ("Addresses", "192.0.2.10,192.0.2.10"),
            ("Addresses", "0.0.0.0"),
            ("Addresses", ""),
        ] {
            let e = refused(k, v);
            assert!(e.message().contains(k), "{k}={v}: {e}");
            assert_eq!(
                e.kind(),
                keelson_plugin::ErrorKind::Misconfigured,
                "{k}={v}"
            );
        }
    }
}
