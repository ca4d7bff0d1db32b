//! The two fields of an IP packet the virtual adapter routes and checks by: its source and
//! destination address, read from an IPv4 or IPv6 header without trusting any length in it. Not a
//! packet parser beyond that (the kernel checks the rest when the packet is delivered).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

const IPV4_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;

/// A packet whose addresses cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IpHeaderError {
    #[error("the packet is empty")]
    Empty,
    #[error("IP version {0} is neither 4 nor 6")]
    Version(u8),
    #[error("an IPv{version} packet of {len} bytes is shorter than its header")]
    Short { version: u8, len: usize },
}

/// A packet's source and destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    pub source: IpAddr,
    pub destination: IpAddr,
}

/// Reads the source and destination of an IPv4 or IPv6 packet.
pub fn addresses(packet: &[u8]) -> Result<Addresses, IpHeaderError> {
    let first = *packet.first().ok_or(IpHeaderError::Empty)?;
    let (version, len) = (first >> 4, packet.len());
    match version {
        4 if len >= IPV4_HEADER => Ok(Addresses {
            source: IpAddr::V4(Ipv4Addr::from(array::<4>(&packet[12..16]))),
            destination: IpAddr::V4(Ipv4Addr::from(array::<4>(&packet[16..20]))),
        }),
        6 if len >= IPV6_HEADER => Ok(Addresses {
            source: IpAddr::V6(Ipv6Addr::from(array::<16>(&packet[8..24]))),
            destination: IpAddr::V6(Ipv6Addr::from(array::<16>(&packet[24..40]))),
        }),
        4 | 6 => Err(IpHeaderError::Short { version, len }),
        other => Err(IpHeaderError::Version(other)),
    }
}

fn array<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v4_and_v6_and_names_what_is_wrong() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[203, 0, 113, 2]);
        v4[16..20].copy_from_slice(&[203, 0, 113, 1]);
        let a = addresses(&v4).unwrap();
        assert_eq!(a.source.to_string(), "203.0.113.2");
        assert_eq!(a.destination.to_string(), "203.0.113.1");

        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[8..24].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        v6[24..40].copy_from_slice(&"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        let a = addresses(&v6).unwrap();
        assert_eq!(
            (a.source.to_string(), a.destination.to_string()),
            ("fd00::2".into(), "fd00::1".into())
        );

        assert_eq!(addresses(&[]), Err(IpHeaderError::Empty));
        assert_eq!(
            addresses(&v4[..19]),
            Err(IpHeaderError::Short {
                version: 4,
                len: 19
            })
        );
        assert_eq!(
            addresses(&v6[..39]),
            Err(IpHeaderError::Short {
                version: 6,
                len: 39
            })
        );
        assert_eq!(addresses(&[0x50; 40]), Err(IpHeaderError::Version(5)));
    }
}
