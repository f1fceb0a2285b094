//! `hpl report`: exact counts on a generated fleet, the same answer on any number of workers,
//! readable output on the examples, and an HTML page a browser shows.

mod common;
use common::hpl;
use hpl_runtime::device::Device;
use hpl_runtime::inventory::Inventory;
use std::collections::BTreeMap;
use std::path::PathBuf;

const AT: &str = "2026-11-29T02:00:00Z";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hpl-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn report_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec![
        "report",
        "--policy",
        "../examples/acme",
        "--at",
        AT,
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let (exit, out, err) = hpl(&all);
    assert_eq!(exit, 0, "{err}");
    serde_json::from_str(&out).expect("json")
}

/// 10,000 generated devices and one line that is not an inventory: every count of the report
/// equals a plain sequential count over the same records.
#[test]
fn a_fleet_of_ten_thousand_devices_is_counted_exactly() {
    let dir = temp("fleet");
    let file = dir.join("fleet.jsonl");
    let n = 10_000;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        hpl_tests::fleet::write_jsonl(&mut w, n, 0).unwrap();
        use std::io::Write;
        w.write_all(b"{\"schema\": \"hpl.inventory.v1\", \"truncated\n")
            .unwrap();
    }
    let v = report_json(&["--inventories", file.to_str().unwrap(), "--jobs", "2"]);

    // The same records, one at a time, counted by hand.
    let bundle = hpl_tests::fuzzing::acme().clone();
    let device = Device::with_bundle(bundle, None);
    let at = hpl_runtime::inventory::parse_timestamp(AT).unwrap();
    let templates = hpl_tests::fleet::templates();
    let mut states: BTreeMap<&str, u64> = BTreeMap::new();
    let mut rings: BTreeMap<String, u64> = BTreeMap::new();
    let mut telnet = 0;
    let mut platform = 0;
    let mut stale_or_unknown_scope = 0;
    for i in 0..n {
        let json = hpl_tests::fleet::device(&templates, i, 0);
        let inv = Inventory::from_json(&json).unwrap();
        let r = device.evaluate(&inv, at);
        *states.entry(r.state.as_str()).or_default() += 1;
        *rings.entry(inv.ring.clone().unwrap()).or_default() += 1;
        telnet += u64::from(
            r.violations
                .iter()
                .any(|x| x.package == "telnet" && &*x.manager == "homebrew_formula"),
        );
        platform += u64::from(inv.scopes.team.as_deref() == Some("platform"));
        stale_or_unknown_scope += u64::from(!r.unknown_reasons.is_empty());
    }
    *states.entry("unknown").or_default() += 1; // the unreadable line

    assert_eq!(v["devices"], n as u64 + 1);
    for (state, count) in &states {
        assert_eq!(v["states"][state], *count, "{state}");
    }
    assert_eq!(v["by_scope"]["org:acme"]["compliant"], states["compliant"]);
    let platform_total: u64 = ["compliant", "warning", "unknown", "non_compliant"]
        .iter()
        .map(|s| v["by_scope"]["team:platform"][s].as_u64().unwrap())
        .sum();
    assert_eq!(platform_total, platform);
    for (ring, count) in &rings {
        let total: u64 = ["compliant", "warning", "unknown", "non_compliant"]
            .iter()
            .map(|s| v["by_ring"][ring][s].as_u64().unwrap())
            .sum();
        assert_eq!(total, *count, "{ring}");
    }
    let telnet_drift = v["top_drifts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["package"] == "telnet" && d["category"] == "present_denied")
        .expect("telnet is among the top drifts");
    assert_eq!(telnet_drift["devices"], telnet);
    assert_eq!(telnet_drift["rules"][0]["source"], "baseline.hpl:23:3");
    let unknown_devices: u64 = v["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["devices"].as_u64().unwrap())
        .max()
        .unwrap_or(0);
    assert!(unknown_devices <= stale_or_unknown_scope);
    assert_eq!(v["unreadable"]["devices"], 1);
    let source = v["unreadable"]["sample"][0]["device"].as_str().unwrap();
    assert!(source.ends_with("fleet.jsonl:10001"), "{source}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_report_does_not_depend_on_the_number_of_workers() {
    let dir = temp("jobs");
    let file = dir.join("fleet.jsonl");
    hpl_tests::fleet::write_jsonl(std::fs::File::create(&file).unwrap(), 600, 0).unwrap();
    let path = file.to_str().unwrap();
    let one = report_json(&["--inventories", path, "--jobs", "1"]);
    let four = report_json(&["--inventories", path, "--jobs", "4"]);
    assert_eq!(one, four);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_fleet_report_reads_well() {
    let (exit, out, err) = hpl(&[
        "report",
        "--policy",
        "../examples/acme",
        "--inventories",
        "../examples/devices",
        "--at",
        AT,
    ]);
    assert_eq!(exit, 0, "{err}");
    insta::assert_snapshot!("report_examples_human", out);
    let mut v = report_json(&["--inventories", "../examples/devices"]);
    assert_eq!(v["schema"], "hpl.report.v1");
    assert!(v["bundle"]["hash"].as_str().unwrap().starts_with("sha256:"));
    v["bundle"]["hash"] = "[hash]".into();
    insta::assert_json_snapshot!("report_examples_json", v);
}

#[test]
fn inputs_that_cannot_be_read_are_errors_or_unknown_never_compliant() {
    let (exit, _, err) = hpl(&[
        "report",
        "--policy",
        "../examples/acme",
        "--inventories",
        "no/such/dir",
    ]);
    assert_eq!(exit, 2);
    assert!(err.contains("no/such/dir"), "{err}");
    let dir = temp("bad");
    std::fs::write(dir.join("a.json"), "{\"schema\": \"hpl.inventory.v1\"}").unwrap();
    std::fs::write(dir.join("b.json"), [0xff, 0xfe]).unwrap();
    let v = report_json(&["--inventories", dir.to_str().unwrap()]);
    assert_eq!(v["devices"], 2);
    assert_eq!(v["states"]["unknown"], 2);
    assert_eq!(v["states"]["compliant"], 0);
    assert_eq!(v["unreadable"]["devices"], 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The HTML report in headless Chromium (Debian's `chromium`; `.ci/run` installs it): the
/// page shows the numbers, the charts and the tables, and loads nothing from anywhere.
#[test]
fn the_html_report_shows_its_numbers_and_charts_in_a_browser() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect(
            "Debian's chromium is needed for this test: apt-get install chromium (.ci/run does)",
        );
    let dir = temp("html");
    let page = dir.join("report.html");
    let (exit, _, err) = hpl(&[
        "report",
        "--policy",
        "../examples/acme",
        "--inventories",
        "../examples/devices",
        "--inventories",
        "../examples/devices",
        "--at",
        AT,
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(exit, 0, "{err}");
    let html = std::fs::read_to_string(&page).unwrap();
    for forbidden in ["http://", "https://", "<script", "src="] {
        assert!(
            !html.contains(forbidden),
            "the page must be self-contained: {forbidden}"
        );
    }
    let profile = dir.join("profile");
    let output = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("Fleet compliance · acme"), "{dom}");
    assert!(dom.contains("27.3%"), "the compliant share is shown");
    assert!(
        dom.contains(r#"id="kpi-non_compliant"><b style="color:#c62828">6</b>"#),
        "{dom}"
    );
    assert!(dom.contains("State by scope") && dom.contains("aria-label=\"state by scope\""));
    assert!(dom.contains("Trend: compliant or warning"));
    assert!(
        dom.contains("present_denied <code>homebrew_formula:telnet</code>"),
        "{dom}"
    );
    assert!(dom.contains("stale_inventory"));
    let rects = dom.matches("<rect").count();
    assert!(rects >= 20, "charts are drawn ({rects} bars)");
    // And it renders to pixels.
    let shot = dir.join("report.png");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", shot.display()),
            "--window-size=1100,1600",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium runs");
    assert!(status.status.success());
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The server summarises the records devices upload as JSON; for every generated device
/// that summary equals the one `hpl report` makes of the record itself (one aggregation, so
/// the same records give the same numbers).
#[test]
fn a_record_uploaded_as_json_summarises_like_the_record_itself() {
    use hpl_runtime::summary::{scope_labels, DeviceSummary};
    let device = Device::with_bundle(hpl_tests::fuzzing::acme().clone(), None);
    let at = hpl_runtime::inventory::parse_timestamp(AT).unwrap();
    let templates = hpl_tests::fleet::templates();
    let mut with_drifts = 0;
    for i in 0..500 {
        let inv = Inventory::from_json(&hpl_tests::fleet::device(&templates, i, 0)).unwrap();
        let record = device.evaluate(&inv, at);
        let direct = DeviceSummary::of(&inv, &record, "acme");
        let json = serde_json::to_value(&record).unwrap();
        let uploaded = DeviceSummary::from_record_json(
            &json,
            scope_labels(&inv, "acme"),
            inv.ring.clone().unwrap(),
        )
        .unwrap();
        assert_eq!(uploaded, direct, "device {i}");
        with_drifts += usize::from(!direct.drifts.is_empty());
    }
    assert!(with_drifts > 100, "the sample has drifts to compare");
    let bad = serde_json::json!({"schema": "hpl.record.v1", "state": "fine"});
    assert_eq!(
        DeviceSummary::from_record_json(&bad, vec![], "x".into()).unwrap_err(),
        "the record's state `fine` is not a state".to_string()
    );
}
