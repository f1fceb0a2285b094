//! The admin console in headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs), driven over WebDriver: sign in through the local identity provider,
//! approve a pending promotion as an admin who did not request it, see the ring move and the
//! audit entry; a viewer sees no approve button and cannot open the audit trail; a forged POST
//! is refused. Screenshots of the main pages go to target/console-*.png (and to docs/images
//! with `HPL_UPDATE_SCREENSHOTS=1`).

mod common;

use common::idp::Provider;
use common::{bundle, policy_key, public_text, trust, NOW};
use hpl_server::http::App;
use hpl_server::{approvals, auth, rings, Db};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

struct Driver {
    base: String,
    session: String,
    child: Child,
}

impl Driver {
    fn start() -> Driver {
        assert!(
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists(),
            "Debian's chromium and chromium-driver are needed for this test: apt-get install chromium chromium-driver (.ci/run does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http().get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"],
            },
        }}});
        let v: serde_json::Value = http()
            .post(&format!("{base}/session"))
            .send_json(&caps)
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Driver {
            base,
            session,
            child,
        }
    }

    fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut r = match method {
            "GET" => http().get(&url).call(),
            "DELETE" => http().delete(&url).call(),
            _ => http().post(&url).send_json(&body),
        }
        .unwrap();
        r.body_mut().read_json::<serde_json::Value>().unwrap()["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", serde_json::json!({ "url": url }));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", serde_json::Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn source(&self) -> String {
        self.call("GET", "/source", serde_json::Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            "POST",
            "/elements",
            serde_json::json!({ "using": "css selector", "value": css }),
        );
        v.as_array()?
            .first()?
            .as_object()?
            .values()
            .next()?
            .as_str()
            .map(str::to_string)
    }

    fn text(&self, css: &str) -> String {
        let el = self
            .find(css)
            .unwrap_or_else(|| panic!("no `{css}` on {}", self.url()));
        self.call(
            "GET",
            &format!("/element/{el}/text"),
            serde_json::Value::Null,
        )
        .as_str()
        .unwrap()
        .to_string()
    }

    fn click(&self, css: &str) {
        let el = self
            .find(css)
            .unwrap_or_else(|| panic!("no `{css}` on {}", self.url()));
        self.call(
            "POST",
            &format!("/element/{el}/click"),
            serde_json::json!({}),
        );
    }

    fn cookie(&self, name: &str) -> Option<String> {
        let v = self.call("GET", &format!("/cookie/{name}"), serde_json::Value::Null);
        v["value"].as_str().map(str::to_string)
    }

    fn sign_out(&self) {
        self.call("DELETE", "/cookie", serde_json::Value::Null);
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let v = self.call("GET", "/screenshot", serde_json::Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        std::fs::write(target.join(format!("console-{name}.png")), &png).unwrap();
        if std::env::var_os("HPL_UPDATE_SCREENSHOTS").is_some() {
            std::fs::write(format!("../docs/images/console-{name}.png"), &png).unwrap();
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http()
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the page's source has `needle` (pages load after a click).
fn wait_for(d: &Driver, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let source = d.source();
        if source.contains(needle) {
            return source;
        }
        assert!(
            Instant::now() < deadline,
            "`{needle}` never showed on {}:\n{source}",
            d.url()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sign_in(d: &Driver, server: &str, user: &str) {
    d.sign_out();
    d.goto(&format!("{server}/console/acme"));
    wait_for(d, "Sign in as");
    d.click(&format!("#as-{user}"));
    wait_for(d, "hpl · acme");
}

#[test]
fn the_console_signs_in_approves_and_shows_the_ring_move_and_the_audit_entry() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let file = std::env::temp_dir().join(format!("hpl-console-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let db = rt
        .block_on(Db::connect(&format!("sqlite://{}", file.display())))
        .unwrap();
    let init = rt.block_on(rings::init(&db, NOW)).unwrap();
    let owner = rt
        .block_on(auth::authenticate(&db, &init.owner_token))
        .unwrap();
    let enrollment = rt
        .block_on(rings::add_tenant(
            &db,
            &owner,
            "acme",
            &public_text(&policy_key()),
            NOW,
        ))
        .unwrap();
    let idp = rt.block_on(Provider::start("hpl-acme"));
    for (user, group) in [
        ("alice", "hpl-admins"),
        ("bob", "hpl-admins"),
        ("olga", "hpl-operators"),
        ("vic", "hpl-viewers"),
    ] {
        idp.user(user, &[group]);
    }
    rt.block_on(trust(&db, &owner, "acme", &idp));
    rt.block_on(rings::publish(&db, &owner, "acme", &bundle(1), NOW))
        .unwrap();
    // Canary takes every device; eight of them report over five days (the chart's history).
    let everyone = hpl_server::membership::Members {
        all: true,
        ..Default::default()
    };
    rt.block_on(rings::set_members(
        &db, &owner, "acme", "canary", everyone, NOW,
    ))
    .unwrap();
    let templates = [
        "design-compliant",
        "design-warning",
        "platform-noncompliant",
        "build-agent-compliant",
        "web-observe",
        "security-lab",
        "pilot-mixed",
        "contractor-web",
    ];
    let b1 = bundle(1);
    for (i, template) in templates.iter().enumerate() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[40 + i as u8; 32]);
        let serial = format!("C02CONSOLE{i:02}");
        let device = rt.block_on(common::enroll(&db, &enrollment, &key, &serial, &[]));
        for day in 0..5i64 {
            let batch = hpl_server::devices::Batch {
                items: vec![hpl_server::devices::Item {
                    task_id: format!("day-{day}"),
                    seq: 0,
                    kind: hpl_server::devices::ItemKind::Record,
                    scopes: None,
                    body: common::record(template, &serial, &b1),
                }],
            };
            let at = hpl_server::now() - (4 - day) * 86400;
            rt.block_on(hpl_server::devices::ingest(&db, &device, &batch, at))
                .unwrap();
        }
    }
    let verifier = Arc::new(hpl_server::oidc::Verifier::default());
    let olga = rt
        .block_on(verifier.verify(&db, &idp.token("olga", &["hpl-operators"]), None))
        .unwrap()
        .principal();
    let now = hpl_server::now();
    let request = rt
        .block_on(approvals::request_promotion(
            &db, &olga, "acme", "canary", 1, now,
        ))
        .unwrap();

    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    let app = App {
        db: db.clone(),
        verifier,
        console: Arc::new(hpl_server::console::Settings {
            public_url: server.clone(),
        }),
    };
    rt.spawn(hpl_server::http::serve_app(
        listener,
        app,
        std::future::pending(),
    ));

    let d = Driver::start();
    // Bob, an admin who did not ask, signs in and approves.
    sign_in(&d, &server, "bob");
    let page = d.source();
    assert!(
        page.contains("1 promotion request(s) wait for approval"),
        "{page}"
    );
    assert!(d.text("#ring-canary").contains("no release"));
    d.goto(&format!("{server}/console/acme/approvals"));
    wait_for(&d, "Approvals");
    d.screenshot("approvals");
    d.click(&format!("#approve-{}", request.id));
    wait_for(&d, &format!("request {} is applied", request.id));
    d.goto(&format!("{server}/console/acme"));
    wait_for(&d, "Rollout");
    assert!(
        d.text("#ring-canary").contains("release 1"),
        "{}",
        d.text("#ring-canary")
    );
    d.screenshot("rollout");
    d.goto(&format!(
        "{server}/console/acme/audit?action=approval.approve"
    ));
    wait_for(&d, "Audit trail");
    let audit = d.source();
    assert!(
        audit.contains("oidc:acme:bob") && audit.contains("approval.approve"),
        "{audit}"
    );
    assert!(
        d.text("#chain").starts_with("The chain verifies"),
        "{}",
        d.text("#chain")
    );
    d.goto(&format!("{server}/console/acme/audit"));
    wait_for(&d, "ring.promote");
    d.screenshot("audit");
    d.goto(&format!("{server}/console/acme/access"));
    wait_for(&d, "bob@example.com");
    d.screenshot("access");

    // Answers carry the content security policy and are not cached.
    let bob = d
        .cookie(hpl_server::console::COOKIE)
        .expect("a session cookie");
    let r = http()
        .get(&format!("{server}/console/acme"))
        .header("cookie", &format!("{}={bob}", hpl_server::console::COOKIE))
        .call()
        .unwrap();
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");

    // A second request, which a viewer may see but not decide.
    let pilot = rt
        .block_on(approvals::request_promotion(
            &db, &olga, "acme", "pilot", 1, now,
        ))
        .unwrap();
    sign_in(&d, &server, "vic");
    d.goto(&format!("{server}/console/acme/approvals"));
    wait_for(&d, &format!("request-{}", pilot.id));
    assert!(
        d.find(&format!("#approve-{}", pilot.id)).is_none(),
        "a viewer has no approve button"
    );
    assert!(
        d.find("a[href='/console/acme/audit']").is_none(),
        "nor an audit link"
    );
    d.goto(&format!("{server}/console/acme/audit"));
    let refusal = d.text("#refusal");
    assert!(refusal.contains("view_audit"), "{refusal}");
    let vic = d.cookie(hpl_server::console::COOKIE).unwrap();

    // Forged POSTs: no session; a viewer's session; an admin's session without its CSRF token.
    sign_in(&d, &server, "alice");
    let alice = d.cookie(hpl_server::console::COOKIE).unwrap();
    let approve = format!("{server}/console/acme/approvals/{}/approve", pilot.id);
    for (who, cookie, form) in [
        ("nobody", None, "csrf=x"),
        ("a viewer", Some(&vic), "csrf=x"),
        ("an admin without the token", Some(&alice), "comment=forged"),
        ("an admin with another token", Some(&alice), "csrf=0000"),
    ] {
        let mut req = http()
            .post(&approve)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header("cookie", &format!("{}={c}", hpl_server::console::COOKIE));
        }
        let status = req.send(form).unwrap().status().as_u16();
        assert_eq!(status, 403, "{who}");
    }
    let still = rt
        .block_on(approvals::get_request(&db, "acme", pilot.id))
        .unwrap();
    assert_eq!(
        still.state,
        approvals::State::Pending,
        "no forged POST decided it"
    );
    // A replayed sign-in callback is refused.
    let r = http()
        .get(&format!("{server}/console/callback?code=x&state=forged"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    drop(d);
    let _ = std::fs::remove_file(&file);
}
