//! Metrics per ring and release, from what devices uploaded: each device's newest record,
//! folded through the same [`Fleet`] aggregate as `hpl report` (so the same records give the
//! same numbers), and the remediation and rejection events counted per ring and release.

use crate::db::{get, Db};
use crate::error::ServerError;
use crate::rings;
use hpl_runtime::summary::{DeviceSummary, Fleet, FleetReport, StateCounts};
use serde::Serialize;
use std::collections::BTreeMap;

/// States in percent of the devices counted (one decimal).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct StatePercent {
    pub compliant: f64,
    pub warning: f64,
    pub non_compliant: f64,
    pub unknown: f64,
}

impl StatePercent {
    fn of(s: &StateCounts) -> StatePercent {
        let p = |n: u64| match s.total() {
            0 => 0.0,
            t => (n as f64 * 1000.0 / t as f64).round() / 10.0,
        };
        StatePercent {
            compliant: p(s.compliant),
            warning: p(s.warning),
            non_compliant: p(s.non_compliant),
            unknown: p(s.unknown),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Remediation {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
}

/// One release on one ring.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseMetrics {
    pub release: u64,
    /// Devices whose newest record was evaluated on this release.
    pub devices: u64,
    pub percent: StatePercent,
    pub remediation: Remediation,
    pub policy_rejected: u64,
    /// States, scopes, managers and the most common drifts, as `hpl report` shows them.
    pub fleet: FleetReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct RingMetrics {
    pub ring: String,
    /// The release the ring runs now.
    pub release: Option<u64>,
    pub paused: bool,
    /// Enrolled devices on the ring now.
    pub enrolled: u64,
    pub releases: Vec<ReleaseMetrics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantMetrics {
    pub tenant: String,
    /// Every device's newest record.
    pub fleet: FleetReport,
    pub rings: Vec<RingMetrics>,
}

#[derive(Default)]
struct Acc {
    fleet: Fleet,
    remediation: Remediation,
    policy_rejected: u64,
}

pub async fn tenant(db: &Db, tenant: &str) -> Result<TenantMetrics, ServerError> {
    let rings = rings::rings(db, tenant).await?;
    let mut all = Fleet::default();
    let mut per: BTreeMap<(String, u64), Acc> = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT ring, bundle_version, summary_json FROM device_latest WHERE tenant = $1",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let text: String = get(&r, "summary_json")?;
        let summary: DeviceSummary = serde_json::from_str(&text)
            .map_err(|e| ServerError::Invalid(format!("a stored summary is corrupt: {e}")))?;
        let key = (
            get::<String>(&r, "ring")?,
            get::<i64>(&r, "bundle_version")? as u64,
        );
        all.add(&summary);
        per.entry(key).or_default().fleet.add(&summary);
    }
    let counts = sqlx::query(
        "SELECT ring, bundle_version, kind, COUNT(*) AS n FROM reports WHERE tenant = $1 AND kind IN ('remediation_started', 'remediation_completed', 'remediation_failed', 'policy_rejected') GROUP BY ring, bundle_version, kind",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    for r in counts {
        let key = (
            get::<String>(&r, "ring")?,
            get::<i64>(&r, "bundle_version")? as u64,
        );
        let n = get::<i64>(&r, "n")? as u64;
        let acc = per.entry(key).or_default();
        match get::<String>(&r, "kind")?.as_str() {
            "remediation_started" => acc.remediation.started += n,
            "remediation_completed" => acc.remediation.completed += n,
            "remediation_failed" => acc.remediation.failed += n,
            _ => acc.policy_rejected += n,
        }
    }
    let enrolled = sqlx::query(
        "SELECT ring, COUNT(*) AS n FROM devices WHERE tenant = $1 AND revoked_at IS NULL GROUP BY ring",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    let mut enrolled_on: BTreeMap<String, u64> = BTreeMap::new();
    for r in enrolled {
        enrolled_on.insert(get(&r, "ring")?, get::<i64>(&r, "n")? as u64);
    }
    let mut out = Vec::new();
    for ring in &rings {
        let mut releases: Vec<ReleaseMetrics> = per
            .iter()
            .filter(|((name, _), _)| name == &ring.name)
            .map(|((_, release), acc)| {
                let fleet = acc.fleet.report();
                ReleaseMetrics {
                    release: *release,
                    devices: fleet.devices,
                    percent: StatePercent::of(&fleet.states),
                    remediation: acc.remediation,
                    policy_rejected: acc.policy_rejected,
                    fleet,
                }
            })
            .collect();
        releases.sort_by_key(|r| std::cmp::Reverse(r.release));
        out.push(RingMetrics {
            ring: ring.name.clone(),
            release: ring.release,
            paused: ring.paused,
            enrolled: enrolled_on.get(&ring.name).copied().unwrap_or(0),
            releases,
        });
    }
    Ok(TenantMetrics {
        tenant: tenant.to_string(),
        fleet: all.report(),
        rings: out,
    })
}
