//! What a network-name does to the DNS server: look its A/AAAA records up, register exactly its
//! addresses (only when they are not already there, so a second online changes nothing) and
//! verify the result by a query, and deregister only its own addresses. Shared by the resource's
//! calls and its watcher thread. Not the policy on failure (RequireDNS, lib.rs) nor the transport
//! (exchange.rs).

use crate::config::Config;
use crate::exchange::{DnsFailure, Exchanger};
use crate::records::{self, Found, ADDRESS_TYPES};
use hickory_proto::rr::{Name, TSigner};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// How a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The records were already exactly right: nothing was sent.
    AlreadyRight,
    /// The update was sent and the server now answers with exactly the addresses.
    Updated,
}

/// One name's registration on one server.
#[derive(Debug, Clone)]
pub struct Registrar {
    exchanger: Exchanger,
    zone: Name,
    fqdn: Name,
    addresses: BTreeSet<IpAddr>,
    ttl: u32,
}

impl Registrar {
    pub fn new(config: &Config, signer: Option<TSigner>) -> Registrar {
        Registrar {
            exchanger: Exchanger::new(config.server, config.timeout, signer),
            zone: config.zone.clone(),
            fqdn: config.fqdn.clone(),
            addresses: config.addresses.clone(),
            ttl: config.ttl,
        }
    }

    pub fn fqdn(&self) -> &Name {
        &self.fqdn
    }

    pub fn wanted(&self) -> String {
        records::join(&self.addresses)
    }

    /// The name's A and AAAA records as the server answers them now (two queries).
    pub fn lookup(&self) -> Result<Found, DnsFailure> {
        let mut found = Found::default();
        for rtype in ADDRESS_TYPES {
            match self.exchanger.exchange(records::query(&self.fqdn, rtype)) {
                Ok(answer) => found.add_answer(&self.fqdn, &answer),
                // No such name yet: no records, not a failure.
                Err(e) if e.rcode() == Some(hickory_proto::op::ResponseCode::NXDomain) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Makes the name resolve to exactly its addresses with its TTL, and checks that it does.
    pub fn register(&self) -> Result<Registered, String> {
        let before = self
            .lookup()
            .map_err(|e| format!("lookup of {}: {e}", self.fqdn))?;
        if before.is_exactly(&self.addresses, self.ttl) {
            return Ok(Registered::AlreadyRight);
        }
        let update = records::replace(&self.zone, &self.fqdn, &self.addresses, self.ttl);
        self.exchanger
            .exchange(update)
            .map_err(|e| format!("update of {} in zone {}: {e}", self.fqdn, self.zone))?;
        let after = self
            .lookup()
            .map_err(|e| format!("lookup of {} after its update: {e}", self.fqdn))?;
        if !after.is_exactly(&self.addresses, self.ttl) {
            return Err(format!(
                "after the update {} resolves to {} (TTLs {:?}), not {} (TTL {})",
                self.fqdn,
                after.describe(),
                after
                    .records
                    .iter()
                    .map(|(_, ttl)| *ttl)
                    .collect::<BTreeSet<_>>(),
                self.wanted(),
                self.ttl
            ));
        }
        Ok(Registered::Updated)
    }

    /// Ok when the server answers with exactly the addresses (whatever their TTL).
    pub fn check(&self) -> Result<(), String> {
        let found = self
            .lookup()
            .map_err(|e| format!("lookup of {}: {e}", self.fqdn))?;
        if found.addresses() == self.addresses {
            Ok(())
        } else {
            Err(format!(
                "{} resolves to {}, not {}",
                self.fqdn,
                found.describe(),
                self.wanted()
            ))
        }
    }

    /// Deletes this resource's address records (only those addresses).
    pub fn deregister(&self) -> Result<(), String> {
        let update = records::delete(&self.zone, &self.fqdn, &self.addresses);
        self.exchanger
            .exchange(update)
            .map(|_| ())
            .map_err(|e| format!("delete of {} {}: {e}", self.fqdn, self.wanted()))
    }
}
