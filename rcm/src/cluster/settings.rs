//! The cluster-wide properties of `keelson cluster get` and `keelson cluster set`: the heartbeat
//! settings (WSFC's SameSubnetDelay, SameSubnetThreshold, CrossSubnetDelay, CrossSubnetThreshold,
//! whose names, defaults and ranges are crates/netft's) and the explicit test-only switch
//! `TestOnlyLowerLimits` that lets tests go below those ranges, beside the fencing properties
//! (fence/config.rs, checked and shown through here). Pure: what the replicated
//! properties mean, whether a `set` is allowed, and the view. Not storing them (the cluster
//! database) nor running the heartbeat network.

use super::fence::config::{self as fence, FenceConfig};
use keelson_netft::settings::PROPERTY_NAMES;
use keelson_netft::NetftSettings;
use keelson_proto::view::{ClusterProperties, ClusterProperty};
use keelson_proto::Assignments;
use keelson_raft::ClusterInfo;
use std::collections::BTreeMap;

/// `1`: the heartbeat settings may go below WSFC's ranges (crates/netft's test-only bounds).
/// Never in production: a loaded machine misses heartbeats that short and reports links down.
pub const TEST_ONLY_LOWER_LIMITS: &str = "TestOnlyLowerLimits";

/// Every property name, heartbeat settings first, in the order they are documented.
fn known_names() -> impl Iterator<Item = &'static str> {
    PROPERTY_NAMES
        .into_iter()
        .chain([TEST_ONLY_LOWER_LIMITS])
        .chain(fence::NAMES)
}

/// The heartbeat timing this node's heartbeat network runs with: the defaults, overridden by the
/// cluster's properties; a stored value that is not allowed is an error naming it.
pub fn netft_settings(info: &ClusterInfo) -> Result<NetftSettings, String> {
    settings_from(&info.properties).map_err(|e| format!("the cluster's properties: {e}"))
}

/// The properties a `keelson cluster set` with `assignments` commits (canonical names, values as
/// numbers), checked against what `info` already holds: all allowed together, or one line saying
/// which property, which value and which range. The state machine sets them over what it holds
/// then, so two sets racing from two nodes both count; only a race of `TestOnlyLowerLimits=0` with
/// a lower value could commit a pair that `netft_settings` then refuses (by name).
pub fn check_set(
    info: &ClusterInfo,
    assignments: &Assignments,
) -> Result<BTreeMap<String, String>, String> {
    if assignments.is_empty() {
        return Err(format!(
            "nothing to set: give Prop=Value, e.g. SameSubnetDelay=2000 (properties: {})",
            known_names().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut given: BTreeMap<&'static str, &str> = BTreeMap::new();
    for (name, text) in assignments {
        let name = canonical(name)?;
        if given.insert(name, text).is_some() {
            return Err(format!("property '{name}' is given more than once"));
        }
    }
    // The switch first, so the order of the assignments does not matter.
    let lower = match given.get(TEST_ONLY_LOWER_LIMITS) {
        Some(text) => number(TEST_ONLY_LOWER_LIMITS, text, &NetftSettings::default())? == 1,
        None => lower_limits(&info.properties)?,
    };
    let bounds = under_bounds(lower);
    let mut changes = BTreeMap::new();
    for (name, text) in given {
        let value = match fence::is_fence_property(name) {
            true => fence::check(name, text)?,
            false => number(name, text, &bounds)?.to_string(),
        };
        changes.insert(name.to_string(), value);
    }
    for (name, text) in &info.properties {
        let heartbeat = name != TEST_ONLY_LOWER_LIMITS && !fence::is_fence_property(name);
        if !changes.contains_key(name) && heartbeat {
            let name = canonical(name)?;
            number(name, text, &bounds).map_err(|e| {
                format!(
                    "{TEST_ONLY_LOWER_LIMITS}=0 is refused while {name} is below WSFC's range \
                     ({e}); set {name} within it in the same request"
                )
            })?;
        }
    }
    let mut after = info.properties.clone();
    after.extend(changes.clone());
    settings_from(&after)?;
    FenceConfig::from_properties(&after)?;
    Ok(changes)
}

/// `keelson cluster get [NAME...]`: the properties named (all when none is), each with its value,
/// default and the range a `set` is checked against now.
pub fn view(info: &ClusterInfo, names: &[String]) -> Result<ClusterProperties, String> {
    let settings = netft_settings(info)?;
    let wanted: Vec<&'static str> = if names.is_empty() {
        known_names().collect()
    } else {
        names
            .iter()
            .map(|n| canonical(n))
            .collect::<Result<_, _>>()?
    };
    let fencing = FenceConfig::from_properties(&info.properties)
        .map_err(|e| format!("the cluster's properties: {e}"))?;
    let properties = wanted
        .into_iter()
        .map(|name| match fence::is_fence_property(name) {
            true => (name.to_string(), fencing.view(name)),
            false => (name.to_string(), property_view(&settings, name)),
        })
        .collect();
    Ok(ClusterProperties {
        cluster: info.name.clone(),
        properties,
    })
}

fn property_view(settings: &NetftSettings, name: &str) -> ClusterProperty {
    if name == TEST_ONLY_LOWER_LIMITS {
        let on = settings.bounds == keelson_netft::settings::Bounds::TestOnlyLowerLimits;
        return ClusterProperty {
            default: 0,
            max: 1,
            min: 0,
            value: u32::from(on),
            text: None,
        };
    }
    let known = "a heartbeat setting's name";
    let (min, max) = settings.range(name).expect(known);
    ClusterProperty {
        default: NetftSettings::default().get(name).expect(known),
        max,
        min,
        value: settings.get(name).expect(known),
        text: None,
    }
}

/// The known property `name` is, ignoring case (as resource properties are).
fn canonical(name: &str) -> Result<&'static str, String> {
    known_names()
        .find(|known| known.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "unknown cluster property '{}' (known: {})",
                keelson_types::escape_for_log(name),
                known_names().collect::<Vec<_>>().join(", ")
            )
        })
}

/// The settings `properties` describe (names canonical, as stored).
fn settings_from(properties: &BTreeMap<String, String>) -> Result<NetftSettings, String> {
    let mut settings = under_bounds(lower_limits(properties)?);
    for (name, text) in properties {
        let name = canonical(name)?;
        if name != TEST_ONLY_LOWER_LIMITS && !fence::is_fence_property(name) {
            let value = number(name, text, &settings)?;
            settings.set(name, value).map_err(|e| e.to_string())?;
        }
    }
    Ok(settings)
}

/// Whether `properties` turn the test-only lower limits on.
fn lower_limits(properties: &BTreeMap<String, String>) -> Result<bool, String> {
    match properties.get(TEST_ONLY_LOWER_LIMITS) {
        Some(text) => Ok(number(TEST_ONLY_LOWER_LIMITS, text, &NetftSettings::default())? == 1),
        None => Ok(false),
    }
}

/// WSFC's defaults, checked from now on against WSFC's ranges or (`lower`) crates/netft's
/// test-only ones.
fn under_bounds(lower: bool) -> NetftSettings {
    let defaults = NetftSettings::default();
    if !lower {
        return defaults;
    }
    let (delay, threshold) = defaults.timing(true);
    NetftSettings::test_only_override(delay, threshold)
        .expect("WSFC's defaults are within the test-only bounds")
}

/// `text` as the value of the known property `name`: a whole number that `settings` accept for it
/// (0 or 1 for TestOnlyLowerLimits); the refusal names the property, the value and the range.
fn number(name: &'static str, text: &str, settings: &NetftSettings) -> Result<u32, String> {
    let shown = keelson_types::escape_for_log(text);
    if name == TEST_ONLY_LOWER_LIMITS {
        return match text {
            "0" => Ok(0),
            "1" => Ok(1),
            _ => Err(format!(
                "{name} '{shown}' is neither 0 nor 1 (1 allows heartbeat settings below WSFC's \
                 ranges, for tests only)"
            )),
        };
    }
    let (min, max) = settings.range(name).map_err(|e| e.to_string())?;
    let unit = if name.ends_with("Delay") { " ms" } else { "" };
    let out_of_range = || format!("{name} {shown} is out of range: it must be {min}..{max}{unit}");
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits {
        return Err(format!(
            "{name} '{shown}' is not a whole number: it must be {min}..{max}{unit}"
        ));
    }
    let value = text.parse::<u32>().map_err(|_| out_of_range())?;
    // crates/netft is the one place that knows the ranges: try it on a copy.
    let mut probe = *settings;
    probe.set(name, value).map_err(|e| e.to_string())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pairs: &[(&str, &str)]) -> ClusterInfo {
        ClusterInfo {
            name: "prod".into(),
            properties: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn set(pairs: &[(&str, &str)]) -> Assignments {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refusal(on: &[(&str, &str)], request: &[(&str, &str)]) -> String {
        check_set(&info(on), &set(request)).unwrap_err()
    }

    #[test]
    fn no_properties_are_wsfcs_defaults() {
        assert_eq!(
            netft_settings(&info(&[])).unwrap(),
            NetftSettings::default()
        );
        let v = view(&info(&[]), &[]).unwrap();
        assert_eq!(v.cluster, "prod");
        let shown: Vec<(&str, u32, u32, u32, u32)> = v
            .properties
            .iter()
            .map(|(n, p)| (n.as_str(), p.value, p.default, p.min, p.max))
            .collect();
        assert_eq!(
            shown,
            [
                ("CrossSubnetDelay", 1000, 1000, 250, 4000),
                ("CrossSubnetThreshold", 5, 5, 3, 10),
                ("FenceAgent", 0, 0, 0, 0),
                ("FenceAgentOptions", 0, 0, 0, 0),
                ("FenceRetryDelay", 5000, 5000, 100, 3600000),
                ("FenceTimeout", 60000, 60000, 500, 600000),
                ("SameSubnetDelay", 1000, 1000, 250, 2000),
                ("SameSubnetThreshold", 5, 5, 3, 10),
                ("TestOnlyLowerLimits", 0, 0, 0, 1),
            ]
        );
    }

    #[test]
    fn stored_properties_are_what_the_heartbeat_network_runs_with() {
        let stored = info(&[("SameSubnetDelay", "2000"), ("CrossSubnetThreshold", "9")]);
        let s = netft_settings(&stored).unwrap();
        assert_eq!(s.timing(true), (2000, 5));
        assert_eq!(s.timing(false), (1000, 9));
        let lower = info(&[("TestOnlyLowerLimits", "1"), ("SameSubnetDelay", "100")]);
        assert_eq!(netft_settings(&lower).unwrap().timing(true), (100, 5));
        let bad = netft_settings(&info(&[("SameSubnetDelay", "100")])).unwrap_err();
        assert!(bad.contains("SameSubnetDelay 100 is out of range"), "{bad}");
    }

    #[test]
    fn a_set_names_its_canonical_properties_as_numbers() {
        let changes = check_set(
            &info(&[("CrossSubnetDelay", "300")]),
            &set(&[("samesubnetdelay", "02000"), ("SameSubnetThreshold", "3")]),
        )
        .unwrap();
        let want: BTreeMap<String, String> = [
            ("SameSubnetDelay".to_string(), "2000".to_string()),
            ("SameSubnetThreshold".to_string(), "3".to_string()),
        ]
        .into();
        assert_eq!(changes, want);
    }

    #[test]
    fn bad_sets_name_the_property_the_value_and_the_range() {
        for (request, want) in [
            (
                ("SameSubnetDelay", "2001"),
                "SameSubnetDelay 2001 is out of range: it must be 250..2000 ms",
            ),
            (
                ("CrossSubnetDelay", "249"),
                "CrossSubnetDelay 249 is out of range: it must be 250..4000 ms",
            ),
            (
                ("SameSubnetThreshold", "11"),
                "SameSubnetThreshold 11 is out of range: it must be 3..10",
            ),
            (
                ("CrossSubnetThreshold", "99999999999"),
                "CrossSubnetThreshold 99999999999 is out of range: it must be 3..10",
            ),
            (
                ("CrossSubnetThreshold", "123456789012345678901234567890"),
                "CrossSubnetThreshold 123456789012345678901234567890 is out of range: it must be 3..10",
            ),
            (
                ("SameSubnetDelay", "+300"),
                "SameSubnetDelay '+300' is not a whole number",
            ),
            (("SameSubnetDelay", ""), "SameSubnetDelay '' is not a whole number"),
            (
                ("SameSubnetDelay", "fast"),
                "SameSubnetDelay 'fast' is not a whole number: it must be 250..2000 ms",
            ),
            (
                ("SameSubnetDelay", "-5"),
                "SameSubnetDelay '-5' is not a whole number",
            ),
            (
                ("TestOnlyLowerLimits", "yes"),
                "TestOnlyLowerLimits 'yes' is neither 0 nor 1",
            ),
            (
                ("TestOnlyLowerLimits", "2"),
                "TestOnlyLowerLimits '2' is neither 0 nor 1",
            ),
            (
                ("SameSubnetDelayy", "1000"),
                "unknown cluster property 'SameSubnetDelayy' (known: SameSubnetDelay, \
                 SameSubnetThreshold, CrossSubnetDelay, CrossSubnetThreshold, TestOnlyLowerLimits, \
                 FenceAgent, FenceAgentOptions, FenceTimeout, FenceRetryDelay)",
            ),
        ] {
            let e = refusal(&[], &[request]);
            assert!(e.starts_with(want), "{request:?}: {e}");
        }
        assert!(refusal(&[], &[]).starts_with("nothing to set"));
        let e = refusal(
            &[],
            &[("SameSubnetDelay", "300"), ("samesubnetdelay", "400")],
        );
        assert_eq!(e, "property 'SameSubnetDelay' is given more than once");
    }

    #[test]
    fn lower_values_need_the_test_only_switch_in_any_order() {
        let e = refusal(&[], &[("SameSubnetDelay", "100")]);
        assert_eq!(
            e,
            "SameSubnetDelay 100 is out of range: it must be 250..2000 ms"
        );
        for request in [
            [("TestOnlyLowerLimits", "1"), ("SameSubnetDelay", "100")],
            [("SameSubnetDelay", "100"), ("TestOnlyLowerLimits", "1")],
        ] {
            assert!(check_set(&info(&[]), &set(&request)).is_ok(), "{request:?}");
        }
        let on = [("TestOnlyLowerLimits", "1")];
        assert!(check_set(&info(&on), &set(&[("SameSubnetThreshold", "2")])).is_ok());
        // Even the test-only bounds have a floor (crates/netft's).
        let e = refusal(&on, &[("SameSubnetDelay", "5")]);
        assert_eq!(
            e,
            "SameSubnetDelay 5 is out of range: it must be 10..2000 ms"
        );
        let v = view(&info(&on), &["samesubnetdelay".into()]).unwrap();
        let p = &v.properties["SameSubnetDelay"];
        assert_eq!((p.value, p.default, p.min, p.max), (1000, 1000, 10, 2000));
        assert_eq!(v.properties.len(), 1);
    }

    #[test]
    fn switching_the_lower_limits_off_with_a_lower_value_set_is_refused() {
        let low = [("TestOnlyLowerLimits", "1"), ("SameSubnetDelay", "100")];
        let e = refusal(&low, &[("TestOnlyLowerLimits", "0")]);
        assert_eq!(
            e,
            "TestOnlyLowerLimits=0 is refused while SameSubnetDelay is below WSFC's range \
             (SameSubnetDelay 100 is out of range: it must be 250..2000 ms); set SameSubnetDelay \
             within it in the same request"
        );
        let both = [("TestOnlyLowerLimits", "0"), ("SameSubnetDelay", "1000")];
        assert!(check_set(&info(&low), &set(&both)).is_ok());
    }

    #[test]
    fn get_of_an_unknown_name_is_refused() {
        let e = view(&info(&[]), &["Nope".into()]).unwrap_err();
        assert!(e.starts_with("unknown cluster property 'Nope'"), "{e}");
    }
}
