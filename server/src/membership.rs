//! Which ring a device is on. Each ring has a membership rule; a device is on the first ring,
//! in ring order, whose rule it matches, and on the last ring when it matches none (so every
//! device is on exactly one ring).
//!
//! A rule matches a device in any of its device groups, with any of its scope labels, or in
//! its stable percentage: the device's bucket is `sha256(tenant "\0" serial)` mod 100, the same
//! on every server and every day, so `percent = 5` is always the same 5 % of the fleet. The
//! device's groups and scopes are what its agent reports (its inventory with MDM's scope
//! hints): a device can choose its own ring by lying about them, but no other device's.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A ring's membership rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Members {
    /// Devices in any of these device groups (`device_group:<g>` among their scopes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_groups: Vec<String>,
    /// Devices with any of these scope labels (`team:platform`, `environment:ci`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The devices whose bucket (0–99) is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// Every device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

impl Members {
    /// The rule a new tenant's ring gets: canary none until the operator says which devices
    /// (the groups and scopes a policy declares are its own), pilot 10 % of the fleet, broad
    /// everything else.
    pub fn default_for(ring: &str) -> Members {
        match ring {
            "canary" => Members::default(),
            "pilot" => Members {
                percent: Some(10),
                ..Members::default()
            },
            _ => Members {
                all: true,
                ..Members::default()
            },
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.percent.is_some_and(|p| p > 100) {
            return Err("percent is at most 100".into());
        }
        for g in self.device_groups.iter().chain(&self.scopes) {
            if g.is_empty() || g.len() > 128 {
                return Err(format!("`{g}` is not a group or scope name"));
            }
        }
        Ok(())
    }

    pub fn matches(&self, scopes: &[String], bucket: u8) -> bool {
        self.all
            || self.percent.is_some_and(|p| bucket < p)
            || scopes.iter().any(|s| {
                self.scopes.contains(s)
                    || s.strip_prefix("device_group:")
                        .is_some_and(|g| self.device_groups.iter().any(|x| x == g))
            })
    }

    /// As `hpl-server ring status` shows it.
    pub fn describe(&self) -> String {
        if self.all {
            return "every device".into();
        }
        let mut parts = Vec::new();
        if !self.device_groups.is_empty() {
            parts.push(format!("groups {}", self.device_groups.join(", ")));
        }
        if !self.scopes.is_empty() {
            parts.push(format!("scopes {}", self.scopes.join(", ")));
        }
        if let Some(p) = self.percent {
            parts.push(format!("{p} % of devices"));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(" or ")
        }
    }
}

/// The device's stable bucket, 0–99.
pub fn bucket(tenant: &str, serial: &str) -> u8 {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0]);
    h.update(serial.as_bytes());
    let d = h.finalize();
    (u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) % 100) as u8
}

/// The ring of a device: the first (in order) whose rule matches, else the last.
pub fn assign<'a>(rings: &'a [(String, Members)], scopes: &[String], bucket: u8) -> &'a str {
    rings
        .iter()
        .find(|(_, m)| m.matches(scopes, bucket))
        .or(rings.last())
        .map_or("", |(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<(String, Members)> {
        ["canary", "pilot", "broad"]
            .iter()
            .map(|r| (r.to_string(), Members::default_for(r)))
            .collect()
    }

    #[test]
    fn the_first_matching_ring_wins_and_the_last_takes_the_rest() {
        let mut rings = defaults();
        let none = vec!["org:acme".to_string()];
        assert_eq!(
            assign(&rings, &none, 0),
            "pilot",
            "canary takes no one by default"
        );
        assert_eq!(assign(&rings, &none, 9), "pilot");
        assert_eq!(assign(&rings, &none, 10), "broad");
        rings[0].1 = Members {
            device_groups: vec!["build_agents".into()],
            scopes: vec!["department:design".into()],
            ..Members::default()
        };
        rings[1].1.device_groups = vec!["pilot_fleet".into()];
        let agent = vec!["org:acme".into(), "device_group:build_agents".into()];
        let designer = vec!["org:acme".into(), "department:design".into()];
        let both = vec![
            "device_group:pilot_fleet".into(),
            "department:design".into(),
        ];
        assert_eq!(assign(&rings, &agent, 50), "canary");
        assert_eq!(assign(&rings, &designer, 50), "canary");
        assert_eq!(assign(&rings, &both, 50), "canary", "the first ring wins");
        assert_eq!(
            assign(&rings, &["device_group:pilot_fleet".into()], 50),
            "pilot"
        );
        assert_eq!(assign(&rings, &none, 50), "broad");
        let scoped = vec![(
            "lab".to_string(),
            Members {
                scopes: vec!["team:platform".into()],
                ..Members::default()
            },
        )];
        assert_eq!(
            assign(&scoped, &["team:web".into()], 0),
            "lab",
            "the last takes all"
        );
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("acme", "C02F1234"), bucket("acme", "C02F1234"));
        let mut counts = [0u32; 100];
        for i in 0..10_000 {
            counts[bucket("acme", &format!("D{i}")) as usize] += 1;
        }
        let under_10: u32 = counts[..10].iter().sum();
        assert!((800..1200).contains(&under_10), "{under_10}");
        assert!(counts.iter().all(|&c| c > 50));
    }

    #[test]
    fn rules_are_validated_and_unknown_fields_refused() {
        assert!(Members {
            percent: Some(101),
            ..Members::default()
        }
        .validate()
        .is_err());
        assert!(serde_json::from_str::<Members>(r#"{"percentage": 5}"#).is_err());
    }
}
