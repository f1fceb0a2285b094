//! The device facade: the one way the agent (and `hpl eval` / `hpl authorize`) asks the
//! runtime anything.
//!
//! A [`Device`] holds what the device knows: its MDM managed configuration (tenant, trusted
//! keys, mode cap, scope hints) and its policy snapshot, if it has a valid one. Every question
//! goes through the same checks, in this order, before any rule is looked at:
//!
//! 1. the inventory gets MDM's scope hints (device groups);
//! 2. the snapshot must exist, be for the configuration's tenant and not be expired at the
//!    time of the question; otherwise the answer is the no-valid-snapshot one: records are
//!    `unknown` with `no_valid_snapshot`, read-only actions are allowed and mutating ones are
//!    denied (or sent for confirmation when MDM caps the mode below `enforce`);
//! 3. a request the runtime cannot read is denied, never allowed;
//! 4. then [`crate::eval`] or [`crate::enforce`] decides, with MDM's mode cap.

use crate::config::ManagedConfig;
use crate::enforce::{self, ActionRequest, Decision, Verdict};
use crate::eval::{self, Settings};
use crate::inventory::Inventory;
use crate::load::VerifiedBundle;
use crate::record::ComplianceRecord;
use crate::store::SnapshotStore;
use crate::trace::{self, Trace};
use crate::vocab::Mode;

/// What a device evaluates and authorizes against.
#[derive(Debug, Clone)]
pub struct Device {
    config: Option<ManagedConfig>,
    snapshot: Result<VerifiedBundle, String>,
    local_zone: jiff::tz::TimeZone,
}

impl Device {
    /// A device with this bundle (already loaded and verified) as its snapshot. `config` is
    /// the MDM configuration; `None` only outside a managed device (CI, `hpl eval --policy`).
    pub fn with_bundle(bundle: VerifiedBundle, config: Option<ManagedConfig>) -> Device {
        Device {
            config,
            snapshot: Ok(bundle),
            local_zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// A device without a valid snapshot; `context` says why (it is part of every answer).
    pub fn without_snapshot(context: impl Into<String>, config: Option<ManagedConfig>) -> Device {
        Device {
            config,
            snapshot: Err(context.into()),
            local_zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// The device's active snapshot from its store at `now`.
    pub fn from_store(store: &SnapshotStore, now: i64, config: Option<ManagedConfig>) -> Device {
        match store.active(now) {
            Some(bundle) => Device::with_bundle(bundle, config),
            None => Device::without_snapshot(
                format!(
                    "the store {} holds no valid, unexpired bundle",
                    store.dir().display()
                ),
                config,
            ),
        }
    }

    /// The zone of windows declared `local` (the device's own; UTC unless set).
    pub fn with_local_zone(mut self, zone: jiff::tz::TimeZone) -> Device {
        self.local_zone = zone;
        self
    }

    pub fn config(&self) -> Option<&ManagedConfig> {
        self.config.as_ref()
    }

    /// The MDM settings evaluation uses.
    pub fn settings(&self) -> Settings {
        Settings {
            mode_cap: self.config.as_ref().and_then(|c| c.mode_cap),
            local_zone: self.local_zone.clone(),
        }
    }

    /// The inventory as the runtime sees it: with MDM's device groups added. Borrowed when
    /// MDM adds nothing (the common case: no copy of a 1,000-package inventory).
    pub fn prepared<'i>(&self, inventory: &'i Inventory) -> std::borrow::Cow<'i, Inventory> {
        let adds = self.config.as_ref().is_some_and(|c| {
            c.device_groups
                .iter()
                .any(|g| !inventory.scopes.device_groups.contains(g))
        });
        if adds {
            std::borrow::Cow::Owned(self.prepare(inventory.clone()))
        } else {
            std::borrow::Cow::Borrowed(inventory)
        }
    }

    /// The inventory as the runtime sees it: with MDM's device groups added.
    pub fn prepare(&self, mut inventory: Inventory) -> Inventory {
        if let Some(c) = &self.config {
            for g in &c.device_groups {
                if !inventory.scopes.device_groups.contains(g) {
                    inventory.scopes.device_groups.push(g.clone());
                }
            }
        }
        inventory
    }

    /// The snapshot that is valid at `now` on this device (it exists, is not expired and is
    /// for the configuration's tenant), or why there is none.
    pub fn snapshot_at(&self, now: i64) -> Result<&VerifiedBundle, String> {
        let bundle = self.snapshot.as_ref().map_err(Clone::clone)?;
        let manifest = &bundle.content().manifest;
        if let Some(expires) = manifest.expires_at {
            if now >= expires {
                return Err(format!(
                    "the bundle (version {}) expired at {}",
                    manifest.bundle_version,
                    eval::timestamp(expires)
                ));
            }
        }
        if let Some(c) = &self.config {
            if c.tenant_id != manifest.tenant {
                return Err(format!(
                    "the bundle is for tenant `{}`, this device belongs to `{}`",
                    manifest.tenant, c.tenant_id
                ));
            }
        }
        Ok(bundle)
    }

    /// The snapshot that is valid at `now` for this device and inventory, or why there is none.
    pub fn valid_snapshot(
        &self,
        inventory: &Inventory,
        now: i64,
    ) -> Result<&VerifiedBundle, String> {
        let bundle = self.snapshot_at(now)?;
        let manifest = &bundle.content().manifest;
        if inventory.tenant_id != manifest.tenant {
            return Err(format!(
                "the inventory is for tenant `{}`, the bundle for `{}`",
                inventory.tenant_id, manifest.tenant
            ));
        }
        Ok(bundle)
    }

    /// The compliance record of this inventory at `now` (Unix seconds).
    pub fn evaluate(&self, inventory: &Inventory, now: i64) -> ComplianceRecord {
        let inventory = self.prepared(inventory);
        match self.valid_snapshot(&inventory, now) {
            Ok(bundle) => eval::evaluate_with(bundle, &inventory, now, &self.settings()),
            Err(context) => eval::no_snapshot_record(&inventory, now, &context),
        }
    }

    /// May the agent run `request` now?
    pub fn authorize(&self, inventory: &Inventory, request: &ActionRequest, now: i64) -> Decision {
        let inventory = self.prepared(inventory);
        match self.valid_snapshot(&inventory, now) {
            Ok(bundle) => enforce::authorize(bundle, &inventory, request, now, &self.settings()),
            Err(context) => {
                enforce::authorize_without_snapshot(request, self.mode_without_snapshot(), &context)
            }
        }
    }

    /// [`Device::authorize`] of a request in JSON (`hpl authorize --action`). A request the
    /// runtime cannot read (unknown action, missing field) is denied with the reason.
    pub fn authorize_json(&self, inventory: &Inventory, request: &str, now: i64) -> Decision {
        match serde_json::from_str::<ActionRequest>(request) {
            Ok(request) => self.authorize(inventory, &request, now),
            Err(e) => Decision {
                decision: Verdict::Deny,
                reason: format!("the request cannot be read: {e}"),
                rule: None,
                packages: Vec::new(),
            },
        }
    }

    /// The decision trace of `manager:package` on this device (`hpl why`), with the record
    /// it is part of; `Err` says why there is nothing to trace (no valid snapshot, or no such
    /// manager).
    pub fn trace(
        &self,
        inventory: &Inventory,
        now: i64,
        manager: &str,
        package: &str,
    ) -> Result<(Trace, ComplianceRecord), String> {
        let inventory = self.prepared(inventory);
        let bundle = self.valid_snapshot(&inventory, now)?;
        trace::trace(bundle, &inventory, now, &self.settings(), manager, package)
            .map_err(|e| e.to_string())
    }

    /// Without a snapshot the device is as strict as MDM lets it be: enforce unless capped.
    fn mode_without_snapshot(&self) -> Mode {
        self.config
            .as_ref()
            .and_then(|c| c.mode_cap)
            .unwrap_or(Mode::Enforce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::TrustedKeys;

    fn inventory() -> Inventory {
        Inventory::from_json_str(
            r#"{"schema":"hpl.inventory.v1","tenant_id":"t","device_id":"D",
                "collected_at":"2026-11-29T00:00:00Z","scopes":{"device_groups":["a"]},
                "device":{"arch":"arm64","os":{"name":"macos","version":"15.0"},"facts":{}},
                "managers":[]}"#,
        )
        .unwrap()
    }

    fn config(groups: &[&str]) -> ManagedConfig {
        ManagedConfig {
            tenant_id: "t".into(),
            trusted_keys: TrustedKeys::new(),
            key_ids: Vec::new(),
            distribution_keys: TrustedKeys::new(),
            mode_cap: None,
            device_groups: groups.iter().map(|g| g.to_string()).collect(),
            check_in_interval_minutes: 60,
        }
    }

    /// MDM's groups reach the inventory; when they add nothing, nothing is copied.
    #[test]
    fn mdm_groups_are_added_and_the_inventory_is_only_copied_when_they_add_one() {
        let inv = inventory();
        let none = Device::without_snapshot("x", None);
        assert!(matches!(none.prepared(&inv), std::borrow::Cow::Borrowed(_)));
        let same = Device::without_snapshot("x", Some(config(&["a"])));
        assert!(matches!(same.prepared(&inv), std::borrow::Cow::Borrowed(_)));
        let more = Device::without_snapshot("x", Some(config(&["a", "b"])));
        let p = more.prepared(&inv);
        assert!(matches!(p, std::borrow::Cow::Owned(_)));
        assert_eq!(p.scopes.device_groups, ["a", "b"]);
    }
}
