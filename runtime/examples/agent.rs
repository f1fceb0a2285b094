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
use hpl_runtime::device::Device;
use hpl_runtime::enforce::{ActionRequest, Verdict};
use hpl_runtime::events::{self, TaskReport};
use hpl_runtime::inventory::Inventory;
use hpl_runtime::store::{install_event, SnapshotStore};
use hpl_runtime::vocab::Action;
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

    // 4. Check-in: the device facade applies MDM's scope hints and mode cap, checks that the
    //    active snapshot is for this tenant and unexpired, and evaluates, never waiting on a
    //    network. Without a valid snapshot the record is `unknown` (`no_valid_snapshot`).
    let device = Device::from_store(&store, now, Some(config.clone()))
        .with_local_zone(jiff::tz::TimeZone::system());
    let record = device.evaluate(&inventory, now);
    events::append(&mut audit, &events::from_record(&record, now))?;
    eprintln!(
        "{}: {} violations, state {}",
        record.device_id,
        record.violations.len(),
        record.state.as_str()
    );
    if let Err(why) = device.valid_snapshot(&device.prepare(inventory.clone()), now) {
        // Read-only work goes on; mutating work is refused with the reason.
        let request = ActionRequest {
            action: Action::Install,
            manager: "npm".into(),
            package: Some("x".into()),
            to: None,
        };
        let decision = device.authorize(&inventory, &request, now);
        eprintln!(
            "offline ({why}): {:?}: {}",
            decision.decision, decision.reason
        );
        return Ok(());
    }

    // 5. Remediation: ask before every mutating action; report each task.
    for (i, step) in record.remediation.iter().enumerate() {
        let request = ActionRequest {
            action: step.action,
            manager: step.manager.clone(),
            package: Some(step.package.clone()),
            to: None,
        };
        let decision = device.authorize(&inventory, &request, now);
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
