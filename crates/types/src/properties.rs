//! WSFC common properties of resources and groups: their typed values, defaults, and parsing from
//! `Name=Value` strings with one clear error naming property and value. Not their storage (crates/store)
//! and not the policies that use them (crates/engine).

use crate::defaults::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// `FailoverPeriod` default: 6 hours, in milliseconds.
pub const DEFAULT_FAILOVER_PERIOD_MS: u64 = 6 * 3_600_000;
/// `FailoverThreshold` default, WSFC's own encoding of "number of nodes minus one".
pub const FAILOVER_THRESHOLD_NODES_MINUS_ONE: u32 = u32::MAX;
/// How `FailoverThreshold`'s default reads (and may be written): the number of nodes minus one.
pub const NODES_MINUS_ONE: &str = "nodes-1";

/// What the node service does when a resource fails (`RestartAction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RestartAction {
    /// Leave the resource Failed.
    NoRestart,
    /// Restart up to the threshold; past it the resource stays Failed and the group stays put.
    Restart,
    /// Restart up to the threshold; past it the group fails over (the WSFC default).
    #[default]
    RestartAndFailover,
}

impl RestartAction {
    /// The PascalCase name used in properties and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartAction::NoRestart => "NoRestart",
            RestartAction::Restart => "Restart",
            RestartAction::RestartAndFailover => "RestartAndFailover",
        }
    }
}

impl fmt::Display for RestartAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RestartAction {
    type Err = String;

    /// Accepts the names case-insensitively and WSFC's numbers 0, 1, 2.
    fn from_str(s: &str) -> Result<Self, String> {
        let all = [
            RestartAction::NoRestart,
            RestartAction::Restart,
            RestartAction::RestartAndFailover,
        ];
        all.iter()
            .enumerate()
            .find(|(i, a)| a.as_str().eq_ignore_ascii_case(s) || s == i.to_string())
            .map(|(_, a)| *a)
            .ok_or_else(|| "expected NoRestart, Restart or RestartAndFailover".to_string())
    }
}

/// Whether a group moves back to its preferred owner (`AutoFailbackType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AutoFailbackType {
    #[default]
    Prevent,
    Allow,
}

impl AutoFailbackType {
    /// The PascalCase name used in properties and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoFailbackType::Prevent => "Prevent",
            AutoFailbackType::Allow => "Allow",
        }
    }
}

impl fmt::Display for AutoFailbackType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AutoFailbackType {
    type Err = String;

    /// Accepts the names case-insensitively and WSFC's numbers 0 (Prevent), 1 (Allow).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "prevent" | "0" => Ok(AutoFailbackType::Prevent),
            "allow" | "1" => Ok(AutoFailbackType::Allow),
            _ => Err("expected Prevent or Allow".to_string()),
        }
    }
}

/// A property assignment that was refused. Displays as `Name=Value: reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyError {
    /// The property name as given.
    pub property: String,
    /// The value as given.
    pub value: String,
    /// Why it was refused (`expected a number of milliseconds`, `unknown resource property`, …).
    pub reason: String,
}

impl PropertyError {
    fn new(property: &str, value: &str, reason: impl Into<String>) -> Self {
        PropertyError {
            property: property.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}: {}", self.property, self.value, self.reason)
    }
}

impl std::error::Error for PropertyError {}

/// Splits `Name=Value` (surrounding whitespace trimmed). A missing `=` or name is an error.
pub fn parse_assignment(s: &str) -> Result<(String, String), PropertyError> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(PropertyError::new(s.trim(), "", "expected Name=Value")),
    }
}

/// Longest time a property may hold, in milliseconds: 4294967295 (about 49.7 days), WSFC's own
/// limit (its times are DWORDs). Larger values would overflow the deadlines computed from them.
pub const MAX_PROPERTY_MS: u64 = u32::MAX as u64;

const MS: &str = "expected a number of milliseconds";
const POSITIVE_MS: &str = "expected a positive number of milliseconds";
const TOO_LONG_MS: &str = "expected at most 4294967295 milliseconds (about 49.7 days)";
const COUNT: &str = "expected a non-negative integer";

fn parse_ms(name: &str, value: &str) -> Result<u64, PropertyError> {
    match value.parse::<u64>() {
        Ok(v) if v > MAX_PROPERTY_MS => Err(PropertyError::new(name, value, TOO_LONG_MS)),
        Ok(v) => Ok(v),
        // A number too large for u64 is still a number: say it is too long.
        Err(_) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
            Err(PropertyError::new(name, value, TOO_LONG_MS))
        }
        Err(_) => Err(PropertyError::new(name, value, MS)),
    }
}

fn parse_positive_ms(name: &str, value: &str) -> Result<u64, PropertyError> {
    match parse_ms(name, value)? {
        0 => Err(PropertyError::new(name, value, POSITIVE_MS)),
        v => Ok(v),
    }
}

fn parse_count(name: &str, value: &str) -> Result<u32, PropertyError> {
    value
        .parse::<u32>()
        .map_err(|_| PropertyError::new(name, value, COUNT))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, PropertyError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(PropertyError::new(
            name,
            value,
            "expected true or false (or 1/0)",
        )),
    }
}

fn parse_enum<T: FromStr<Err = String>>(name: &str, value: &str) -> Result<T, PropertyError> {
    value
        .parse::<T>()
        .map_err(|reason| PropertyError::new(name, value, reason))
}

/// Finds `name` among `known` case-insensitively and returns the canonical spelling.
fn canonical(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

/// The common properties of one resource, with the WSFC defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourceProperties {
    pub restart_action: RestartAction,
    /// Restarts allowed within `restart_period_ms` before the threshold is passed.
    pub restart_threshold: u32,
    pub restart_period_ms: u64,
    pub restart_delay_ms: u64,
    pub retry_period_on_failure_ms: u64,
    pub pending_timeout_ms: u64,
    pub deadlock_timeout_ms: u64,
    pub looks_alive_poll_interval_ms: u64,
    pub is_alive_poll_interval_ms: u64,
    /// Run in a host process of its own (persistent; set by the node service after a crash).
    pub separate_monitor: bool,
}

impl Default for ResourceProperties {
    fn default() -> Self {
        ResourceProperties {
            restart_action: RestartAction::default(),
            restart_threshold: DEFAULT_RESTART_THRESHOLD,
            restart_period_ms: DEFAULT_RESTART_PERIOD_MS,
            restart_delay_ms: DEFAULT_RESTART_DELAY_MS,
            retry_period_on_failure_ms: DEFAULT_RETRY_PERIOD_ON_FAILURE_MS,
            pending_timeout_ms: DEFAULT_PENDING_TIMEOUT_MS,
            deadlock_timeout_ms: DEFAULT_DEADLOCK_TIMEOUT_MS,
            looks_alive_poll_interval_ms: DEFAULT_LOOKS_ALIVE_POLL_INTERVAL_MS,
            is_alive_poll_interval_ms: DEFAULT_IS_ALIVE_POLL_INTERVAL_MS,
            separate_monitor: false,
        }
    }
}

impl ResourceProperties {
    /// Every settable resource property, in display order.
    pub const NAMES: [&'static str; 10] = [
        "RestartAction",
        "RestartThreshold",
        "RestartPeriod",
        "RestartDelay",
        "RetryPeriodOnFailure",
        "PendingTimeout",
        "DeadlockTimeout",
        "LooksAlivePollInterval",
        "IsAlivePollInterval",
        "SeparateMonitor",
    ];

    /// Read-only properties the node service fills in; setting them is refused.
    pub const READ_ONLY: [&'static str; 1] = ["MonitorProcessId"];

    /// Applies one `Name=Value` string. On error nothing changes.
    pub fn apply(&mut self, assignment: &str) -> Result<(), PropertyError> {
        let (name, value) = parse_assignment(assignment)?;
        self.set(&name, &value)
    }

    /// Sets one property by (case-insensitive) name. On error nothing changes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), PropertyError> {
        if canonical(name, &Self::READ_ONLY).is_some() {
            return Err(PropertyError::new(
                name,
                value,
                "read-only (filled in by the node service)",
            ));
        }
        let Some(canon) = canonical(name, &Self::NAMES) else {
            let known = Self::NAMES.join(", ");
            return Err(PropertyError::new(
                name,
                value,
                format!("unknown resource property (known: {known})"),
            ));
        };
        match canon {
            "RestartAction" => self.restart_action = parse_enum(name, value)?,
            "RestartThreshold" => self.restart_threshold = parse_count(name, value)?,
            "RestartPeriod" => self.restart_period_ms = parse_positive_ms(name, value)?,
            "RestartDelay" => self.restart_delay_ms = parse_ms(name, value)?,
            "RetryPeriodOnFailure" => {
                self.retry_period_on_failure_ms = parse_positive_ms(name, value)?
            }
            "PendingTimeout" => self.pending_timeout_ms = parse_positive_ms(name, value)?,
            "DeadlockTimeout" => self.deadlock_timeout_ms = parse_positive_ms(name, value)?,
            "LooksAlivePollInterval" => {
                self.looks_alive_poll_interval_ms = parse_positive_ms(name, value)?
            }
            "IsAlivePollInterval" => {
                self.is_alive_poll_interval_ms = parse_positive_ms(name, value)?
            }
            _ => self.separate_monitor = parse_bool(name, value)?,
        }
        Ok(())
    }

    /// The value of one property as text, by (case-insensitive) name.
    pub fn get(&self, name: &str) -> Option<String> {
        let v = match canonical(name, &Self::NAMES)? {
            "RestartAction" => self.restart_action.to_string(),
            "RestartThreshold" => self.restart_threshold.to_string(),
            "RestartPeriod" => self.restart_period_ms.to_string(),
            "RestartDelay" => self.restart_delay_ms.to_string(),
            "RetryPeriodOnFailure" => self.retry_period_on_failure_ms.to_string(),
            "PendingTimeout" => self.pending_timeout_ms.to_string(),
            "DeadlockTimeout" => self.deadlock_timeout_ms.to_string(),
            "LooksAlivePollInterval" => self.looks_alive_poll_interval_ms.to_string(),
            "IsAlivePollInterval" => self.is_alive_poll_interval_ms.to_string(),
            _ => self.separate_monitor.to_string(),
        };
        Some(v)
    }
}

/// The common properties of one group, with the WSFC defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GroupProperties {
    /// Failovers allowed within `failover_period_ms`; `FAILOVER_THRESHOLD_NODES_MINUS_ONE` by default.
    pub failover_threshold: u32,
    pub failover_period_ms: u64,
    pub auto_failback_type: AutoFailbackType,
    /// Hour (0-23) the failback window opens, if any.
    pub failback_window_start: Option<u32>,
    /// Hour (0-23) the failback window closes, if any.
    pub failback_window_end: Option<u32>,
    /// Node names, most preferred first.
    pub preferred_owners: Vec<String>,
}

impl Default for GroupProperties {
    fn default() -> Self {
        GroupProperties {
            failover_threshold: FAILOVER_THRESHOLD_NODES_MINUS_ONE,
            failover_period_ms: DEFAULT_FAILOVER_PERIOD_MS,
            auto_failback_type: AutoFailbackType::default(),
            failback_window_start: None,
            failback_window_end: None,
            preferred_owners: Vec::new(),
        }
    }
}

fn parse_hour(name: &str, value: &str) -> Result<Option<u32>, PropertyError> {
    if value.is_empty() || value == "none" || value == "4294967295" {
        return Ok(None);
    }
    match value.parse::<u32>() {
        Ok(h) if h < 24 => Ok(Some(h)),
        _ => Err(PropertyError::new(
            name,
            value,
            "expected an hour 0-23 (or none)",
        )),
    }
}

/// A count, or `nodes-1` (case-insensitive) for the default; 4294967295 still means nodes-1.
fn parse_failover_threshold(name: &str, value: &str) -> Result<u32, PropertyError> {
    if value.eq_ignore_ascii_case(NODES_MINUS_ONE) {
        return Ok(FAILOVER_THRESHOLD_NODES_MINUS_ONE);
    }
    value
        .parse::<u32>()
        .map_err(|_| PropertyError::new(name, value, "expected a non-negative integer or nodes-1"))
}

fn parse_owners(name: &str, value: &str) -> Result<Vec<String>, PropertyError> {
    let owners: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    match owners.iter().find(|o| !seen.insert(o.as_str())) {
        Some(dup) => Err(PropertyError::new(
            name,
            value,
            format!("node '{dup}' listed twice"),
        )),
        None => Ok(owners),
    }
}

impl GroupProperties {
    /// Every settable group property, in display order.
    pub const NAMES: [&'static str; 6] = [
        "FailoverThreshold",
        "FailoverPeriod",
        "AutoFailbackType",
        "FailbackWindowStart",
        "FailbackWindowEnd",
        "PreferredOwners",
    ];

    /// Applies one `Name=Value` string. On error nothing changes.
    pub fn apply(&mut self, assignment: &str) -> Result<(), PropertyError> {
        let (name, value) = parse_assignment(assignment)?;
        self.set(&name, &value)
    }

    /// Sets one property by (case-insensitive) name. On error nothing changes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), PropertyError> {
        let Some(canon) = canonical(name, &Self::NAMES) else {
            let known = Self::NAMES.join(", ");
            return Err(PropertyError::new(
                name,
                value,
                format!("unknown group property (known: {known})"),
            ));
        };
        match canon {
            "FailoverThreshold" => self.failover_threshold = parse_failover_threshold(name, value)?,
            "FailoverPeriod" => self.failover_period_ms = parse_positive_ms(name, value)?,
            "AutoFailbackType" => self.auto_failback_type = parse_enum(name, value)?,
            "FailbackWindowStart" => self.failback_window_start = parse_hour(name, value)?,
            "FailbackWindowEnd" => self.failback_window_end = parse_hour(name, value)?,
            _ => self.preferred_owners = parse_owners(name, value)?,
        }
        Ok(())
    }

    /// The value of one property as text, by (case-insensitive) name.
    pub fn get(&self, name: &str) -> Option<String> {
        let hour = |h: Option<u32>| {
            h.map(|h| h.to_string())
                .unwrap_or_else(|| "none".to_string())
        };
        let v = match canonical(name, &Self::NAMES)? {
            "FailoverThreshold" => match self.failover_threshold {
                FAILOVER_THRESHOLD_NODES_MINUS_ONE => NODES_MINUS_ONE.to_string(),
                n => n.to_string(),
            },
            "FailoverPeriod" => self.failover_period_ms.to_string(),
            "AutoFailbackType" => self.auto_failback_type.to_string(),
            "FailbackWindowStart" => hour(self.failback_window_start),
            "FailbackWindowEnd" => hour(self.failback_window_end),
            _ => self.preferred_owners.join(","),
        };
        Some(v)
    }

    /// `FailoverThreshold` resolved for a cluster of `nodes` nodes.
    pub fn effective_failover_threshold(&self, nodes: u32) -> u32 {
        if self.failover_threshold == FAILOVER_THRESHOLD_NODES_MINUS_ONE {
            nodes.saturating_sub(1)
        } else {
            self.failover_threshold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_wsfc_ones() {
        let p = ResourceProperties::default();
        assert_eq!(p.restart_action, RestartAction::RestartAndFailover);
        assert_eq!(p.restart_threshold, 1);
        assert_eq!(p.restart_period_ms, 900_000);
        assert_eq!(p.restart_delay_ms, 500);
        assert_eq!(p.retry_period_on_failure_ms, 3_600_000);
        assert_eq!(p.pending_timeout_ms, 180_000);
        assert_eq!(p.deadlock_timeout_ms, 300_000);
        assert_eq!(p.looks_alive_poll_interval_ms, 5_000);
        assert_eq!(p.is_alive_poll_interval_ms, 60_000);
        assert!(!p.separate_monitor);
        let g = GroupProperties::default();
        assert_eq!(g.failover_period_ms, 21_600_000);
        assert_eq!(g.auto_failback_type, AutoFailbackType::Prevent);
        assert_eq!(g.effective_failover_threshold(3), 2);
        assert_eq!(g.effective_failover_threshold(1), 0);
        assert!(g.preferred_owners.is_empty());
    }

    #[test]
    fn errors_name_property_and_value() {
        let mut p = ResourceProperties::default();
        let e = p.apply("DeadlockTimeout=abc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "DeadlockTimeout=abc: expected a number of milliseconds"
        );
        let e = p.apply("RestartThreshold=-1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "RestartThreshold=-1: expected a non-negative integer"
        );
        let e = p.apply("Bogus=1").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Bogus=1: unknown resource property"),
            "{e}"
        );
        let e = p.apply("MonitorProcessId=5").unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        let e = p.apply("RestartAction=Sometimes").unwrap_err();
        assert_eq!(
            e.to_string(),
            "RestartAction=Sometimes: expected NoRestart, Restart or RestartAndFailover"
        );
        let e = p.apply("PendingTimeout=0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "PendingTimeout=0: expected a positive number of milliseconds"
        );
        let e = p.apply("SeparateMonitor=maybe").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("SeparateMonitor=maybe: expected true or false"));
        assert_eq!(
            p.apply("NoEquals").unwrap_err().to_string(),
            "NoEquals=: expected Name=Value"
        );
        assert_eq!(
            p,
            ResourceProperties::default(),
            "refused assignments change nothing"
        );
        let mut g = GroupProperties::default();
        assert!(g
            .apply("RestartDelay=5")
            .unwrap_err()
            .reason
            .starts_with("unknown group property"));
        assert_eq!(
            g.apply("AutoFailbackType=Never").unwrap_err().reason,
            "expected Prevent or Allow"
        );
        assert!(g
            .apply("PreferredOwners=a,b,a")
            .unwrap_err()
            .reason
            .contains("'a' listed twice"));
        assert!(g.apply("FailbackWindowStart=24").is_err());
    }

    #[test]
    fn values_parse_and_round_trip() {
        let mut p = ResourceProperties::default();
        p.apply("restartaction=Restart").unwrap();
        p.apply("RestartThreshold = 3").unwrap();
        p.apply("SeparateMonitor=1").unwrap();
        p.apply("RestartDelay=0").unwrap();
        assert_eq!(p.restart_action, RestartAction::Restart);
        assert_eq!(p.restart_threshold, 3);
        assert!(p.separate_monitor);
        let map = p.non_default_map();
        assert_eq!(map.len(), 4);
        assert_eq!(map["SeparateMonitor"], "true");
        assert_eq!(ResourceProperties::from_map(&map).unwrap(), p);
        assert_eq!(
            "2".parse::<RestartAction>().unwrap(),
            RestartAction::RestartAndFailover
        );

        let mut g = GroupProperties::default();
        g.apply("PreferredOwners=node1, node2").unwrap();
        g.apply("AutoFailbackType=Allow").unwrap();
        g.apply("FailbackWindowStart=22").unwrap();
        g.apply("FailoverThreshold=2").unwrap();
        assert_eq!(g.preferred_owners, vec!["node1", "node2"]);
        assert_eq!(g.effective_failover_threshold(5), 2);
        assert_eq!(GroupProperties::from_map(&g.non_default_map()).unwrap(), g);
        assert!(GroupProperties::default().non_default_map().is_empty());
    }

    #[test]
    fn times_past_what_a_deadline_can_hold_are_refused() {
        let mut p = ResourceProperties::default();
        let e = p.apply("RestartDelay=18446744073709551615").unwrap_err();
        assert_eq!(
            e.to_string(),
            "RestartDelay=18446744073709551615: expected at most 4294967295 milliseconds (about 49.7 days)"
        );
        let e = p
            .apply("PendingTimeout=99999999999999999999999")
            .unwrap_err();
        assert!(e.reason.starts_with("expected at most"), "{e}");
        assert!(p.apply("RetryPeriodOnFailure=4294967296").is_err());
        assert_eq!(p, ResourceProperties::default(), "nothing changed");
        p.apply("RestartDelay=4294967295").unwrap();
        assert_eq!(p.restart_delay_ms, MAX_PROPERTY_MS);
        let mut g = GroupProperties::default();
        assert!(g.apply("FailoverPeriod=4294967296").is_err());
    }

    #[test]
    fn failover_threshold_reads_nodes_minus_one_by_default() {
        let g = GroupProperties::default();
        assert_eq!(g.get("FailoverThreshold").as_deref(), Some("nodes-1"));
        assert_eq!(g.to_map()["FailoverThreshold"], "nodes-1");
        let mut g = GroupProperties::default();
        g.apply("FailoverThreshold=2").unwrap();
        assert_eq!(g.get("FailoverThreshold").as_deref(), Some("2"));
        assert_eq!(g.non_default_map()["FailoverThreshold"], "2");
        g.apply("FailoverThreshold=Nodes-1").unwrap();
        assert_eq!(
            g,
            GroupProperties::default(),
            "nodes-1 is the default again"
        );
        g.apply("FailoverThreshold=4294967295").unwrap();
        assert_eq!(g.failover_threshold, FAILOVER_THRESHOLD_NODES_MINUS_ONE);
        assert!(
            g.non_default_map().is_empty(),
            "the default is never stored"
        );
        let e = g.apply("FailoverThreshold=many").unwrap_err();
        assert_eq!(
            e.to_string(),
            "FailoverThreshold=many: expected a non-negative integer or nodes-1"
        );
    }

    #[test]
    fn full_map_round_trips() {
        let p = ResourceProperties {
            separate_monitor: true,
            ..Default::default()
        };
        assert_eq!(ResourceProperties::from_map(&p.to_map()).unwrap(), p);
    }
}

/// The map conversions both property sets share: all values, the ones that differ from the
/// defaults (what the cluster database stores), and back.
macro_rules! property_maps {
    ($t:ty) => {
        impl $t {
            /// Every property with its value, by canonical name.
            pub fn to_map(&self) -> BTreeMap<String, String> {
                Self::NAMES
                    .iter()
                    .filter_map(|n| Some((n.to_string(), self.get(n)?)))
                    .collect()
            }

            /// Only the properties that differ from their defaults (what the cluster database stores).
            pub fn non_default_map(&self) -> BTreeMap<String, String> {
                let defaults = Self::default().to_map();
                self.to_map()
                    .into_iter()
                    .filter(|(k, v)| defaults.get(k) != Some(v))
                    .collect()
            }

            /// Defaults overridden by `map` (as stored by `non_default_map`). The first bad entry is
            /// an error.
            pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, PropertyError> {
                let mut props = Self::default();
                for (k, v) in map {
                    props.set(k, v)?;
                }
                Ok(props)
            }
        }
    };
}

property_maps!(ResourceProperties);
property_maps!(GroupProperties);
