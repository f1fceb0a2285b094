//! Audit events, as JSON lines. Every event has the required fields of DESIGN §3; `details`
//! carries what is specific to its type. `task_id` is device-local: `(tenant_id, device_id,
//! task_id)` is the key.

use crate::eval::timestamp;
use crate::record::ComplianceRecord;
use crate::vocab::Action;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PolicyApplied,
    PolicyRejected,
    ComplianceEvaluated,
    DriftDetected,
    RemediationStarted,
    RemediationCompleted,
    RemediationFailed,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub event: EventType,
    pub tenant_id: String,
    /// The scope the event is about (`org:acme`, `team:platform`).
    pub scope_id: String,
    pub device_id: String,
    /// The manager acted on, or `null` when the event is about no manager.
    pub manager: Option<String>,
    pub task_id: String,
    pub action: Action,
    pub policy_version: u64,
    pub outcome: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Event {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"event\":\"error\",\"message\":\"{e}\"}}"))
    }
}

/// Appends events as JSON lines (one `write` per event, so concurrent appenders interleave
/// whole lines).
pub fn append(out: &mut dyn Write, events: &[Event]) -> std::io::Result<()> {
    for e in events {
        let mut line = e.to_json_line();
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

/// `compliance_evaluated` for the record, and one `drift_detected` per violation.
pub fn from_record(record: &ComplianceRecord, now: i64) -> Vec<Event> {
    let task_id = format!("eval-{now}");
    let version = record.bundle.version;
    let device_scope = format!("org:{}", record.tenant_id);
    let mut events = vec![Event {
        event: EventType::ComplianceEvaluated,
        tenant_id: record.tenant_id.clone(),
        scope_id: device_scope,
        device_id: record.device_id.clone(),
        manager: None,
        task_id: task_id.clone(),
        action: Action::Evaluate,
        policy_version: version,
        outcome: record.state.as_str().into(),
        timestamp: timestamp(now),
        details: serde_json::json!({
            "bundle_hash": record.bundle.hash,
            "violations": record.violations.len(),
            "unknown_reasons": record.unknown_reasons.iter().map(|u| u.code).collect::<Vec<_>>(),
        }),
    }];
    for (i, v) in record.violations.iter().enumerate() {
        events.push(Event {
            event: EventType::DriftDetected,
            tenant_id: record.tenant_id.clone(),
            scope_id: v.rule.scope.to_string(),
            device_id: record.device_id.clone(),
            manager: Some(v.manager.to_string()),
            task_id: format!("{task_id}-{i}"),
            action: v.action,
            policy_version: v.rule.policy_version,
            outcome: serde_json::to_value(v.category).ok().and_then(|c| c.as_str().map(str::to_string)).unwrap_or_default(),
            timestamp: timestamp(now),
            details: serde_json::json!({ "package": v.package, "expected": v.expected, "found": v.found, "severity": v.severity, "rule": v.rule }),
        });
    }
    events
}

/// What the agent reports about a remediation task it runs.
#[derive(Debug, Clone)]
pub struct TaskReport<'a> {
    pub tenant_id: &'a str,
    pub device_id: &'a str,
    pub scope_id: &'a str,
    pub manager: &'a str,
    pub task_id: &'a str,
    pub action: Action,
    pub policy_version: u64,
}

impl TaskReport<'_> {
    fn event(
        &self,
        event: EventType,
        outcome: &str,
        now: i64,
        details: serde_json::Value,
    ) -> Event {
        Event {
            event,
            tenant_id: self.tenant_id.into(),
            scope_id: self.scope_id.into(),
            device_id: self.device_id.into(),
            manager: Some(self.manager.into()),
            task_id: self.task_id.into(),
            action: self.action,
            policy_version: self.policy_version,
            outcome: outcome.into(),
            timestamp: timestamp(now),
            details,
        }
    }

    pub fn started(&self, now: i64) -> Event {
        self.event(
            EventType::RemediationStarted,
            "started",
            now,
            serde_json::Value::Null,
        )
    }

    pub fn completed(&self, now: i64) -> Event {
        self.event(
            EventType::RemediationCompleted,
            "success",
            now,
            serde_json::Value::Null,
        )
    }

    /// `error` is the agent's message: cancellation included (enforcement never bypasses it).
    pub fn failed(&self, now: i64, error: &str) -> Event {
        self.event(
            EventType::RemediationFailed,
            "failure",
            now,
            serde_json::json!({ "error": error }),
        )
    }
}
