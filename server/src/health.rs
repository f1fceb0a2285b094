//! The health gate: a ring's figures on a release, and whether they let the release out of it.
//!
//! Over the last `window` records the ring's devices uploaded while on the release (and the
//! last `window` events of each kind about it):
//!
//! - the remediation failure rate: `remediation_failed` / `remediation_started`;
//! - the rejection rate: `policy_rejected` / (those + the records);
//! - the non-compliant increase: the share of `non_compliant` records on the release minus the
//!   share on the release the ring ran before it (when the ring ran one and has its records).
//!
//! A release passes when there are at least `min_records` records (rejections count: a device
//! that rejects the release reports on the one before) and no figure is above its threshold.
//! Too few records refuse a promotion (no evidence is not good evidence) but never pause the
//! ring, and no figure is judged on them; a figure above its threshold, on enough records,
//! refuses the promotion and pauses the ring — at promotion, and as soon as an upload makes
//! it so.

use crate::db::{get, Db};
use crate::error::ServerError;
use serde::{Deserialize, Serialize};

/// A tenant's thresholds (`hpl-server tenant health`); missing fields take the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// How many of the newest records (and events of each kind) count.
    pub window: u32,
    /// Records needed before a release may leave a ring.
    pub min_records: u32,
    pub max_remediation_failure_rate: f64,
    pub max_policy_rejected_rate: f64,
    /// In share points: 0.10 = ten percentage points more non-compliant devices.
    pub max_non_compliant_increase: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window: 200,
            min_records: 10,
            max_remediation_failure_rate: 0.20,
            max_policy_rejected_rate: 0.05,
            max_non_compliant_increase: 0.10,
        }
    }
}

impl Thresholds {
    pub fn validate(&self) -> Result<(), String> {
        if self.window == 0 || self.window > 100_000 {
            return Err("window is 1 to 100000 records".into());
        }
        if self.min_records > self.window {
            return Err("min_records is at most the window".into());
        }
        for (name, v) in [
            (
                "max_remediation_failure_rate",
                self.max_remediation_failure_rate,
            ),
            ("max_policy_rejected_rate", self.max_policy_rejected_rate),
            (
                "max_non_compliant_increase",
                self.max_non_compliant_increase,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} is a share between 0 and 1"));
            }
        }
        Ok(())
    }
}

/// What the gate measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub ring: String,
    pub release: u64,
    pub records: u64,
    pub non_compliant: u64,
    pub remediation_started: u64,
    pub remediation_failed: u64,
    pub policy_rejected: u64,
    pub remediation_failure_rate: f64,
    pub policy_rejected_rate: f64,
    /// The release the ring ran before, and its non-compliant share, when known.
    pub previous_release: Option<u64>,
    pub previous_non_compliant_rate: Option<f64>,
    pub non_compliant_rate: f64,
    pub non_compliant_increase: Option<f64>,
    /// Why the release may not leave the ring; empty when it may.
    pub failures: Vec<String>,
    /// True when a figure passed its threshold (the ring pauses); false when there are only
    /// too few records.
    pub unhealthy: bool,
}

impl Figures {
    pub fn passes(&self) -> bool {
        self.failures.is_empty()
    }
}

pub async fn thresholds(db: &Db, tenant: &str) -> Result<Thresholds, ServerError> {
    let row = sqlx::query("SELECT health_json FROM tenants WHERE name = $1")
        .bind(tenant)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| ServerError::NotFound(format!("no tenant `{tenant}`")))?;
    let text: String = get(&row, "health_json")?;
    serde_json::from_str(&text)
        .map_err(|e| ServerError::Invalid(format!("tenant `{tenant}`'s thresholds: {e}")))
}

async fn records(
    db: &Db,
    tenant: &str,
    ring: &str,
    release: u64,
    window: u32,
) -> Result<(u64, u64), ServerError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN state = 'non_compliant' THEN 1 ELSE 0 END), 0) AS bad FROM (SELECT state FROM reports WHERE tenant = $1 AND ring = $2 AND bundle_version = $3 AND kind = 'record' ORDER BY id DESC LIMIT $4) AS recent",
    )
    .bind(tenant)
    .bind(ring)
    .bind(release as i64)
    .bind(i64::from(window))
    .fetch_one(&db.pool)
    .await?;
    Ok((
        get::<i64>(&row, "n")? as u64,
        get::<i64>(&row, "bad")? as u64,
    ))
}

async fn events(
    db: &Db,
    tenant: &str,
    ring: &str,
    release: u64,
    kind: &str,
    window: u32,
) -> Result<u64, ServerError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT id FROM reports WHERE tenant = $1 AND ring = $2 AND bundle_version = $3 AND kind = $4 ORDER BY id DESC LIMIT $5) AS recent",
    )
    .bind(tenant)
    .bind(ring)
    .bind(release as i64)
    .bind(kind)
    .bind(i64::from(window))
    .fetch_one(&db.pool)
    .await?;
    Ok(get::<i64>(&row, "n")? as u64)
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn percent(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

/// The figures of `ring` on `release` against the tenant's thresholds.
pub async fn figures(
    db: &Db,
    tenant: &str,
    ring: &str,
    release: u64,
    previous: Option<u64>,
) -> Result<Figures, ServerError> {
    let t = thresholds(db, tenant).await?;
    let (n, bad) = records(db, tenant, ring, release, t.window).await?;
    let started = events(db, tenant, ring, release, "remediation_started", t.window).await?;
    let failed = events(db, tenant, ring, release, "remediation_failed", t.window).await?;
    let rejected = events(db, tenant, ring, release, "policy_rejected", t.window).await?;
    let previous_rate = match previous {
        Some(p) if p != release => match records(db, tenant, ring, p, t.window).await? {
            (0, _) => None,
            (pn, pbad) => Some(share(pbad, pn)),
        },
        _ => None,
    };
    let rate = share(bad, n);
    let mut f = Figures {
        ring: ring.to_string(),
        release,
        records: n,
        non_compliant: bad,
        remediation_started: started,
        remediation_failed: failed,
        policy_rejected: rejected,
        remediation_failure_rate: share(failed, started.max(failed)),
        policy_rejected_rate: share(rejected, rejected + n),
        previous_release: previous.filter(|p| *p != release),
        previous_non_compliant_rate: previous_rate,
        non_compliant_rate: rate,
        non_compliant_increase: previous_rate.map(|p| rate - p),
        failures: Vec::new(),
        unhealthy: false,
    };
    // Judged only on enough evidence: records, and rejections (a device that rejects the
    // release uploads its record on the release before).
    let evidence = n + rejected;
    if evidence < u64::from(t.min_records) {
        f.failures.push(format!(
            "only {n} records from `{ring}` on release {release}; the gate needs {}",
            t.min_records
        ));
        return Ok(f);
    }
    if f.remediation_failure_rate > t.max_remediation_failure_rate {
        f.failures.push(format!(
            "remediation failures {} ({failed} of {} started) are above {}",
            percent(f.remediation_failure_rate),
            started.max(failed),
            percent(t.max_remediation_failure_rate)
        ));
    }
    if f.policy_rejected_rate > t.max_policy_rejected_rate {
        f.failures.push(format!(
            "policy rejections {} ({rejected} rejections, {n} records) are above {}",
            percent(f.policy_rejected_rate),
            percent(t.max_policy_rejected_rate)
        ));
    }
    if let (Some(increase), Some(p), Some(prev)) =
        (f.non_compliant_increase, previous_rate, f.previous_release)
    {
        if increase > t.max_non_compliant_increase {
            f.failures.push(format!(
                "non-compliant devices rose from {} on release {prev} to {} ({bad} of {n} records), more than {:.1} points",
                percent(p),
                percent(rate),
                t.max_non_compliant_increase * 100.0
            ));
        }
    }
    f.unhealthy = !f.failures.is_empty();
    Ok(f)
}
