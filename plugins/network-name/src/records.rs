//! The DNS messages a network-name sends, built with hickory-proto: the RFC 2136 update that
//! replaces the name's A and AAAA RRsets with exactly its addresses (delete RRset + add, in one
//! message, so the server applies both at once and there is no moment without records), the
//! update that deletes only those addresses, and the query for one RRset; and what a query's
//! answer says about the name. Not the sending (exchange.rs).

use hickory_proto::op::{Message, OpCode, Query, UpdateMessage};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Both record types a name's addresses live in.
pub const ADDRESS_TYPES: [RecordType; 2] = [RecordType::A, RecordType::AAAA];

/// The A/AAAA records found for a name: each address with its TTL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub records: BTreeSet<(IpAddr, u32)>,
}

impl Found {
    pub fn addresses(&self) -> BTreeSet<IpAddr> {
        self.records.iter().map(|(ip, _)| *ip).collect()
    }

    /// Exactly `addresses`, each with `ttl`: nothing to update.
    pub fn is_exactly(&self, addresses: &BTreeSet<IpAddr>, ttl: u32) -> bool {
        self.records == addresses.iter().map(|ip| (*ip, ttl)).collect()
    }

    /// Adds the address records of `answer` owned by `name`.
    pub fn add_answer(&mut self, name: &Name, answer: &Message) {
        for record in &answer.answers {
            if record.name != *name {
                continue;
            }
            if let Some(ip) = address_of(&record.data) {
                self.records.insert((ip, record.ttl));
            }
        }
    }

    pub fn describe(&self) -> String {
        if self.records.is_empty() {
            return "no A/AAAA records".into();
        }
        join(&self.addresses())
    }
}

/// Comma-separated addresses, for messages.
pub fn join(addresses: &BTreeSet<IpAddr>) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn address_of(data: &RData) -> Option<IpAddr> {
    match data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
        _ => None,
    }
}

fn address_record(name: &Name, ip: IpAddr, ttl: u32) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name.clone(), ttl, data)
}

fn record_type_of(ip: &IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

fn update_for(zone: &Name) -> Message {
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    let mut section = Query::new();
    section
        .set_name(zone.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    message.add_zone(section);
    message
}

/// RFC 2136 2.5.2 "Delete An RRset" for `rtype`, then 2.5.1 "Add To An RRset" for each address
/// of that type: the name ends up with exactly `addresses`, in one atomic update.
pub fn replace(zone: &Name, name: &Name, addresses: &BTreeSet<IpAddr>, ttl: u32) -> Message {
    let mut message = update_for(zone);
    for rtype in ADDRESS_TYPES {
        let mut delete = Record::update0(name.clone(), 0, rtype).into_record_of_rdata();
        delete.dns_class = DNSClass::ANY;
        message.add_update(delete);
        for ip in addresses.iter().filter(|ip| record_type_of(ip) == rtype) {
            message.add_update(address_record(name, *ip, ttl));
        }
    }
    message
}

/// RFC 2136 2.5.4 "Delete An RR From An RRset" for each of `addresses`: records of other
/// addresses (someone else's) are left alone.
pub fn delete(zone: &Name, name: &Name, addresses: &BTreeSet<IpAddr>) -> Message {
    let mut message = update_for(zone);
    for ip in addresses {
        let mut record = address_record(name, *ip, 0);
        record.dns_class = DNSClass::NONE;
        message.add_update(record);
    }
    message
}

/// A non-recursive query for `name`'s `rtype` RRset, asked of the authoritative server.
pub fn query(name: &Name, rtype: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), rtype));
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn set(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn replace_deletes_both_rrsets_then_adds_each_address() {
        let m = replace(
            &name("keelson.test."),
            &name("web.keelson.test."),
            &set(&["192.0.2.10", "2001:db8::10"]),
            60,
        );
        assert_eq!(m.metadata.op_code, OpCode::Update);
        assert_eq!(m.queries[0].query_type(), RecordType::SOA);
        let u = m.updates();
        assert_eq!(u.len(), 4);
        assert_eq!(
            (u[0].dns_class, u[0].record_type()),
            (DNSClass::ANY, RecordType::A)
        );
        assert_eq!((u[1].dns_class, u[1].ttl), (DNSClass::IN, 60));
        assert_eq!(address_of(&u[1].data), Some("192.0.2.10".parse().unwrap()));
        assert_eq!(
            (u[2].dns_class, u[2].record_type()),
            (DNSClass::ANY, RecordType::AAAA)
        );
        assert_eq!(
            address_of(&u[3].data),
            Some("2001:db8::10".parse().unwrap())
        );
        // Encodes (and so a server can read it).
        let bytes = m.to_vec().unwrap();
        assert_eq!(Message::from_vec(&bytes).unwrap().updates().len(), 4);
    }

    #[test]
    fn delete_names_only_our_addresses() {
        let m = delete(
            &name("keelson.test."),
            &name("web.keelson.test."),
            &set(&["192.0.2.10"]),
        );
        let u = m.updates();
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].dns_class, u[0].ttl), (DNSClass::NONE, 0));
        assert_eq!(address_of(&u[0].data), Some("192.0.2.10".parse().unwrap()));
    }

    #[test]
    fn found_compares_addresses_and_ttls() {
        let web = name("web.keelson.test.");
        let mut answer = Message::query();
        answer.add_answer(address_record(&web, "192.0.2.10".parse().unwrap(), 60));
        answer.add_answer(address_record(
            &name("other.keelson.test."),
            "192.0.2.99".parse().unwrap(),
            60,
        ));
        let mut found = Found::default();
        found.add_answer(&web, &answer);
        assert!(found.is_exactly(&set(&["192.0.2.10"]), 60));
        assert!(!found.is_exactly(&set(&["192.0.2.10"]), 61));
        assert!(!found.is_exactly(&set(&["192.0.2.10", "192.0.2.11"]), 60));
        assert_eq!(found.describe(), "192.0.2.10");
        assert_eq!(Found::default().describe(), "no A/AAAA records");
    }
}
