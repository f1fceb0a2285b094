//! How the Helm agent embeds the runtime: one check-in, end to end.
//!
//! ```sh
//! hpl keygen --out ci.key
//! hpl build examples/acme -o acme.hplb --sign-key ci.key --bundle-version 7 --expires-in 30d
//! printf '{"tenant_id":"acme","trusted_keys":[{"public_key":"%s"}],"check_in_interval_minutes":60}' \
//!   "$(cat ci.key.pub)" > mdm.json
//! cargo run -p hpl-runtime --example agent -- mdm.json /tmp/hpl-store acme.hplb \
//!   examples/devices/platform-noncompliant.json
//! ```

use hpl_runtime::config::ManagedConfig;
use hpl_runtime::enforce::{authorize, authorize_without_snapshot, ActionRequest, Verdict};
use hpl_runtime::eval::{evaluate_with, no_snapshot_record, Settings};
use hpl_runtime::events::{self, TaskReport};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::store::{install_event, SnapshotStore};
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config_path, store_dir, bundle_path, inventory_path] = args.as_slice() else {
        eprintln!("usage: agent MDM_CONFIG STORE_DIR BUNDLE INVENTORY");
        std::process::exit(2);
    };
    let now = jiff::Timestamp::now().as_second();
    let mut audit = std::io::stdout();

    // 1. The MDM profile: trusted keys, tenant, mode cap, scope hints. Invalid: refuse to run.
    let config = ManagedConfig::parse(&std::fs::read_to_string(config_path)?)?;
    let settings = Settings {
        mode_cap: config.mode_cap,
        local_zone: jiff::tz::TimeZone::system(),
    };

    // 2. The snapshot store keeps the last valid bundle for offline use.
    let store = SnapshotStore::open(
        store_dir,
        config.trusted_keys.clone(),
        Some(config.tenant_id.clone()),
    )?;
    store.clean();

    // 3. A bundle arrived from the control plane: verify and install it (or keep the old one).
    let inventory = Inventory::from_json_str(&std::fs::read_to_string(inventory_path)?)?;
    let bytes = std::fs::read(bundle_path)?;
    let installed = store.install(&bytes, now);
    events::append(
        &mut audit,
        &[install_event(
            &installed,
            &config.tenant_id,
            &inventory.device_id,
            &format!("install-{now}"),
            now,
        )],
    )?;

    // 4. Check-in: evaluate against the active snapshot, never waiting on a network.
    let Some(bundle) = store.active(now) else {
        let record = no_snapshot_record(&inventory, now, "no valid bundle in the store");
        events::append(&mut audit, &events::from_record(&record, now))?;
        // Read-only work goes on; mutating work is refused with the reason.
        let request = ActionRequest {
            action: "install".into(),
            manager: "npm".into(),
            package: Some("x".into()),
            to: None,
        };
        let decision = authorize_without_snapshot(
            &request,
            settings
                .mode_cap
                .unwrap_or(hpl_runtime::bundle::Mode::Enforce),
            "no valid bundle",
        );
        eprintln!("offline: {:?}: {}", decision.decision, decision.reason);
        return Ok(());
    };
    let mut inventory = inventory;
    inventory
        .scopes
        .device_groups
        .extend(config.device_groups.iter().cloned());
    let record = evaluate_with(&bundle, &inventory, now, &settings);
    events::append(&mut audit, &events::from_record(&record, now))?;
    eprintln!(
        "{}: {} violations, state {}",
        record.device_id,
        record.violations.len(),
        record.state.as_str()
    );

    // 5. Remediation: ask before every mutating action; report each task.
    for (i, step) in record.remediation.iter().enumerate() {
        let request = ActionRequest {
            action: step.action.into(),
            manager: step.manager.clone(),
            package: Some(step.package.clone()),
            to: None,
        };
        let decision = authorize(&bundle, &inventory, &request, now, &settings);
        let task_id = format!("remediate-{now}-{i}");
        let task = TaskReport {
            tenant_id: &record.tenant_id,
            device_id: &record.device_id,
            scope_id: "org:acme",
            manager: &step.manager,
            task_id: &task_id,
            action: step.action,
            policy_version: record.bundle.version,
        };
        let runnable = step.automatic && decision.decision == Verdict::Allow;
        eprintln!(
            "  {} {}:{} -> {:?} ({}){}",
            step.action,
            step.manager,
            step.package,
            decision.decision,
            decision.reason,
            if runnable { ", running now" } else { "" }
        );
        if runnable {
            events::append(&mut audit, &[task.started(now)])?;
            // ... the agent runs the manager here; cancellation is reported as a failure ...
            events::append(&mut audit, &[task.completed(now)])?;
        }
    }
    Ok(())
}
