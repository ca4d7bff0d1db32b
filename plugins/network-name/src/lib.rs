//! The `network-name` resource type: while online, a DNS name (Name in Zone) resolves to exactly
//! the addresses of its group's ip-address resources (Addresses), registered on DnsServer with an
//! RFC 2136 dynamic update signed with TSIG HMAC-SHA256 (TsigKeyFile), as WSFC's network name
//! registers its A/AAAA records. Online replaces the A and AAAA RRsets with the addresses in one
//! update, only when they are not already exactly right (so a second online, or a new host after
//! the old one died, changes nothing), and verifies by a query; offline deletes only those
//! addresses; IsAlive queries the server and compares; LooksAlive answers from the last verdict
//! (no network); a watcher thread reports lost records between polls. RequireDNS=1 makes a
//! registration or check failure a resource failure naming the server's rcode; RequireDNS=0 keeps
//! the resource Online with a warning and retries at the next IsAlive. A plugin cannot see other
//! resources: the group lists the same addresses here. Not a DNS server or a resolver.
#![forbid(unsafe_code)]

mod config;
mod exchange;
mod health;
mod records;
mod registrar;
mod tsig_key;
mod watcher;

pub use config::Config;
pub use tsig_key::TsigKey;

use health::Health;
use keelson_plugin::{export_plugin, Error, Host, Param, Params, Resource, TypeDefaults};
use registrar::{Registered, Registrar};
use watcher::Watcher;

/// Every parameter of the type: `keelson plugin describe network-name` prints this table.
pub const PARAMS: &[Param] = &[
    Param::string("Name")
        .required()
        .describe("the DNS name: a label (registered under Zone) or an FQDN inside Zone"),
    Param::string("Zone")
        .required()
        .describe("the zone the name is updated in, e.g. keelson.test"),
    Param::string("DnsServer")
        .required()
        .describe("the server taking the updates: ADDRESS or ADDRESS:PORT ([V6]:PORT), port 53 by default"),
    Param::path("TsigKeyFile").describe(
        "TSIG HMAC-SHA256 key: 'hmac-sha256:NAME:BASE64' or key \"NAME\" { algorithm hmac-sha256; secret \"BASE64\"; }; (unset: unsigned updates)",
    ),
    Param::string("Addresses")
        .required()
        .describe("comma-separated IPv4/IPv6 addresses the name resolves to: those of the group's ip-address resources"),
    Param::boolean("RequireDNS")
        .default("1")
        .describe("1: a failed registration or check fails the resource; 0: it stays online with a warning"),
    Param::integer("Ttl")
        .min(0)
        .max(2_147_483_647)
        .default("1200")
        .describe("TTL of the records, in seconds"),
    Param::integer("DnsTimeout")
        .min(100)
        .max(60_000)
        .default("2000")
        .describe("bound on one DNS exchange (UDP tries and TCP fallback), in ms"),
    Param::integer("WatchInterval")
        .min(0)
        .max(3_600_000)
        .default("10000")
        .describe("how often a watcher thread checks the records while online with RequireDNS=1, in ms (0: no watcher)"),
];

/// One network-name resource.
pub struct NetworkName {
    config: Config,
    registrar: Registrar,
    host: Host,
    health: Health,
    online: bool,
    watcher: Option<Watcher>,
}

impl NetworkName {
    fn new(config: Config, host: Host) -> Result<NetworkName, Error> {
        let signer = match &config.key_file {
            Some(path) => Some(TsigKey::load(path)?.signer()?),
            None => None,
        };
        Ok(NetworkName {
            registrar: Registrar::new(&config, signer),
            config,
            host,
            health: Health::default(),
            online: false,
            watcher: None,
        })
    }

    fn name(&self) -> String {
        self.registrar.fqdn().to_string()
    }

    /// Starts the watcher unless one is running (RequireDNS=1 and WatchInterval > 0 only).
    fn watch(&mut self) -> Result<(), Error> {
        let Some(every) = self.config.watch.filter(|_| self.config.require_dns) else {
            return Ok(());
        };
        if self.watcher.as_ref().is_some_and(Watcher::running) {
            return Ok(());
        }
        self.watcher = None; // joins a watcher that ended after its report
        let watcher = Watcher::start(
            self.registrar.clone(),
            every,
            self.health.clone(),
            self.host,
        )
        .map_err(|e| format!("cannot start the watcher thread: {e}"))?;
        self.watcher = Some(watcher);
        Ok(())
    }

    fn not_online(&self) -> Error {
        Error::not_running(format!("network name {} is offline", self.name()))
    }

    /// The RequireDNS=0 path: stays online, says why, and tries again later.
    fn tolerate(&self, why: &str) {
        self.health.set_failed(why);
        self.host.warn(&format!(
            "RequireDNS=0: network name {} stays online: {why}; registration is retried at the next IsAlive",
            self.name()
        ));
    }

    fn register(&mut self) -> Result<(), Error> {
        match self.registrar.register() {
            Ok(how) => {
                self.health.set_ok();
                let done = match how {
                    Registered::AlreadyRight => "already registered",
                    Registered::Updated => "registered",
                };
                self.host.info(&format!(
                    "network name {} {done}: {} on {}",
                    self.name(),
                    self.registrar.wanted(),
                    self.config.server
                ));
                Ok(())
            }
            Err(why) if self.config.require_dns => {
                self.health.set_failed(&why);
                Err(Error::new(format!("RequireDNS=1: {why}")))
            }
            Err(why) => {
                self.tolerate(&why);
                Ok(())
            }
        }
    }

    fn deregister(&mut self, must: bool) -> Result<(), Error> {
        match self.registrar.deregister() {
            Ok(()) => {
                self.host.info(&format!(
                    "network name {} deregistered: {}",
                    self.name(),
                    self.registrar.wanted()
                ));
                Ok(())
            }
            Err(why) if must => Err(Error::new(format!("RequireDNS=1: {why}"))),
            Err(why) => {
                self.host.warn(&format!(
                    "network name {}: records left on the server: {why}",
                    self.name()
                ));
                Ok(())
            }
        }
    }
}

impl Resource for NetworkName {
    const TYPE_NAME: &'static std::ffi::CStr = c"network-name";
    const PARAMS: Option<&'static [Param]> = Some(PARAMS);
    /// An online is a few DNS exchanges (a lookup, an update, a verifying lookup), each within
    /// DnsTimeout: 30 s is plenty; IsAlive queries a server, every 60 s as keelson's default.
    const DEFAULTS: TypeDefaults = TypeDefaults {
        looks_alive_poll_interval_ms: Some(5_000),
        is_alive_poll_interval_ms: Some(60_000),
        pending_timeout_ms: Some(30_000),
        deadlock_timeout_ms: Some(120_000),
    };

    fn validate(params: &Params) -> Result<(), Error> {
        let config = Config::parse(params)?;
        if let Some(path) = &config.key_file {
            TsigKey::load(path)?.signer()?;
        }
        Ok(())
    }

    fn open(params: &Params, host: Host) -> Result<Self, Error> {
        // Reads the parameters and the key file only: nothing is sent before online.
        NetworkName::new(Config::parse(params)?, host)
    }

    fn online(&mut self) -> Result<(), Error> {
        if let Err(e) = self.register() {
            // A restart's online of an instance that was online: it is not any more.
            self.watcher = None;
            self.online = false;
            return Err(e);
        }
        self.online = true;
        self.watch()
    }

    fn offline(&mut self) -> Result<(), Error> {
        self.watcher = None; // stopped first: deleting the records is no failure
        self.online = false;
        let must = self.config.require_dns;
        self.deregister(must)
    }

    fn looks_alive(&mut self) -> Result<(), Error> {
        if !self.online {
            return Err(self.not_online());
        }
        match self.health.failure() {
            Some(why) if self.config.require_dns => Err(Error::new(why)),
            _ => Ok(()),
        }
    }

    fn is_alive(&mut self) -> Result<(), Error> {
        if !self.online {
            return Err(self.not_online());
        }
        match self.registrar.check() {
            Ok(()) => {
                self.health.set_ok();
                Ok(())
            }
            Err(why) if self.config.require_dns => {
                self.health.set_failed(&why);
                Err(Error::new(format!("RequireDNS=1: {why}")))
            }
            Err(why) => {
                self.host.warn(&format!(
                    "RequireDNS=0: network name {}: {why}; registering it again",
                    self.name()
                ));
                self.register()
            }
        }
    }

    /// At once: the watcher is stopped and one delete is tried; a failure is logged, not returned.
    fn terminate(&mut self) -> Result<(), Error> {
        self.watcher = None;
        self.online = false;
        self.deregister(false)
    }

    fn close(mut self) {
        self.watcher = None;
    }
}

export_plugin!(name: c"network-name", types: [NetworkName]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_one_the_host_accepts() {
        keelson_plugin::schema::<NetworkName>()
            .check_declaration()
            .expect("PARAMS and DEFAULTS");
    }

    #[test]
    fn health_checks_fail_before_online_without_the_network() {
        let params = Params::parse(
            r#"{"Name":"web","Zone":"keelson.test","DnsServer":"192.0.2.53","Addresses":"192.0.2.10"}"#,
        )
        .unwrap()
        .checked(&keelson_plugin::schema::<NetworkName>())
        .unwrap();
        let mut name = NetworkName::open(&params, Host::detached()).unwrap();
        let e = name.looks_alive().unwrap_err();
        assert_eq!(e.kind(), keelson_plugin::ErrorKind::NotRunning);
        assert!(e.message().contains("web.keelson.test."), "{e}");
        assert_eq!(
            name.is_alive().unwrap_err().kind(),
            keelson_plugin::ErrorKind::NotRunning
        );
    }
}
