//! Enrollment and one sync.

use crate::client::{Client, ClientError, Reply};
use crate::identity::{self, Identity};
use crate::outbox::{Item, Kind, Outbox};
use hpl_runtime::config::ManagedConfig;
use hpl_runtime::device::Device;
use hpl_runtime::events::Event;
use hpl_runtime::inventory::Inventory;
use hpl_runtime::record::State;
use hpl_runtime::store::{install_event, Rejection, SnapshotStore};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Enrolls the device with `server`: makes its key (or reuses the one in the store), sends
/// it with the enrollment token, and keeps the id and ring the server returns. Enrolling
/// again with the same key is the same device.
pub fn enroll(
    server: &str,
    token: &str,
    store: &Path,
    serial: &str,
    scopes: &[String],
    budget: Duration,
) -> Result<Identity, String> {
    let key = identity::key(store).map_err(|e| format!("the device key: {e}"))?;
    let public = format!(
        "{}{}",
        hpl_runtime::protocol::PUBLIC_KEY_PREFIX,
        hpl_runtime::load::hex(&key.verifying_key().to_bytes())
    );
    let body = serde_json::to_vec(&serde_json::json!({
        "public_key": public,
        "serial": serial,
        "scopes": scopes,
    }))
    .map_err(|e| e.to_string())?;
    let client = Client::new(server, budget);
    let reply = client
        .enroll(&key, token, &body)
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&reply.body)
        .map_err(|e| format!("the server's answer is not JSON: {e}"))?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the server's answer has no `{k}`"))
    };
    let id = Identity {
        server: client.base().to_string(),
        device_id: field("device_id")?,
        tenant: field("tenant")?,
        serial: serial.to_string(),
        ring: field("ring")?,
    };
    identity::save(store, &id).map_err(|e| format!("cannot keep the identity: {e}"))?;
    Ok(id)
}

/// What one sync is given.
pub struct SyncOptions<'a> {
    /// The store directory (the snapshot store; the agent keeps its state in `agent/`).
    pub store: &'a Path,
    pub config: &'a ManagedConfig,
    /// The device's inventory now.
    pub inventory: &'a Inventory,
    /// The server, when not the one enrolled with.
    pub server: Option<&'a str>,
    /// The whole sync ends within this, whatever the server does.
    pub budget: Duration,
    pub now: i64,
    /// Events to report with this sync (remediation tasks the agent ran).
    pub events: Vec<Event>,
}

/// What happened to the ring manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ManifestOutcome {
    /// The device already has it (one 304).
    Unchanged,
    /// A new manifest was installed; `bundle_version` is active.
    Installed {
        bundle_version: u64,
        manifest_version: u64,
    },
    /// The manifest (or the bundle it names) was refused; the active snapshot stays.
    Rejected { code: String, reason: String },
    /// The ring runs no release yet.
    NoRelease,
    /// It could not be fetched (see `server_error`).
    NotFetched,
}

/// The outcome of a sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub server: String,
    pub device_id: String,
    pub ring: String,
    /// False when the server could not be reached: the device answered from its snapshot.
    pub reachable: bool,
    pub server_error: Option<String>,
    pub manifest: ManifestOutcome,
    /// The active snapshot after the sync.
    pub active: Option<hpl_runtime::record::BundleRef>,
    pub state: State,
    /// Why the state is `unknown`, when it is (`code: message`).
    pub unknown: Vec<String>,
    /// Items the server stored now, had already (a retry), and refused for good.
    pub stored: usize,
    pub duplicates: usize,
    pub refused: usize,
    /// Items still in the outbox.
    pub queued: usize,
    /// Batches dropped because the outbox was full (since the last report).
    pub dropped: u64,
}

impl SyncReport {
    pub fn human(&self) -> String {
        let active = self
            .active
            .as_ref()
            .map_or("no valid snapshot".to_string(), |b| {
                format!("bundle {} ({})", b.version, b.hash)
            });
        let mut out = String::new();
        if self.reachable {
            out.push_str(&format!(
                "synced with {} as {} on ring {}\n",
                self.server, self.device_id, self.ring
            ));
        } else {
            out.push_str(&format!(
                "the control plane is unreachable: answered from the active snapshot\n  {}\n",
                self.server_error.as_deref().unwrap_or("")
            ));
        }
        out.push_str(&match &self.manifest {
            ManifestOutcome::Unchanged => "manifest: up to date\n".to_string(),
            ManifestOutcome::Installed {
                bundle_version,
                manifest_version,
            } => format!(
                "manifest: installed version {manifest_version}, bundle {bundle_version} active\n"
            ),
            ManifestOutcome::Rejected { code, reason } => {
                format!("manifest: REJECTED ({code}): {reason}\n")
            }
            ManifestOutcome::NoRelease => "manifest: the ring runs no release yet\n".to_string(),
            ManifestOutcome::NotFetched => "manifest: not fetched\n".to_string(),
        });
        if self.reachable {
            if let Some(e) = &self.server_error {
                out.push_str(&format!("server: {e}\n"));
            }
        }
        out.push_str(&format!(
            "snapshot: {active}\nstate: {}\n",
            self.state.as_str()
        ));
        for u in &self.unknown {
            out.push_str(&format!("  unknown because {u}\n"));
        }
        out.push_str(&format!(
            "uploaded: {} stored, {} already stored, {} refused; {} queued in the outbox\n",
            self.stored, self.duplicates, self.refused, self.queued
        ));
        if self.dropped > 0 {
            out.push_str(&format!(
                "warning: {} batches were dropped because the outbox was full\n",
                self.dropped
            ));
        }
        out
    }
}

fn etag_path(store: &Path) -> std::path::PathBuf {
    identity::dir(store).join("manifest.etag")
}

/// Fetches the ring manifest and installs it (and the bundle it names, when the store does
/// not have it). Returns the outcome and the install event, if any.
fn follow_manifest(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    id: &Identity,
    store: &SnapshotStore,
    config: &ManagedConfig,
    task_id: &str,
    now: i64,
) -> Result<(ManifestOutcome, Option<Event>), ClientError> {
    let etag = store
        .manifest(&id.tenant)
        .and_then(|_| std::fs::read_to_string(etag_path(store.dir())).ok());
    let extra: Vec<(&'static str, String)> = etag
        .iter()
        .map(|e| ("if-none-match", e.trim().to_string()))
        .collect();
    let reply = match client.signed(
        key,
        &id.device_id,
        "GET",
        "/v1/device/manifest",
        None,
        &extra,
    ) {
        Ok(r) => r,
        Err(ClientError::Refused { status: 404, .. }) => {
            return Ok((ManifestOutcome::NoRelease, None))
        }
        Err(e) => return Err(e),
    };
    if reply.status == 304 {
        return Ok((ManifestOutcome::Unchanged, None));
    }
    let before = store.active(now).map(|b| *b.hash());
    let named = hpl_runtime::manifest::verify(&reply.body, &config.distribution_keys)
        .ok()
        .map(|v| v.manifest().clone());
    let mut result = store.install_manifest(&reply.body, None, now);
    if let (Err(Rejection::ManifestMismatch(_)), Some(m)) = (&result, &named) {
        // The store does not have the bundle the manifest names: fetch it.
        let path = format!("/v1/device/bundles/{}", m.bundle_version);
        let bundle: Reply = client.signed(key, &id.device_id, "GET", &path, None, &[])?;
        result = store.install_manifest(&reply.body, Some(&bundle.body), now);
    }
    let mut event = install_event(&result, &id.tenant, &id.serial, task_id, now);
    match &result {
        Ok(b) => {
            if let Some(tag) = &reply.etag {
                let _ = identity::write_atomically(&etag_path(store.dir()), tag.as_bytes(), false);
            }
            let m = named.as_ref();
            let outcome = ManifestOutcome::Installed {
                bundle_version: b.content().manifest.bundle_version,
                manifest_version: m.map_or(0, |m| m.manifest_version),
            };
            // A pause re-signs the same bundle: nothing new is applied.
            let changed = before != Some(*b.hash());
            Ok((outcome, changed.then_some(event)))
        }
        Err(r) => {
            // The rejected release is the one the manifest names (when it could be read).
            if let Some(m) = &named {
                event.policy_version = m.bundle_version;
            }
            Ok((
                ManifestOutcome::Rejected {
                    code: r.code(),
                    reason: r.to_string(),
                },
                Some(event),
            ))
        }
    }
}

/// Sends the outbox, oldest batch first; stops at the first failure (the rest waits).
fn drain(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    id: &mut Identity,
    store: &Path,
    outbox: &Outbox,
    report: &mut SyncReport,
) -> Result<(), ClientError> {
    for path in outbox.pending() {
        let Ok(batch) = Outbox::read(&path) else {
            // A batch that cannot be read is kept aside, not sent and not deleted.
            let _ = std::fs::rename(&path, path.with_extension("unreadable"));
            continue;
        };
        let body = serde_json::to_vec(&batch).unwrap_or_default();
        let reply = match client.signed(
            key,
            &id.device_id,
            "POST",
            "/v1/device/reports",
            Some(&body),
            &[],
        ) {
            Ok(r) => r,
            Err(ClientError::Refused { status, .. })
                if status != 401 && status != 403 && status != 429 =>
            {
                // Refused as a whole for good (too large, malformed): kept aside, counted.
                report.refused += batch.items.len();
                let _ = std::fs::rename(&path, path.with_extension("refused"));
                continue;
            }
            Err(e) => return Err(e),
        };
        let acks: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let mut acked = std::collections::HashSet::new();
        for a in acks["items"].as_array().into_iter().flatten() {
            let key = (
                a["task_id"].as_str().unwrap_or("").to_string(),
                a["seq"].as_u64().unwrap_or(u64::MAX),
            );
            match a["disposition"].as_str() {
                Some("stored") => report.stored += 1,
                Some("duplicate") => report.duplicates += 1,
                Some("rejected") => report.refused += 1,
                _ => continue,
            }
            acked.insert(key);
        }
        let left: Vec<Item> = batch
            .items
            .into_iter()
            .filter(|i| !acked.contains(&(i.task_id.clone(), i.seq)))
            .collect();
        let _ = outbox.settle(&path, left);
        if let Some(ring) = acks["ring"].as_str() {
            if ring != id.ring {
                id.ring = ring.to_string();
                let _ = identity::save(store, id);
            }
        }
    }
    Ok(())
}

/// One sync: manifest, install, evaluate, queue, upload. Never blocks past `budget`; with
/// the server unreachable the record is made from the active snapshot and queued.
pub fn sync(o: SyncOptions<'_>) -> Result<SyncReport, String> {
    let mut id = identity::load(o.store).ok_or_else(|| {
        format!(
            "{} holds no enrollment: run `hpl agent enroll` first",
            o.store.display()
        )
    })?;
    if o.inventory.device_id != id.serial {
        return Err(format!(
            "the inventory is of device `{}`, but this store enrolled `{}`",
            o.inventory.device_id, id.serial
        ));
    }
    if o.config.tenant_id != id.tenant {
        return Err(format!(
            "the MDM configuration is for tenant `{}`, but this store enrolled with `{}`",
            o.config.tenant_id, id.tenant
        ));
    }
    std::fs::create_dir_all(identity::dir(o.store)).map_err(|e| e.to_string())?;
    // One sync at a time per store.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(identity::dir(o.store).join(".sync.lock"))
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| format!("cannot lock the store: {e}"))?;
    let key = identity::key(o.store).map_err(|e| format!("the device key: {e}"))?;
    let store = SnapshotStore::open(
        o.store,
        o.config.trusted_keys.clone(),
        Some(o.config.tenant_id.clone()),
    )
    .map_err(|e| format!("cannot open the store: {e}"))?
    .with_distribution_keys(o.config.distribution_keys.clone());
    let outbox = Outbox::open(o.store).map_err(|e| format!("the outbox: {e}"))?;
    let server = o.server.map_or(id.server.clone(), str::to_string);
    let client = Client::new(&server, o.budget);
    let task = outbox.next_task().map_err(|e| format!("the outbox: {e}"))?;
    let task_id = format!("sync-{task}");

    let mut report = SyncReport {
        server: server.clone(),
        device_id: id.device_id.clone(),
        ring: id.ring.clone(),
        reachable: true,
        server_error: None,
        manifest: ManifestOutcome::NotFetched,
        active: None,
        state: State::Unknown,
        unknown: Vec::new(),
        stored: 0,
        duplicates: 0,
        refused: 0,
        queued: 0,
        dropped: 0,
    };
    let mut events = Vec::new();
    match follow_manifest(&client, &key, &id, &store, o.config, &task_id, o.now) {
        Ok((outcome, event)) => {
            report.manifest = outcome;
            events.extend(event);
        }
        Err(e @ ClientError::Unreachable(_)) => {
            report.reachable = false;
            report.server_error = Some(e.to_string());
        }
        Err(e) => report.server_error = Some(e.to_string()),
    }

    // The record, from whatever snapshot is active now (the ring is the server's word).
    let device = Device::from_store(&store, o.now, Some(o.config.clone()));
    let mut inventory = o.inventory.clone();
    inventory.ring = Some(id.ring.clone());
    let record = device.evaluate(&inventory, o.now);
    let scopes = hpl_runtime::summary::scope_labels(&device.prepared(&inventory), &id.tenant);
    report.state = record.state;
    report.unknown = record
        .unknown_reasons
        .iter()
        .map(|u| format!("{}: {}", u.code.as_str(), u.message))
        .collect();
    report.active = device
        .snapshot_at(o.now)
        .ok()
        .map(|b| hpl_runtime::record::BundleRef {
            version: b.content().manifest.bundle_version,
            hash: b.hash_string(),
        });
    events.extend(hpl_runtime::events::from_record(&record, o.now));
    events.extend(o.events);
    let mut items = vec![Item {
        task_id: task_id.clone(),
        seq: 0,
        kind: Kind::Record,
        scopes: Some(scopes),
        body: serde_json::to_value(&record).map_err(|e| e.to_string())?,
    }];
    for (i, e) in events.iter().enumerate() {
        items.push(Item {
            task_id: task_id.clone(),
            seq: i as u64 + 1,
            kind: Kind::Event,
            scopes: None,
            body: serde_json::to_value(e).map_err(|e| e.to_string())?,
        });
    }
    outbox
        .push(&items)
        .map_err(|e| format!("cannot queue the record: {e}"))?;

    if report.reachable {
        match drain(&client, &key, &mut id, o.store, &outbox, &mut report) {
            Ok(()) => {}
            Err(e @ ClientError::Unreachable(_)) => {
                report.reachable = false;
                report.server_error = Some(e.to_string());
            }
            Err(e) => report.server_error = Some(e.to_string()),
        }
    }
    report.ring = id.ring.clone();
    report.queued = outbox.len();
    report.dropped = outbox.dropped();
    drop(lock);
    Ok(report)
}

/// Items waiting in a store's outbox (for status).
pub fn queued(store: &Path) -> usize {
    Outbox::open(store).map_or(0, |o| o.len())
}
