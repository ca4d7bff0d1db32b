//! The Ethernet frames the ip-address type sends and reads, as bytes: ARP probes (sender 0.0.0.0,
//! RFC 5227), gratuitous ARP in both forms resource-agents' send_arp sends (a request and a reply,
//! sender and target both the address), unsolicited IPv6 neighbour advertisements (ICMPv6 type 136
//! to ff02::1 with the override flag and our link-layer address), and a parser for received ARP.
//! Pure functions; not the socket (keelson_sys::packet) and not when to send.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A MAC address.
pub type Mac = [u8; 6];

const BROADCAST: Mac = [0xff; 6];
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
/// Ethernet's shortest frame without its checksum: shorter frames are padded with zeroes.
const MIN_FRAME: usize = 60;

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ethernet(destination: &Mac, source: &Mac, ethertype: u16) -> Vec<u8> {
    let mut frame = Vec::with_capacity(MIN_FRAME);
    frame.extend_from_slice(destination);
    frame.extend_from_slice(source);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame
}

fn arp(op: u16, sha: &Mac, spa: Ipv4Addr, tha: &Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut frame = ethernet(&BROADCAST, sha, ETHERTYPE_ARP);
    frame.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    frame.extend_from_slice(&[6, 4]);
    frame.extend_from_slice(&op.to_be_bytes());
    frame.extend_from_slice(sha);
    frame.extend_from_slice(&spa.octets());
    frame.extend_from_slice(tha);
    frame.extend_from_slice(&tpa.octets());
    frame.resize(MIN_FRAME, 0);
    frame
}

/// An ARP probe for `address` from `mac`: "who has it?" with sender address 0.0.0.0, so no
/// listener's cache learns anything from it; whoever holds the address answers.
pub fn arp_probe(mac: &Mac, address: Ipv4Addr) -> Vec<u8> {
    arp(ARP_REQUEST, mac, Ipv4Addr::UNSPECIFIED, &[0; 6], address)
}

/// Gratuitous ARP for `address` at `mac`, as send_arp sends it: a broadcast request and a
/// broadcast reply, both with sender and target address `address`.
pub fn gratuitous_arp(mac: &Mac, address: Ipv4Addr) -> [Vec<u8>; 2] {
    [
        arp(ARP_REQUEST, mac, address, &[0; 6], address),
        arp(ARP_REPLY, mac, address, &BROADCAST, address),
    ]
}

/// What a received ARP packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

/// Parses an Ethernet frame carrying Ethernet/IPv4 ARP; None for anything else.
pub fn parse_arp(frame: &[u8]) -> Option<ArpPacket> {
    if frame.len() < 42 || frame[12..14] != ETHERTYPE_ARP.to_be_bytes() {
        return None;
    }
    let arp = &frame[14..42];
    if arp[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return None;
    }
    let op = u16::from_be_bytes([arp[6], arp[7]]);
    let sender_mac: Mac = arp[8..14].try_into().ok()?;
    let sender_ip = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
    let target_ip = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
    Some(ArpPacket {
        op,
        sender_mac,
        sender_ip,
        target_ip,
    })
}

/// Whether `packet` shows another host (not `ours`) using `address`: an answer to our probe, or
/// its own announcement or request sent from the address.
pub fn shows_conflict(packet: &ArpPacket, address: Ipv4Addr, ours: &Mac) -> bool {
    matches!(packet.op, ARP_REQUEST | ARP_REPLY)
        && packet.sender_ip == address
        && packet.sender_mac != *ours
}

/// An unsolicited neighbour advertisement (RFC 4861 7.2.6) for `address` at `mac`: from
/// `address` to all nodes (ff02::1, 33:33:00:00:00:01), hop limit 255, override flag set, with
/// the target link-layer address option.
pub fn unsolicited_na(mac: &Mac, address: Ipv6Addr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[136, 0, 0, 0]); // type, code, checksum (filled in below)
    icmp.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // R=0 S=0 O=1
    icmp.extend_from_slice(&address.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    icmp.extend_from_slice(mac);
    let checksum = icmpv6_checksum(&address, &all_nodes, &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = ethernet(&[0x33, 0x33, 0, 0, 0, 1], mac, ETHERTYPE_IPV6);
    frame.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, no class or flow label
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[58, 255]); // next header ICMPv6, hop limit 255
    frame.extend_from_slice(&address.octets());
    frame.extend_from_slice(&all_nodes.octets());
    frame.extend_from_slice(&icmp);
    frame.resize(frame.len().max(MIN_FRAME), 0);
    frame
}

/// The ICMPv6 checksum of `message` (its checksum field zero) over the IPv6 pseudo-header.
fn icmpv6_checksum(source: &Ipv6Addr, destination: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40 + message.len());
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    pseudo.extend_from_slice(&(message.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(message);
    !ones_complement_sum(&pseudo)
}

fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0, 0, 0, 0, 0x0a];

    #[test]
    fn a_probe_asks_for_the_address_from_nowhere() {
        let addr = Ipv4Addr::new(192, 0, 2, 50);
        let frame = arp_probe(&MAC, addr);
        assert_eq!(frame.len(), 60);
        assert_eq!(&frame[0..6], &BROADCAST);
        assert_eq!(&frame[6..12], &MAC);
        let packet = parse_arp(&frame).unwrap();
        assert_eq!(packet.op, ARP_REQUEST);
        assert_eq!(packet.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(packet.target_ip, addr);
        // Our own probe is no conflict, nor is any frame from our MAC.
        assert!(!shows_conflict(&packet, addr, &MAC));
    }

    #[test]
    fn gratuitous_arp_is_a_request_and_a_reply_from_the_address() {
        let addr = Ipv4Addr::new(192, 0, 2, 50);
        let [request, reply] = gratuitous_arp(&MAC, addr);
        for (frame, op) in [(&request, ARP_REQUEST), (&reply, ARP_REPLY)] {
            let packet = parse_arp(frame).unwrap();
            assert_eq!(
                (packet.op, packet.sender_ip, packet.target_ip),
                (op, addr, addr)
            );
            assert_eq!(packet.sender_mac, MAC);
            assert!(!shows_conflict(&packet, addr, &MAC));
            assert!(shows_conflict(&packet, addr, &[0x02, 0, 0, 0, 0, 0x0b]));
        }
        assert!(parse_arp(&request[..41]).is_none());
        let mut ipv6 = request.clone();
        ipv6[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        assert!(parse_arp(&ipv6).is_none());
    }

    #[test]
    fn an_unsolicited_na_checks_out() {
        let addr: Ipv6Addr = "2001:db8::50".parse().unwrap();
        let frame = unsolicited_na(&MAC, addr);
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(frame[12..14], ETHERTYPE_IPV6.to_be_bytes());
        let ip = &frame[14..54];
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 32);
        assert_eq!((ip[6], ip[7]), (58, 255));
        let icmp = &frame[54..86];
        assert_eq!(icmp[0], 136);
        assert_eq!(icmp[4] & 0xe0, 0x20, "override only");
        assert_eq!(&icmp[8..24], &addr.octets());
        assert_eq!(&icmp[26..32], &MAC);
        // A receiver's check: the sum over pseudo-header and message (checksum included) is all ones.
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&addr.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(icmp);
        assert_eq!(ones_complement_sum(&pseudo), 0xffff);
    }

    #[test]
    fn macs_print_as_ip_neigh_does() {
        assert_eq!(
            format_mac(&[0x02, 0xab, 0, 1, 2, 0xff]),
            "02:ab:00:01:02:ff"
        );
    }
}
