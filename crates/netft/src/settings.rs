//! The heartbeat timing settings with WSFC's names, defaults and ranges (SameSubnetDelay,
//! SameSubnetThreshold, CrossSubnetDelay, CrossSubnetThreshold), the one place that refuses a value
//! out of range, and the explicit test-only override that allows lower values. Not where settings
//! are stored or replicated (the cluster database does that).

use thiserror::Error;

/// The property names, in the order `keelson cluster get` shows them.
pub const PROPERTY_NAMES: [&str; 4] = [
    "SameSubnetDelay",
    "SameSubnetThreshold",
    "CrossSubnetDelay",
    "CrossSubnetThreshold",
];

/// One setting's accepted range, normally and under the test-only override.
struct Range {
    name: &'static str,
    min: u32,
    max: u32,
    test_min: u32,
}

const SAME_SUBNET_DELAY: Range = Range {
    name: "SameSubnetDelay",
    min: 250,
    max: 2000,
    test_min: 10,
};
const SAME_SUBNET_THRESHOLD: Range = Range {
    name: "SameSubnetThreshold",
    min: 3,
    max: 10,
    test_min: 2,
};
const CROSS_SUBNET_DELAY: Range = Range {
    name: "CrossSubnetDelay",
    min: 250,
    max: 4000,
    test_min: 10,
};
const CROSS_SUBNET_THRESHOLD: Range = Range {
    name: "CrossSubnetThreshold",
    min: 3,
    max: 10,
    test_min: 2,
};

fn range_of(name: &str) -> Option<&'static Range> {
    [
        &SAME_SUBNET_DELAY,
        &SAME_SUBNET_THRESHOLD,
        &CROSS_SUBNET_DELAY,
        &CROSS_SUBNET_THRESHOLD,
    ]
    .into_iter()
    .find(|r| r.name == name)
}

/// A refused setting: names the property, the value and the accepted range.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingsError {
    #[error("{name} {value} is out of range: it must be {min}..{max}{unit}")]
    OutOfRange {
        name: &'static str,
        value: u32,
        min: u32,
        max: u32,
        unit: &'static str,
    },
    #[error(
        "unknown NetFT property '{0}' (known: SameSubnetDelay, SameSubnetThreshold, CrossSubnetDelay, CrossSubnetThreshold)"
    )]
    UnknownProperty(String),
}

/// Which bounds apply: WSFC's, or the lower ones a test may ask for explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// SameSubnetDelay 250..2000, CrossSubnetDelay 250..4000, both thresholds 3..10.
    Normal,
    /// Test-only: delays down to 10 ms and thresholds down to 2, so a test can see a route go down
    /// in a few hundred milliseconds. Never use it in production: a loaded machine misses
    /// heartbeats that short and reports links down that are not.
    TestOnlyLowerLimits,
}

/// Heartbeat timing for routes on one subnet and routes across routed subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetftSettings {
    /// Milliseconds between heartbeats on a route whose two ends share a subnet.
    pub same_subnet_delay_ms: u32,
    /// Heartbeats missed in a row before such a route is Down.
    pub same_subnet_threshold: u32,
    /// Milliseconds between heartbeats on a route across routed subnets.
    pub cross_subnet_delay_ms: u32,
    /// Heartbeats missed in a row before such a route is Down.
    pub cross_subnet_threshold: u32,
    /// The bounds the values were checked against (kept so `set` checks the same way).
    pub bounds: Bounds,
}

impl Default for NetftSettings {
    fn default() -> Self {
        NetftSettings {
            same_subnet_delay_ms: 1000,
            same_subnet_threshold: 5,
            cross_subnet_delay_ms: 1000,
            cross_subnet_threshold: 5,
            bounds: Bounds::Normal,
        }
    }
}

impl NetftSettings {
    /// Settings checked against WSFC's ranges.
    pub fn new(
        same_subnet_delay_ms: u32,
        same_subnet_threshold: u32,
        cross_subnet_delay_ms: u32,
        cross_subnet_threshold: u32,
    ) -> Result<Self, SettingsError> {
        Self::checked(
            Bounds::Normal,
            [
                same_subnet_delay_ms,
                same_subnet_threshold,
                cross_subnet_delay_ms,
                cross_subnet_threshold,
            ],
        )
    }

    /// TEST ONLY: the same settings for both kinds of route, checked against the lower test bounds
    /// (delay 10..max, threshold 2..10). Tests use this to detect failures in well under a second.
    pub fn test_only_override(delay_ms: u32, threshold: u32) -> Result<Self, SettingsError> {
        Self::checked(
            Bounds::TestOnlyLowerLimits,
            [delay_ms, threshold, delay_ms, threshold],
        )
    }

    fn checked(bounds: Bounds, values: [u32; 4]) -> Result<Self, SettingsError> {
        let mut settings = NetftSettings {
            bounds,
            ..NetftSettings::default()
        };
        for (name, value) in PROPERTY_NAMES.iter().zip(values) {
            settings.set(name, value)?;
        }
        Ok(settings)
    }

    /// Sets one property by its WSFC name; out of range or unknown changes nothing.
    pub fn set(&mut self, name: &str, value: u32) -> Result<(), SettingsError> {
        let range = range_of(name).ok_or_else(|| SettingsError::UnknownProperty(name.into()))?;
        let min = match self.bounds {
            Bounds::Normal => range.min,
            Bounds::TestOnlyLowerLimits => range.test_min,
        };
        if value < min || value > range.max {
            let unit = if name.ends_with("Delay") { " ms" } else { "" };
            return Err(SettingsError::OutOfRange {
                name: range.name,
                value,
                min,
                max: range.max,
                unit,
            });
        }
        *self.field_mut(range.name) = value;
        Ok(())
    }

    /// One property by its WSFC name.
    pub fn get(&self, name: &str) -> Result<u32, SettingsError> {
        let range = range_of(name).ok_or_else(|| SettingsError::UnknownProperty(name.into()))?;
        let mut copy = *self;
        Ok(*copy.field_mut(range.name))
    }

    /// The values `set` accepts for one property under these settings' bounds: (min, max).
    pub fn range(&self, name: &str) -> Result<(u32, u32), SettingsError> {
        let range = range_of(name).ok_or_else(|| SettingsError::UnknownProperty(name.into()))?;
        let min = match self.bounds {
            Bounds::Normal => range.min,
            Bounds::TestOnlyLowerLimits => range.test_min,
        };
        Ok((min, range.max))
    }

    fn field_mut(&mut self, name: &str) -> &mut u32 {
        match name {
            "SameSubnetDelay" => &mut self.same_subnet_delay_ms,
            "SameSubnetThreshold" => &mut self.same_subnet_threshold,
            "CrossSubnetDelay" => &mut self.cross_subnet_delay_ms,
            _ => &mut self.cross_subnet_threshold,
        }
    }

    /// (delay ms, threshold) for a route, by whether its two ends share a subnet.
    pub fn timing(&self, same_subnet: bool) -> (u32, u32) {
        if same_subnet {
            (self.same_subnet_delay_ms, self.same_subnet_threshold)
        } else {
            (self.cross_subnet_delay_ms, self.cross_subnet_threshold)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_wsfcs() {
        let s = NetftSettings::default();
        assert_eq!(
            PROPERTY_NAMES.map(|n| s.get(n).unwrap()),
            [1000, 5, 1000, 5]
        );
    }

    #[test]
    fn each_range_edge_is_accepted_and_one_past_it_refused() {
        for (name, min, max) in [
            ("SameSubnetDelay", 250, 2000),
            ("SameSubnetThreshold", 3, 10),
            ("CrossSubnetDelay", 250, 4000),
            ("CrossSubnetThreshold", 3, 10),
        ] {
            let mut s = NetftSettings::default();
            s.set(name, min).unwrap();
            s.set(name, max).unwrap();
            assert_eq!(s.get(name).unwrap(), max);
            for bad in [min - 1, max + 1] {
                let err = s.set(name, bad).unwrap_err();
                assert!(err
                    .to_string()
                    .starts_with(&format!("{name} {bad} is out of range")));
                assert!(err.to_string().contains(&format!("{min}..{max}")), "{err}");
                assert_eq!(s.get(name).unwrap(), max, "a refused value changed nothing");
            }
        }
    }

    #[test]
    fn new_refuses_naming_the_first_bad_property() {
        let err = NetftSettings::new(1000, 5, 100, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CrossSubnetDelay 100 is out of range: it must be 250..4000 ms"
        );
        assert_eq!(
            NetftSettings::new(1000, 11, 1000, 5)
                .unwrap_err()
                .to_string(),
            "SameSubnetThreshold 11 is out of range: it must be 3..10"
        );
    }

    #[test]
    fn unknown_property_is_named() {
        let err = NetftSettings::default()
            .set("SameSubnetDelayy", 1)
            .unwrap_err();
        assert!(err.to_string().contains("'SameSubnetDelayy'"), "{err}");
    }

    #[test]
    fn test_only_override_allows_lower_values_but_not_any_value() {
        let s = NetftSettings::test_only_override(100, 3).unwrap();
        assert_eq!(s.timing(true), (100, 3));
        assert_eq!(s.timing(false), (100, 3));
        assert!(NetftSettings::new(100, 3, 1000, 5).is_err());
        assert!(NetftSettings::test_only_override(5, 3).is_err());
        assert!(NetftSettings::test_only_override(100, 1).is_err());
        assert!(NetftSettings::test_only_override(100, 11).is_err());
    }
}
