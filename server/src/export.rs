//! The export of a tenant's audit trail and its devices' events, as JSON lines shaped like
//! OCSF (class, activity, time in milliseconds, actor, device, metadata; the rest under
//! `unmapped.hpl`, which for an audit entry is the whole entry, so an export verifies with
//! `hpl audit verify`). A [`Cursor`] says where a reader has got to: the API hands out the
//! next one with each page, and a webhook (a SIEM) keeps its own in the database and moves it
//! only after the receiver answered 2xx — delivery is at least once, and a receiver that was
//! down gets everything when it is back.

use crate::audit::{self, Filter};
use crate::db::{get, Db};
use crate::error::ServerError;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// The response header with the cursor of the next page.
pub const NEXT_CURSOR_HEADER: &str = "hpl-next-cursor";

/// Where an export has got to: the last audit entry and the last device report sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub audit_seq: u64,
    pub report_id: i64,
}

impl Cursor {
    /// `a<seq>.r<id>`; the empty string is the start.
    pub fn parse(text: &str) -> Result<Cursor, ServerError> {
        if text.is_empty() {
            return Ok(Cursor::default());
        }
        let bad = || ServerError::Invalid(format!("`{text}` is not an export cursor (a<N>.r<N>)"));
        let (a, r) = text.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            audit_seq: a
                .strip_prefix('a')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?,
            report_id: r
                .strip_prefix('r')
                .and_then(|n| n.parse().ok())
                .filter(|n: &i64| *n >= 0)
                .ok_or_else(bad)?,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a{}.r{}", self.audit_seq, self.report_id)
    }
}

/// One page of the export.
#[derive(Debug, Clone)]
pub struct Page {
    pub lines: Vec<String>,
    pub next: Cursor,
}

impl Page {
    pub fn body(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

fn metadata(uid: String) -> serde_json::Value {
    serde_json::json!({
        "version": "1.1.0",
        "uid": uid,
        "product": { "name": "hpl-server", "vendor_name": "hpl", "version": env!("CARGO_PKG_VERSION") },
    })
}

pub use hpl_runtime::audit_chain::ocsf as audit_line;

/// A device event (seed §8) as an OCSF Device Config State Change (5019).
fn event_line(
    tenant: &str,
    id: i64,
    device: &str,
    kind: &str,
    received: i64,
    body: &str,
) -> serde_json::Value {
    let event: serde_json::Value =
        serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.to_string()));
    serde_json::json!({
        "class_uid": 5019,
        "class_name": "Device Config State Change",
        "category_uid": 5,
        "category_name": "Discovery",
        "activity_name": kind,
        "time": received.saturating_mul(1000),
        "severity_id": if kind.ends_with("failed") || kind.ends_with("rejected") { 3 } else { 1 },
        "device": { "uid": device },
        "metadata": metadata(format!("event:{tenant}:{id}")),
        "unmapped": { "hpl": { "kind": "event", "tenant": tenant, "report_id": id, "event": event } },
    })
}

/// The tenant's audit entries after `cursor.audit_seq` and device events after
/// `cursor.report_id`, at most `limit` of each.
pub async fn page(db: &Db, tenant: &str, cursor: Cursor, limit: u32) -> Result<Page, ServerError> {
    let limit = limit.clamp(1, audit::MAX_PAGE);
    let entries = audit::entries(
        db,
        tenant,
        &Filter {
            after: Some(cursor.audit_seq),
            limit: Some(limit),
            ..Filter::default()
        },
    )
    .await?;
    let events = sqlx::query(
        "SELECT id, device_id, kind, received_at, body FROM reports WHERE tenant = $1 AND id > $2 AND kind <> 'record' ORDER BY id LIMIT $3",
    )
    .bind(tenant)
    .bind(cursor.report_id)
    .bind(i64::from(limit))
    .fetch_all(&db.pool)
    .await?;
    let mut next = cursor;
    let mut lines = Vec::with_capacity(entries.len() + events.len());
    for e in &entries {
        lines.push(audit_line(e).to_string());
        next.audit_seq = e.seq;
    }
    for r in &events {
        let id: i64 = get(r, "id")?;
        let device: String = get(r, "device_id")?;
        let kind: String = get(r, "kind")?;
        let received: i64 = get(r, "received_at")?;
        let body: String = get(r, "body")?;
        lines.push(event_line(tenant, id, &device, &kind, received, &body).to_string());
        next.report_id = id;
    }
    Ok(Page { lines, next })
}

/// A receiver of a tenant's export (`[[webhook]]` in the server's configuration file).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub tenant: String,
    pub url: String,
    /// An environment variable holding a bearer token for the receiver.
    #[serde(default)]
    pub token_env: Option<String>,
}

impl Webhook {
    fn cursor_name(&self) -> String {
        format!("webhook:{}:{}", self.tenant, self.url)
    }
}

async fn cursor(db: &Db, name: &str) -> Result<Cursor, ServerError> {
    let row = sqlx::query("SELECT audit_seq, report_id FROM export_cursors WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => Cursor {
            audit_seq: get::<i64>(&r, "audit_seq")? as u64,
            report_id: get(&r, "report_id")?,
        },
        None => Cursor::default(),
    })
}

async fn save_cursor(db: &Db, name: &str, c: Cursor, now: i64) -> Result<(), ServerError> {
    sqlx::query(
        "INSERT INTO export_cursors (name, audit_seq, report_id, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET audit_seq = excluded.audit_seq, report_id = excluded.report_id, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(c.audit_seq as i64)
    .bind(c.report_id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

fn post(url: &str, token: Option<&str>, body: String) -> Result<(), String> {
    match crate::outbound::post_lines(url, token, body) {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(format!("the receiver answered {status}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends everything the webhook has not acknowledged, page by page; returns how many lines
/// went. The cursor moves after each acknowledged page only.
pub async fn deliver(db: &Db, hook: &Webhook, now: i64) -> Result<usize, ServerError> {
    let name = hook.cursor_name();
    let token = match &hook.token_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            ServerError::Invalid(format!("the webhook's token variable ${var} is not set"))
        })?),
        None => None,
    };
    let mut sent = 0;
    loop {
        let at = cursor(db, &name).await?;
        let p = page(db, &hook.tenant, at, audit::MAX_PAGE).await?;
        if p.lines.is_empty() {
            return Ok(sent);
        }
        let (url, token, body) = (hook.url.clone(), token.clone(), p.body());
        tokio::task::spawn_blocking(move || post(&url, token.as_deref(), body))
            .await
            .map_err(|e| ServerError::Invalid(format!("webhook: {e}")))?
            .map_err(|e| ServerError::Invalid(format!("webhook {}: {e}", hook.url)))?;
        save_cursor(db, &name, p.next, now).await?;
        sent += p.lines.len();
    }
}

/// Delivers to every webhook every `interval` until `stop` is set; a receiver that fails is
/// tried again later with the same entries (backing off to a minute).
pub async fn run(
    db: Db,
    hooks: Vec<Webhook>,
    interval: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let mut backoff = vec![interval; hooks.len()];
    let mut due = vec![tokio::time::Instant::now(); hooks.len()];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for (i, hook) in hooks.iter().enumerate() {
            if tokio::time::Instant::now() < due[i] {
                continue;
            }
            match deliver(&db, hook, crate::now()).await {
                Ok(_) => backoff[i] = interval,
                Err(e) => {
                    eprintln!("hpl-server: export to {}: {e} (trying again)", hook.url);
                    backoff[i] = (backoff[i] * 2).min(Duration::from_secs(60));
                }
            }
            due[i] = tokio::time::Instant::now() + backoff[i];
        }
        tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
    }
}
