//! The console's pages, each a function of the database and the session (maud). No script:
//! forms post, links navigate, charts are inline SVG.

use super::Session;
use crate::rbac::{self, Permission, Role};
use crate::{approvals, audit, devices, health, metrics, oidc, rings, Db, ServerError};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

pub const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6475; --line:#dde1e8; --bg:#f6f7f9; --accent:#2c5fd8;
  --ok:#2e9d5b; --warn:#d99a1c; --bad:#d2463c; --unk:#9aa3b2; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:1.5rem; align-items:center; padding:.7rem 1.5rem; background:#fff; border-bottom:1px solid var(--line); }
header .brand { font-weight:700; }
header nav a { margin-right:1rem; color:var(--muted); text-decoration:none; }
header nav a.here { color:var(--fg); font-weight:600; }
header .who { margin-left:auto; color:var(--muted); }
header form { display:inline; }
main { padding:1.2rem 1.5rem; max-width:80rem; }
h1 { font-size:1.35rem; margin:.2rem 0 1rem; }
h2 { font-size:1.05rem; margin:1.5rem 0 .6rem; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); background:#fafbfc; }
.pill { display:inline-block; padding:0 .45rem; border-radius:.7rem; font-size:12px; background:#eef1f6; }
.pill.paused, .pill.rejected, .pill.failed, .pill.non_compliant { background:#fbe4e2; color:#8d2019; }
.pill.pending, .pill.warning { background:#fdf1d6; color:#7a5200; }
.pill.applied, .pill.compliant { background:#dcf3e5; color:#1d6b3c; }
.flash { padding:.6rem .8rem; border-radius:.3rem; margin-bottom:1rem; background:#dcf3e5; }
.flash.error { background:#fbe4e2; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(17rem, 1fr)); gap:1rem; }
.card { background:#fff; border:1px solid var(--line); border-radius:.4rem; padding:.8rem 1rem; }
.card h3 { margin:0 0 .4rem; font-size:1rem; }
.muted { color:var(--muted); }
button { font:inherit; padding:.25rem .7rem; border:1px solid var(--line); border-radius:.3rem; background:#fff; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
input[type=text] { font:inherit; padding:.25rem .4rem; border:1px solid var(--line); border-radius:.3rem; }
svg text { font-size:10px; fill:var(--muted); }
.legend span { margin-right:.8rem; }
.legend i { display:inline-block; width:.7rem; height:.7rem; margin-right:.25rem; vertical-align:-1px; }
code { font-size:12px; }
.st-compliant { fill:var(--ok); background:var(--ok); }
.st-warning { fill:var(--warn); background:var(--warn); }
.st-non_compliant { fill:var(--bad); background:var(--bad); }
.st-unknown { fill:var(--unk); background:var(--unk); }
"#;

fn layout(title: &str, s: &Session, tenant: &str, here: &str, body: Markup) -> Markup {
    let nav: [(&str, &str, Permission); 5] = [
        ("", "Rollout", Permission::ViewRollout),
        ("/approvals", "Approvals", Permission::ViewRollout),
        ("/devices", "Devices", Permission::ViewDevices),
        ("/audit", "Audit trail", Permission::ViewAudit),
        ("/access", "Users & roles", Permission::ViewAccess),
    ];
    let roles: Vec<&str> = s.who.roles.iter().map(|r| r.as_str()).collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (tenant) " · hpl" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header {
                    span.brand { "hpl · " (tenant) }
                    nav {
                        @for (path, label, p) in nav {
                            @if rbac::authorize(&s.who, Some(tenant), p).is_ok() {
                                a class=(if here == path { "here" } else { "" }) href={ "/console/" (tenant) (path) } { (label) }
                            }
                        }
                    }
                    span.who {
                        (s.who.display.as_deref().unwrap_or(&s.who.id)) " (" (roles.join(", ")) ") "
                        form method="post" action={ "/console/" (tenant) "/logout" } {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that says why not.
pub fn refusal(why: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Not allowed · hpl" } link rel="stylesheet" href="/console/static/console.css"; }
            body { main { h1 { "Not allowed" } p.flash.error id="refusal" { (why) } } }
        }
    }
}

pub fn signed_out(tenant: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Signed out · hpl" } link rel="stylesheet" href="/console/static/console.css"; }
            body { main { h1 { "Signed out" } p { a href={ "/console/" (tenant) "/login" } { "Sign in again" } } } }
        }
    }
}

fn when(at: i64) -> String {
    hpl_runtime::eval::timestamp(at)
}

fn pill(class: &str, text: &str) -> Markup {
    html! { span class={ "pill " (class) } { (text) } }
}

/// The record states, in stacking order (each a class of the stylesheet: the CSP allows no
/// inline style).
const STATES: [&str; 4] = ["compliant", "warning", "non_compliant", "unknown"];

/// Records of one day (days since 1970) by state, in [`STATES`] order.
type Day = (i64, [u64; 4]);

/// Records per day and state for one ring: stacked bars, newest on the right.
fn chart(days: &[Day]) -> Markup {
    let (w, h, bar) = (280.0_f64, 90.0_f64, 14.0_f64);
    let max = days
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    html! {
        svg width=(w) height=(h + 16.0) viewBox={ "0 0 " (w) " " (h + 16.0) } role="img" aria-label="records per day by state" {
            @for (i, (day, counts)) in days.iter().enumerate() {
                @let x = 4.0 + i as f64 * (bar + 4.0);
                @let mut y = h;
                @for (k, state) in STATES.iter().enumerate() {
                    @let height = counts[k] as f64 / max * (h - 4.0);
                    @if counts[k] > 0 {
                        @let top = { y -= height; y };
                        rect class={ "st-" (state) } x=(x) y=(top) width=(bar) height=(height) {
                            title { (hpl_runtime::eval::timestamp(day * 86400)[..10]) ": " (counts[k]) " " (state) }
                        }
                    }
                }
                @if i % 3 == 0 {
                    text x=(x) y=(h + 12.0) { (&hpl_runtime::eval::timestamp(day * 86400)[5..10]) }
                }
            }
        }
    }
}

async fn history(db: &Db, tenant: &str) -> Result<Vec<(String, Vec<Day>)>, ServerError> {
    let rows = sqlx::query(
        "SELECT ring, received_at / 86400 AS day, state, COUNT(*) AS n FROM reports WHERE tenant = $1 AND kind = 'record' GROUP BY ring, received_at / 86400, state ORDER BY ring, day",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    let mut out: Vec<(String, Vec<Day>)> = Vec::new();
    for r in &rows {
        let ring: String = crate::db::get(r, "ring")?;
        let day: i64 = crate::db::get(r, "day")?;
        let state: Option<String> = crate::db::get(r, "state")?;
        let n: i64 = crate::db::get(r, "n")?;
        let k = STATES
            .iter()
            .position(|s| Some(*s) == state.as_deref())
            .unwrap_or(3);
        if out.last().is_none_or(|(name, _)| *name != ring) {
            out.push((ring.clone(), Vec::new()));
        }
        let days = &mut out.last_mut().expect("pushed").1;
        if days.last().is_none_or(|(d, _)| *d != day) {
            days.push((day, [0; 4]));
        }
        days.last_mut().expect("pushed").1[k] += n as u64;
    }
    for (_, days) in &mut out {
        let keep = days.len().saturating_sub(14);
        days.drain(..keep);
    }
    Ok(out)
}

pub async fn overview(db: &Db, s: &Session, tenant: &str) -> Result<Markup, ServerError> {
    let all = rings::rings(db, tenant).await?;
    let m = metrics::tenant(db, tenant).await?;
    let releases = rings::releases(db, tenant).await?;
    let pending =
        approvals::list(db, tenant, Some(approvals::State::Pending), crate::now()).await?;
    let past = history(db, tenant).await?;
    let mut figures = Vec::new();
    for r in &all {
        figures.push(match r.release {
            Some(v) => health::figures(db, tenant, &r.name, v, r.previous_release)
                .await
                .ok(),
            None => None,
        });
    }
    let body = html! {
        h1 { "Rollout" }
        @if !pending.is_empty() {
            p.flash { (pending.len()) " promotion request(s) wait for approval — " a href={ "/console/" (tenant) "/approvals" } { "review" } }
        }
        div.cards {
            @for (r, f) in all.iter().zip(&figures) {
                div.card id={ "ring-" (r.name) } {
                    h3 { (r.name) " " @if r.paused { (pill("paused", "paused")) } }
                    p {
                        span.release { @match r.release { Some(v) => { "release " (v) }, None => { "no release" } } }
                        span.muted { " · revision " (r.revision) " · " (r.members.describe()) }
                    }
                    @if let Some(rm) = m.rings.iter().find(|x| x.ring == r.name) {
                        p.muted { (rm.enrolled) " enrolled" }
                        @for rel in &rm.releases {
                            p { "release " (rel.release) ": " (rel.devices) " devices, "
                                (format!("{:.0}", rel.percent.compliant)) " % compliant, "
                                (format!("{:.0}", rel.percent.non_compliant)) " % non-compliant" }
                        }
                    }
                    @if let Some(f) = f {
                        p {
                            @if f.passes() { (pill("compliant", "gate passes")) }
                            @else { (pill("non_compliant", "gate refuses")) }
                            span.muted { " " (f.records) " records" }
                        }
                        @for why in &f.failures { p.muted { (why) } }
                    }
                    @if let Some((_, days)) = past.iter().find(|(n, _)| *n == r.name) {
                        (chart(days))
                    }
                }
            }
        }
        p.legend.muted {
            @for state in STATES { span { i class={ "st-" (state) } {} (state) } }
            " records per day, by state"
        }
        h2 { "Releases" }
        table {
            tr { th { "release" } th { "hash" } th { "published" } th { "by" } }
            @for r in &releases {
                tr {
                    td { (r["bundle_version"]) }
                    td { code { (r["bundle_hash"].as_str().unwrap_or("")) } }
                    td { (when(r["published_at"].as_i64().unwrap_or(0))) }
                    td { (r["published_by"].as_str().unwrap_or("")) }
                }
            }
        }
    };
    Ok(layout("Rollout", s, tenant, "", body))
}

pub async fn approvals(
    db: &Db,
    s: &Session,
    tenant: &str,
    done: Option<&str>,
    error: Option<&str>,
) -> Result<Markup, ServerError> {
    let list = approvals::list(db, tenant, None, crate::now()).await?;
    let required = approvals::required(db, tenant).await?;
    let may_approve = rbac::authorize(&s.who, Some(tenant), Permission::Approve).is_ok();
    let body = html! {
        h1 { "Approvals" }
        @if let Some(d) = done { p.flash id="flash" { (d) } }
        @if let Some(e) = error { p.flash.error id="flash" { (e) } }
        p.muted { "A promotion needs " (required) " approval(s) by admins or owners other than the requester." }
        table {
            tr { th { "request" } th { "release → ring" } th { "state" } th { "requested" } th { "votes" } th {} }
            @for r in &list {
                tr id={ "request-" (r.id) } {
                    td { (r.id) }
                    td { "release " (r.release) " → " (r.ring) }
                    td { (pill(r.state.as_str(), r.state.as_str())) @if let Some(o) = &r.outcome { br; span.muted { (o) } } }
                    td { (r.requested_by) br; span.muted { (when(r.requested_at)) } }
                    td { (r.approvals()) " of " (r.required)
                        @for v in &r.votes { br; span.muted { (v.approver) ": " (v.decision.as_str()) @if let Some(c) = &v.comment { " — " (c) } } } }
                    td {
                        @if r.state == approvals::State::Pending && may_approve && r.requested_by != s.who.id {
                            form method="post" action={ "/console/" (tenant) "/approvals/" (r.id) "/approve" } {
                                input type="hidden" name="csrf" value=(s.csrf);
                                input type="text" name="comment" placeholder="comment";
                                " "
                                button.primary type="submit" id={ "approve-" (r.id) } { "Approve" }
                            }
                            form method="post" action={ "/console/" (tenant) "/approvals/" (r.id) "/reject" } {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" id={ "reject-" (r.id) } { "Reject" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout("Approvals", s, tenant, "/approvals", body))
}

pub async fn devices(db: &Db, s: &Session, tenant: &str) -> Result<Markup, ServerError> {
    let list = devices::list(db, tenant, None, 1000).await?;
    let body = html! {
        h1 { "Devices" }
        table {
            tr { th { "serial" } th { "ring" } th { "last record" } th { "last seen" } th { "enrolled" } }
            @for d in &list {
                tr {
                    td { (d.serial) br; span.muted { code { (d.id) } } }
                    td { (d.ring) }
                    td {
                        @match &d.last_record {
                            Some(r) => {
                                @let state = r["state"].as_str().unwrap_or("unknown");
                                (pill(state, state)) " "
                                span.muted { "bundle " (r["bundle_version"]) " · " (r["evaluated_at"].as_str().unwrap_or("")) }
                            },
                            None => { span.muted { "none yet" } },
                        }
                    }
                    td { @match d.last_seen { Some(t) => { (when(t)) }, None => { "never" } } }
                    td { (when(d.enrolled_at)) @if d.revoked { " " (pill("rejected", "revoked")) } }
                }
            }
        }
    };
    Ok(layout("Devices", s, tenant, "/devices", body))
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
}

pub async fn audit(
    db: &Db,
    s: &Session,
    tenant: &str,
    q: &AuditQuery,
) -> Result<Markup, ServerError> {
    let filter = audit::Filter {
        action: q.action.clone().filter(|a| !a.is_empty()),
        actor: q.actor.clone().filter(|a| !a.is_empty()),
        ..audit::Filter::default()
    };
    let mut entries = audit::entries(db, tenant, &filter).await?;
    entries.reverse();
    let verified = audit::verify(db, tenant).await?;
    let body = html! {
        h1 { "Audit trail" }
        @match &verified {
            Ok(v) => p.flash id="chain" { "The chain verifies: " (v.entries) " entries, head " code { (v.head) } },
            Err(b) => p.flash.error id="chain" { "The chain is broken at entry " (b.seq) ": " (b.reason) },
        }
        form method="get" {
            "action " input type="text" name="action" value=(q.action.as_deref().unwrap_or(""));
            " actor " input type="text" name="actor" value=(q.actor.as_deref().unwrap_or(""));
            " " button type="submit" { "Filter" }
        }
        table {
            tr { th { "#" } th { "time" } th { "action" } th { "subject" } th { "actor" } th { "after" } }
            @for e in &entries {
                tr.entry {
                    td { (e.seq) }
                    td { (when(e.at)) }
                    td { (e.action) @if e.emergency { " " (pill("paused", "emergency")) } }
                    td { (e.subject) }
                    td { (e.actor) }
                    td { code { (e.after.as_deref().unwrap_or("").chars().take(160).collect::<String>()) } }
                }
            }
        }
    };
    Ok(layout("Audit trail", s, tenant, "/audit", body))
}

pub async fn access(db: &Db, s: &Session, tenant: &str) -> Result<Markup, ServerError> {
    let sso = oidc::sso(db, tenant).await?;
    let people = oidc::operators(db, tenant).await?;
    let credentials = crate::auth::credentials(db, tenant).await?;
    let body = html! {
        h1 { "Users & roles" }
        @if let Some(c) = &sso {
            p { "Sign-in: " code { (c.issuer) } " (client " code { (c.client_id) } "); roles from the claim " code { (c.roles_claim) } }
            table {
                tr { th { "group" } th { "role" } }
                @for (g, r) in &c.role_map { tr { td { (g) } td { (r.as_str()) } } }
            }
        } @else {
            p.muted { "No SSO configured." }
        }
        h2 { "People who signed in" }
        table {
            tr { th { "operator" } th { "roles" } th { "first seen" } th { "last seen" } }
            @for p in &people {
                tr { td { (p.display.as_deref().unwrap_or("")) br; span.muted { (p.id) } }
                     td { (p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                     td { (when(p.first_seen)) } td { (when(p.last_seen)) } }
            }
        }
        h2 { "Credentials" }
        table {
            tr { th { "id" } th { "kind" } th { "role" } th { "created" } th { "revoked" } }
            @for c in &credentials {
                tr { td { code { (c.id) } } td { (c.kind) } td { (c.role.as_deref().unwrap_or("")) }
                     td { (when(c.created_at)) } td { @if let Some(t) = c.revoked_at { (when(t)) } } }
            }
        }
        h2 { "What each role may do" }
        table {
            tr { th { "permission" } @for r in Role::ALL { th { (r.as_str()) } } }
            @for (p, roles) in rbac::matrix() {
                tr { td { code { (p.as_str()) } } @for r in Role::ALL { td { @if roles.contains(&r) { "✓" } @else { "—" } } } }
            }
        }
    };
    Ok(layout("Users & roles", s, tenant, "/access", body))
}
