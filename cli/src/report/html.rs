//! The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched),
//! so it can be attached to a ticket or opened offline.

use super::Report;
use hpl_runtime::summary::StateCounts;
use std::fmt::Write as _;

const COLORS: [(&str, &str); 4] = [
    ("compliant", "#2e7d32"),
    ("warning", "#f9a825"),
    ("unknown", "#757575"),
    ("non_compliant", "#c62828"),
];

/// Text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn parts(c: &StateCounts) -> [u64; 4] {
    [c.compliant, c.warning, c.unknown, c.non_compliant]
}

/// Scopes in the order of levels, then by name.
pub fn scope_order(scope: &str) -> (u8, &str) {
    let level = match scope.split(':').next().unwrap_or("") {
        "org" => 0,
        "department" => 1,
        "team" => 2,
        "environment" => 3,
        "device_group" => 4,
        _ => 5,
    };
    (level, scope)
}

/// Stacked horizontal bars, one per row, each state a segment.
fn stacked_bars(rows: &[(String, StateCounts)]) -> String {
    let (label_w, bar_w, row_h) = (220.0, 520.0, 24.0);
    let height = row_h * rows.len() as f64 + 10.0;
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="state by scope" width="{}" height="{height}" viewBox="0 0 {} {height}">"#,
        label_w + bar_w + 80.0,
        label_w + bar_w + 80.0
    );
    for (i, (label, c)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let total = c.total().max(1) as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" class="label">{}</text>"#,
            label_w - 8.0,
            y + 15.0,
            esc(label)
        );
        let mut x = label_w;
        for (n, (state, color)) in parts(c).iter().zip(COLORS) {
            if *n == 0 {
                continue;
            }
            let w = *n as f64 / total * bar_w;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="18" fill="{color}"><title>{} {state}: {n}</title></rect>"#,
                esc(label)
            );
            x += w;
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="value">{}</text>"#,
            label_w + bar_w + 6.0,
            y + 15.0,
            c.total()
        );
    }
    s.push_str("</svg>");
    s
}

fn drift_bars(r: &Report) -> String {
    let drifts = &r.last.fleet.top_drifts;
    let (label_w, bar_w, row_h) = (330.0, 380.0, 22.0);
    let max = drifts.iter().map(|d| d.devices).max().unwrap_or(1).max(1) as f64;
    let height = row_h * drifts.len() as f64 + 10.0;
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="top drifts" width="{}" height="{height}" viewBox="0 0 {} {height}">"#,
        label_w + bar_w + 60.0,
        label_w + bar_w + 60.0
    );
    for (i, d) in drifts.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let w = d.devices as f64 / max * bar_w;
        let label = format!("{} {}:{}", d.category, d.manager, d.package);
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" class="label">{}</text><rect x="{label_w}" y="{y}" width="{w:.1}" height="16" fill="#c62828"><title>{}: {} devices</title></rect><text x="{:.1}" y="{}" class="value">{}</text>"##,
            label_w - 8.0,
            y + 13.0,
            esc(&label),
            esc(&label),
            d.devices,
            label_w + w + 6.0,
            y + 13.0,
            d.devices
        );
    }
    s.push_str("</svg>");
    s
}

fn trend_chart(r: &Report) -> String {
    let (w, h, pad) = (720.0, 220.0, 40.0);
    let n = r.trend.len();
    // Room on the left for the axis labels, on the right for the last point's label.
    let (left, right) = (pad + 40.0, pad + 20.0);
    let x = |i: usize| left + (w - left - right) * i as f64 / (n.max(2) - 1) as f64;
    let y = |p: f64| h - pad - (h - 2.0 * pad) * p / 100.0;
    let mut s = format!(
        r#"<svg class="chart" role="img" aria-label="compliance trend" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    for p in [0.0, 50.0, 100.0] {
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" class="value">{p:.0}%</text>"##,
            w - right,
            y(p),
            y(p),
            left - 8.0,
            y(p) + 4.0
        );
    }
    let points: Vec<String> = r
        .trend
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{:.1},{:.1}", x(i), y(t.compliant_percent)))
        .collect();
    let _ = write!(
        s,
        r##"<polyline fill="none" stroke="#2e7d32" stroke-width="2.5" points="{}"/>"##,
        points.join(" ")
    );
    for (i, t) in r.trend.iter().enumerate() {
        let name = t.source.rsplit('/').next().unwrap_or(&t.source);
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#2e7d32"><title>{}: {:.1}%</title></circle><text x="{:.1}" y="{}" text-anchor="middle" class="value">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" class="value">{:.1}%</text>"##,
            x(i),
            y(t.compliant_percent),
            esc(&t.source),
            t.compliant_percent,
            x(i),
            h - pad + 18.0,
            esc(name),
            x(i),
            y(t.compliant_percent) - 10.0,
            t.compliant_percent
        );
    }
    s.push_str("</svg>");
    s
}

/// The report as one HTML page.
pub fn render(r: &Report) -> String {
    let f = &r.last.fleet;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hpl fleet report · {tenant}</title>
<style>
body{{font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#1b1b1b;padding:0 16px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0;padding-bottom:4px}}
.meta{{color:#616161}} .kpis{{display:flex;gap:12px;margin:16px 0;flex-wrap:wrap}}
.kpi{{border:1px solid #e0e0e0;border-radius:8px;padding:10px 14px;min-width:120px}}
.kpi b{{display:block;font-size:22px}} .kpi span{{color:#616161}}
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:4px 8px;border-bottom:1px solid #eee}}
td.n,th.n{{text-align:right;font-variant-numeric:tabular-nums}}
.chart .label,.chart .value{{font-size:12px;fill:#333}} .legend span{{display:inline-block;margin-right:14px}}
.legend i{{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}}
code{{font-size:12px;background:#f5f5f5;padding:1px 4px;border-radius:3px}}
</style></head><body>
<h1>Fleet compliance · {tenant}</h1>
<p class="meta">{devices} devices · bundle v{version} <code>{hash}</code> · evaluated {at} · from {source}</p>
<div class="kpis"><div class="kpi" id="kpi-compliant"><b>{pct:.1}%</b><span>compliant or warning</span></div>"#,
        tenant = esc(&r.tenant_id),
        devices = f.devices,
        version = r.bundle.version,
        hash = esc(&r.bundle.hash),
        at = esc(&r.last.evaluated_at),
        source = esc(&r.last.source),
        pct = f.compliant_percent,
    );
    for (n, (state, color)) in parts(&f.states).iter().zip(COLORS) {
        let _ = write!(
            s,
            r#"<div class="kpi" id="kpi-{state}"><b style="color:{color}">{n}</b><span>{}</span></div>"#,
            state.replace('_', "-")
        );
    }
    s.push_str("</div>\n<div class=\"legend\">");
    for (state, color) in COLORS {
        let _ = write!(
            s,
            r#"<span><i style="background:{color}"></i>{}</span>"#,
            state.replace('_', "-")
        );
    }
    s.push_str("</div>\n<h2 id=\"by-scope\">State by scope</h2>\n");
    let mut scopes: Vec<(String, StateCounts)> =
        f.by_scope.iter().map(|(k, v)| (k.clone(), *v)).collect();
    scopes.sort_by(|a, b| scope_order(&a.0).cmp(&scope_order(&b.0)));
    s.push_str(&stacked_bars(&scopes));
    s.push_str("\n<h2 id=\"by-ring\">State by ring</h2>\n");
    let rings: Vec<(String, StateCounts)> =
        f.by_ring.iter().map(|(k, v)| (k.clone(), *v)).collect();
    s.push_str(&stacked_bars(&rings));
    if r.trend.len() > 1 {
        s.push_str("\n<h2 id=\"trend\">Trend: compliant or warning</h2>\n");
        s.push_str(&trend_chart(r));
    }
    let _ = write!(
        s,
        "\n<h2 id=\"top-drifts\">Most common drifts <span class=\"meta\">({} distinct)</span></h2>\n",
        f.distinct_drifts
    );
    if f.top_drifts.is_empty() {
        s.push_str("<p>No drift: every device meets its policy.</p>");
    } else {
        s.push_str(&drift_bars(r));
        s.push_str(
            "<table><tr><th>drift</th><th class=\"n\">devices</th><th>rules behind it</th></tr>",
        );
        for d in &f.top_drifts {
            let rules: Vec<String> = d
                .rules
                .iter()
                .map(|x| {
                    format!(
                        "<code>{} {}</code> ({})",
                        esc(&x.policy),
                        esc(&x.source),
                        x.devices
                    )
                })
                .collect();
            let _ = write!(
                s,
                "<tr><td>{} <code>{}:{}</code></td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&d.category),
                esc(&d.manager),
                esc(&d.package),
                d.devices,
                rules.join(", ")
            );
        }
        s.push_str("</table>");
    }
    s.push_str("\n<h2 id=\"by-manager\">By manager</h2>\n<table><tr><th>manager</th><th class=\"n\">devices with violations</th><th class=\"n\">violations</th></tr>");
    for (m, c) in &f.by_manager {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(m),
            c.devices,
            c.violations
        );
    }
    s.push_str("</table>\n<h2 id=\"unknown\">Unknown state, and why</h2>\n");
    let groups: Vec<_> = f
        .unknown
        .iter()
        .chain((f.unreadable.devices > 0).then_some(&f.unreadable))
        .collect();
    if groups.is_empty() {
        s.push_str("<p>No device is in an unknown state.</p>");
    } else {
        s.push_str(
            "<table><tr><th>reason</th><th class=\"n\">devices</th><th>for example</th></tr>",
        );
        for u in groups {
            let sample: Vec<String> = u
                .sample
                .iter()
                .map(|d| format!("<code>{}</code>: {}", esc(&d.device), esc(&d.detail)))
                .collect();
            let _ = write!(
                s,
                "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&u.code),
                u.devices,
                sample.join("<br>")
            );
        }
        s.push_str("</table>");
    }
    s.push_str("\n<p class=\"meta\">Generated by <code>hpl report</code>.</p>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn scopes_sort_by_level() {
        let mut v = vec!["team:a", "org:x", "device_group:g", "department:d"];
        v.sort_by(|a, b| scope_order(a).cmp(&scope_order(b)));
        assert_eq!(v, ["org:x", "department:d", "team:a", "device_group:g"]);
    }
}
