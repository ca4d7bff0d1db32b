//! The ip-address type's parameters, read once and checked together: what the declared schema
//! cannot say (the prefix fits the family, exactly one of Interface and Network, the address is in
//! the Network). Shared by `validate` and `open`. Not the schema itself (lib.rs) and not any lookup
//! on the node (the interface a Network names is found at online).

use keelson_plugin::{Error, Params};
use std::net::IpAddr;
use std::time::Duration;

/// Where the address goes: a named interface, or the one interface with an address in a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Interface(String),
    Network(Cidr),
}

/// A network in CIDR form (`192.0.2.0/24`, `2001:db8::/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX`; the error says what was wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or("expected ADDRESS/PREFIX, such as 192.0.2.0/24")?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("prefix {prefix:?} is not a number"))?;
        if prefix > max_prefix(addr) {
            return Err(format!(
                "prefix /{prefix} is longer than {}",
                max_prefix(addr)
            ));
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether `addr` lies in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The longest prefix of `addr`'s family.
pub fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Every parameter of one ip-address resource, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub address: IpAddr,
    pub prefix: u8,
    pub placement: Placement,
    pub gratuitous_count: u32,
    pub gratuitous_interval: Duration,
    pub dad_timeout: Duration,
}

impl Config {
    /// Reads and checks the parameters (already checked against the schema, defaults filled in).
    /// Every refusal names the parameter.
    pub fn parse(params: &Params) -> Result<Config, Error> {
        let address = address(params)?;
        check_family_flag(params, address)?;
        let placement = placement(params, address)?;
        let prefix = prefix(params, address, &placement)?;
        Ok(Config {
            address,
            prefix,
            placement,
            gratuitous_count: count(params, "GratuitousCount", 5)?,
            gratuitous_interval: millis(params, "GratuitousIntervalMs", 200)?,
            dad_timeout: millis(params, "DadTimeoutMs", 1000)?,
        })
    }
}

fn address(params: &Params) -> Result<IpAddr, Error> {
    let text = params
        .str("Address")
        .ok_or_else(|| Error::invalid("missing required parameter 'Address'"))?;
    let address: IpAddr = text
        .parse()
        .map_err(|_| Error::invalid(format!("Address={text:?}: not an IPv4 or IPv6 address")))?;
    if address.is_unspecified() || address.is_multicast() || address.is_loopback() {
        return Err(Error::invalid(format!(
            "Address={address}: an unspecified, multicast or loopback address cannot be a resource's address"
        )));
    }
    if let IpAddr::V4(v4) = address {
        if v4.is_broadcast() {
            return Err(Error::invalid(format!(
                "Address={address}: the broadcast address cannot be a resource's address"
            )));
        }
    }
    Ok(address)
}

/// `Ipv6`, when given, must say the Address's family.
fn check_family_flag(params: &Params, address: IpAddr) -> Result<(), Error> {
    if params.str("Ipv6").is_none() {
        return Ok(());
    }
    let ipv6 = params.bool_or("Ipv6", address.is_ipv6())?;
    if ipv6 != address.is_ipv6() {
        return Err(Error::invalid(format!(
            "Ipv6={ipv6} but Address={address} is an {} address",
            if address.is_ipv6() { "IPv6" } else { "IPv4" }
        )));
    }
    Ok(())
}

fn placement(params: &Params, address: IpAddr) -> Result<Placement, Error> {
    match (params.str("Interface"), params.str("Network")) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "both Interface and Network are set: give exactly one of them",
        )),
        (None, None) => Err(Error::invalid(
            "neither Interface nor Network is set: give exactly one of them",
        )),
        (Some(name), None) => {
            check_interface_name(&name)?;
            Ok(Placement::Interface(name))
        }
        (None, Some(text)) => {
            let network =
                Cidr::parse(&text).map_err(|e| Error::invalid(format!("Network={text:?}: {e}")))?;
            if !network.contains(address) {
                return Err(Error::invalid(format!(
                    "Address={address} is not in Network={network}"
                )));
            }
            Ok(Placement::Network(network))
        }
    }
}

/// Linux interface names: 1..=15 bytes, no '/', no whitespace, not "." or "..".
fn check_interface_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(Error::invalid(format!(
            "Interface={name:?}: not a Linux interface name (1 to 15 characters, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

/// PrefixLength, or the Network's prefix, or 24 (IPv4) / 64 (IPv6).
fn prefix(params: &Params, address: IpAddr, placement: &Placement) -> Result<u8, Error> {
    let fallback = match (placement, address) {
        (Placement::Network(network), _) => network.prefix,
        (_, IpAddr::V4(_)) => 24,
        (_, IpAddr::V6(_)) => 64,
    };
    let given = params.u64_or("PrefixLength", u64::from(fallback))?;
    let max = max_prefix(address);
    if given == 0 || given > u64::from(max) {
        return Err(Error::invalid(format!(
            "PrefixLength={given}: an {} prefix length is 1 to {max}",
            if address.is_ipv6() { "IPv6" } else { "IPv4" }
        )));
    }
    Ok(given as u8)
}

fn count(params: &Params, key: &str, default: u64) -> Result<u32, Error> {
    let value = params.u64_or(key, default)?;
    u32::try_from(value).map_err(|_| Error::invalid(format!("{key}={value}: too large")))
}

fn millis(params: &Params, key: &str, default: u64) -> Result<Duration, Error> {
    Ok(Duration::from_millis(params.u64_or(key, default)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, Error> {
        Config::parse(&Params::parse(json).unwrap())
    }

    fn refusal(json: &str) -> String {
        parse(json).unwrap_err().message().to_string()
    }

    #[test]
    fn defaults_follow_the_family_and_the_network() {
        let v4 = parse(r#"{"Address":"192.0.2.50","Interface":"eth1"}"#).unwrap();
        assert_eq!(
            (v4.prefix, v4.placement.clone()),
            (24, Placement::Interface("eth1".into()))
        );
        assert_eq!(v4.gratuitous_count, 5);
        assert_eq!(v4.gratuitous_interval, Duration::from_millis(200));
        let v6 = parse(r#"{"Address":"2001:db8::50","Interface":"eth1"}"#).unwrap();
        assert_eq!(v6.prefix, 64);
        let net = parse(r#"{"Address":"192.0.2.50","Network":"192.0.2.0/25"}"#).unwrap();
        assert_eq!(net.prefix, 25);
        let given =
            parse(r#"{"Address":"192.0.2.50","Network":"192.0.2.0/24","PrefixLength":"28"}"#)
                .unwrap();
        assert_eq!(given.prefix, 28);
    }

    #[test]
    fn every_refusal_names_its_parameter() {
        for (json, names) in [
            (
                r#"{"Address":"192.0.2.50","Interface":"eth1","PrefixLength":"33"}"#,
                "PrefixLength=33",
            ),
            (
                r#"{"Address":"2001:db8::1","Interface":"eth1","PrefixLength":"129"}"#,
                "PrefixLength=129",
            ),
            (
                r#"{"Address":"192.0.2.50","Interface":"eth1","PrefixLength":"0"}"#,
                "PrefixLength=0",
            ),
            (
                r#"{"Address":"192.0.2.50","Interface":"eth1","Network":"192.0.2.0/24"}"#,
                "both Interface and Network",
            ),
            (
                r#"{"Address":"192.0.2.50"}"#,
                "neither Interface nor Network",
            ),
            (
                r#"{"Address":"192.0.2.50","Network":"198.51.100.0/24"}"#,
                "not in Network=198.51.100.0/24",
            ),
            (
                r#"{"Address":"192.0.2.50","Network":"192.0.2.0"}"#,
                "Network=\"192.0.2.0\"",
            ),
            (
                r#"{"Address":"192.0.2.50","Network":"192.0.2.0/40"}"#,
                "Network=\"192.0.2.0/40\"",
            ),
            (
                r#"{"Address":"192.0.2.50","Interface":"a/b"}"#,
                "Interface=\"a/b\"",
            ),
            (
                r#"{"Address":"192.0.2.50","Interface":"0123456789abcdef"}"#,
                "Interface=",
            ),
            (
                r#"{"Address":"224.0.0.1","Interface":"eth1"}"#,
                "Address=224.0.0.1",
            ),
            (
                r#"{"Address":"0.0.0.0","Interface":"eth1"}"#,
                "Address=0.0.0.0",
            ),
            (
                r#"{"Address":"nope","Interface":"eth1"}"#,
                "Address=\"nope\"",
            ),
            (
                r#"{"Address":"192.0.2.50","Interface":"eth1","Ipv6":"true"}"#,
                "Ipv6=true",
            ),
        ] {
            let message = refusal(json);
            assert!(message.contains(names), "{json}: {message}");
        }
        assert_eq!(
            parse(r#"{"Address":"192.0.2.50","Interface":"eth1"}"#.replace('}', r#","Ipv6":"no"}"#).as_str())
                .unwrap()
                .address,
            "192.0.2.50".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn networks_contain_what_their_prefix_says() {
        let net = Cidr::parse("192.0.2.0/24").unwrap();
        assert!(net.contains("192.0.2.255".parse().unwrap()));
        assert!(!net.contains("192.0.3.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let any = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(any.contains("203.0.113.9".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8:1::/48").unwrap();
        assert!(v6.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:2::1".parse().unwrap()));
        assert_eq!(v6.to_string(), "2001:db8:1::/48");
    }
}
