//! The HTTP API over the same core, on SQLite (requests go straight to the router: no
//! socket, so the test needs no port).

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use ed25519_dalek::SigningKey;
use hpl_compiler::build::build_bundle;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_server::{rings, Db};
use tower::ServiceExt;

mod common;

const NOW: i64 = 1_795_914_000;

fn bundle(version: u64) -> Vec<u8> {
    let files =
        hpl_compiler::driver::load_files(&[std::path::PathBuf::from("../examples/acme")]).unwrap();
    let analysis = hpl_compiler::analyze_sources(files, CheckOptions::default());
    let options = BuildOptions {
        bundle_version: version,
        issued_at: NOW - 3600,
        expires_at: None,
        root: None,
    };
    build_bundle(&analysis, &options, &[&SigningKey::from_bytes(&[5; 32])]).unwrap()
}

/// Sends a request through the router: status, body, `ETag`.
async fn send(
    app: &axum::Router,
    req: axum::http::request::Builder,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>, Option<String>) {
    let response = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let tag = response
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, bytes, tag)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Vec<u8>,
    etag: Option<&str>,
) -> (StatusCode, Vec<u8>, Option<String>) {
    let mut req = Request::builder().method(method).uri(uri);
    if !token.is_empty() {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(e) = etag {
        req = req.header(header::IF_NONE_MATCH, e);
    }
    send(app, req, body).await
}

/// A server on a fresh SQLite file with the tenant acme: the router, what `init` printed, and
/// acme's enrollment token.
async fn server(name: &str) -> (axum::Router, rings::Initialised, String) {
    let (app, init, enrollment, _) = server_with_admin(name).await;
    (app, init, enrollment)
}

/// [`server`], and an admin of acme signed in through acme's identity provider (the second
/// pair of eyes for the owner's promotions).
async fn server_with_admin(name: &str) -> (axum::Router, rings::Initialised, String, String) {
    let file = std::env::temp_dir().join(format!("hpl-server-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let db = Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let init = rings::init(&db, NOW).await.unwrap();
    let owner = hpl_server::auth::authenticate(&db, &init.owner_token)
        .await
        .unwrap();
    let key = format!(
        "hpl-ed25519-public:{}",
        hpl_runtime::load::hex(SigningKey::from_bytes(&[5; 32]).verifying_key().as_bytes())
    );
    let enrollment = rings::add_tenant(&db, &owner, "acme", &key, NOW)
        .await
        .unwrap();
    let idp = common::idp::Provider::start("hpl-acme").await;
    common::trust(&db, &owner, "acme", &idp).await;
    let admin = idp.token("bob", &["hpl-admins"]);
    (hpl_server::http::router(db), init, enrollment, admin)
}

/// Requests a promotion as `token` and approves it as `approver`: the approval's status and
/// body.
async fn promote(
    app: &axum::Router,
    token: &str,
    approver: &str,
    ring: &str,
    release: u64,
) -> (StatusCode, serde_json::Value) {
    let (status, body, _) = call(
        app,
        "POST",
        &format!("/v1/tenants/acme/rings/{ring}/promote"),
        token,
        format!("{{\"release\":{release}}}").into_bytes(),
        None,
    )
    .await;
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status != StatusCode::ACCEPTED {
        return (status, value);
    }
    let (status, body, _) = call(
        app,
        "POST",
        &format!("/v1/tenants/acme/approvals/{}/approve", value["id"]),
        approver,
        vec![],
        None,
    )
    .await;
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn operators_publish_and_promote_and_devices_read_manifests_with_etags() {
    let (app, init, enrollment, admin) = server_with_admin("http").await;
    let token = init.owner_token.as_str();

    assert_eq!(
        call(&app, "GET", "/healthz", "", vec![], None).await.0,
        StatusCode::OK
    );
    let (status, body, _) = call(
        &app,
        "POST",
        "/v1/tenants/acme/releases",
        "",
        bundle(1),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        call(
            &app,
            "POST",
            "/v1/tenants/acme/releases",
            token,
            bundle(1),
            None
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(
            &app,
            "POST",
            "/v1/tenants/acme/releases",
            token,
            bundle(1),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let (status, body, _) = call(
        &app,
        "POST",
        "/v1/tenants/acme/releases",
        token,
        b"junk".to_vec(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "invalid");

    let (status, request) = promote(&app, token, &admin, "canary", 1).await;
    assert_eq!(status, StatusCode::OK, "{request}");
    assert_eq!(request["state"], "applied");
    // Refused when asked: broad takes only what pilot runs.
    let (status, _) = promote(&app, token, &admin, "broad", 1).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // An operator token is not a device's signature, and an enrollment token does not operate.
    assert_eq!(
        call(&app, "GET", "/v1/device/manifest", token, vec![], None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &app,
            "GET",
            "/v1/tenants/acme/rings",
            &enrollment,
            vec![],
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (_, body, _) = call(&app, "GET", "/v1/tenants/acme/rings", token, vec![], None).await;
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status[0]["release"], 1);
    let (_, body, _) = call(&app, "GET", "/v1/audit", token, vec![], None).await;
    let trail: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // The server's own chain: init. Acme's has the rest.
    assert_eq!(trail["entries"].as_array().unwrap().len(), 1, "{trail}");
    let (_, body, _) = call(&app, "GET", "/v1/tenants/acme/audit", token, vec![], None).await;
    let trail: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let actions: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.add",
            "tenant.sso",
            "release.publish",
            "approval.request",
            "approval.approve",
            "ring.promote"
        ],
        "{trail}"
    );
    assert_eq!(
        call(
            &app,
            "POST",
            "/v1/tenants/acme/rings/canary/explode",
            token,
            vec![],
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

/// docs/openapi.json is the API: every documented path and method is routed (the router's own
/// fallback is an empty 404, ours always a JSON body), and the documented `Ring` fields are
/// the ones a response has.
#[tokio::test]
async fn the_openapi_file_documents_the_routes_and_their_fields() {
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("../docs/openapi.json").unwrap()).unwrap();
    let (app, init, _) = server("openapi").await;
    let (status, body, _) = call(&app, "GET", "/v1/nowhere", "", vec![], None).await;
    assert_eq!(
        (status, body.len()),
        (StatusCode::NOT_FOUND, 0),
        "the fallback is an empty 404"
    );
    let paths = spec["paths"].as_object().unwrap();
    // The documented operations are exactly the endpoint table, with its permissions.
    let mut documented = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.push((
                method.to_uppercase(),
                path.clone(),
                operation["x-hpl-permission"].as_str().map(str::to_string),
            ));
        }
    }
    let mut table: Vec<_> = hpl_server::http::ENDPOINTS
        .iter()
        .map(|e| {
            let permission = match e.access {
                hpl_server::http::Access::Operator(p) => Some(p.as_str().to_string()),
                _ => None,
            };
            (e.method.to_string(), e.path.to_string(), permission)
        })
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);
    for (method, path, _) in &table {
        let uri = path
            .replace("{tenant}", "acme")
            .replace("{ring}", "canary")
            .replace("{id}", "1")
            .replace("{version}", "1");
        let (status, body, _) = call(&app, method, &uri, "", vec![], None).await;
        assert!(
            !(status == StatusCode::NOT_FOUND && body.is_empty())
                && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed ({status})"
        );
    }
    let (_, body, _) = call(
        &app,
        "GET",
        "/v1/tenants/acme/rings",
        &init.owner_token,
        vec![],
        None,
    )
    .await;
    let ring: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut got: Vec<&str> = ring[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut documented: Vec<&str> = spec["components"]["schemas"]["Ring"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    got.sort();
    documented.sort();
    assert_eq!(got, documented);
}

/// One signed device request through the router.
#[allow(clippy::too_many_arguments)]
async fn signed(
    app: &axum::Router,
    method: &str,
    uri: &str,
    key: &SigningKey,
    device: &str,
    body: Vec<u8>,
    etag: Option<&str>,
    time: i64,
    nonce: &str,
) -> (StatusCode, Vec<u8>, Option<String>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in
        hpl_agent::client::signed_headers(key, Some(device), method, uri, &body, time, nonce)
    {
        req = req.header(k, v);
    }
    if let Some(e) = etag {
        req = req.header(header::IF_NONE_MATCH, e);
    }
    send(app, req, body).await
}

async fn enroll(
    app: &axum::Router,
    token: &str,
    key: &SigningKey,
    signer: &SigningKey,
    serial: &str,
    scopes: &[&str],
) -> (StatusCode, serde_json::Value) {
    let body = serde_json::to_vec(&serde_json::json!({
        "public_key": format!("hpl-ed25519-public:{}", hpl_runtime::load::hex(key.verifying_key().as_bytes())),
        "serial": serial,
        "scopes": scopes,
    }))
    .unwrap();
    let mut req = Request::builder()
        .method("POST")
        .uri("/v1/enroll")
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let nonce = hpl_agent::nonce();
    for (k, v) in hpl_agent::client::signed_headers(
        signer,
        None,
        "POST",
        "/v1/enroll",
        &body,
        hpl_server::now(),
        &nonce,
    ) {
        req = req.header(k, v);
    }
    let (status, bytes, _) = send(app, req, body).await;
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

fn record_of(serial: &str, version: u64) -> serde_json::Value {
    let mut keys = hpl_runtime::load::TrustedKeys::new();
    keys.add(SigningKey::from_bytes(&[5; 32]).verifying_key().as_bytes())
        .unwrap();
    let b = hpl_runtime::load::load(&bundle(version), &keys).unwrap();
    let text = std::fs::read_to_string("../examples/devices/pilot-mixed.json")
        .unwrap()
        .replace("C02PILT001", serial);
    let inv = hpl_runtime::inventory::Inventory::from_json_str(&text).unwrap();
    let r = hpl_runtime::device::Device::with_bundle(b, None).evaluate(&inv, NOW);
    serde_json::to_value(r).unwrap()
}

/// Enrollment proves the key; every device request is signed, inside the replay window, with
/// a nonce used once; manifests and bundles are conditional; uploads are idempotent per
/// `(tenant, device, task_id, seq)` and a record claiming another device is refused.
#[tokio::test]
async fn devices_enroll_sign_every_request_and_upload_idempotently() {
    let (app, init, enrollment, admin) = server_with_admin("devices").await;
    let token = init.owner_token.as_str();
    call(
        &app,
        "POST",
        "/v1/tenants/acme/releases",
        token,
        bundle(1),
        None,
    )
    .await;
    assert_eq!(
        promote(&app, token, &admin, "canary", 1).await.0,
        StatusCode::OK
    );
    // Canary takes the device group `canary` (a new tenant's canary takes no one).
    let (status, body, _) = call(
        &app,
        "PUT",
        "/v1/tenants/acme/rings/canary/members",
        token,
        br#"{"device_groups": ["canary"]}"#.to_vec(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = call(
        &app,
        "PUT",
        "/v1/tenants/acme/rings/canary/members",
        token,
        br#"{"groups": ["canary"]}"#.to_vec(),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    let key = SigningKey::from_bytes(&[9; 32]);
    let other = SigningKey::from_bytes(&[10; 32]);

    // Not signed by the key it enrolls; a wrong token; then the real thing, twice.
    let (status, _) = enroll(&app, &enrollment, &key, &other, "C02X", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = enroll(&app, token, &key, &key, "C02X", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, first) = enroll(
        &app,
        &enrollment,
        &key,
        &key,
        "C02X",
        &["org:acme", "device_group:canary"],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["ring"], "canary");
    assert_eq!(first["tenant"], "acme");
    let id = first["device_id"].as_str().unwrap().to_string();
    let (status, again) = enroll(
        &app,
        &enrollment,
        &key,
        &key,
        "C02X",
        &["org:acme", "device_group:canary"],
    )
    .await;
    assert_eq!(
        (status, &again["device_id"]),
        (StatusCode::OK, &first["device_id"])
    );

    // Signed manifest reads: 200, then one 304; a replayed nonce, an old time, another key,
    // a device that does not exist are all refused.
    let now = hpl_server::now();
    let m = "/v1/device/manifest";
    let (status, bytes, etag) = signed(
        &app,
        "GET",
        m,
        &key,
        &id,
        vec![],
        None,
        now,
        &"01".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes.starts_with(b"HPLM"));
    let etag = etag.unwrap();
    let (status, bytes, _) = signed(
        &app,
        "GET",
        m,
        &key,
        &id,
        vec![],
        Some(&etag),
        now,
        &"02".repeat(16),
    )
    .await;
    assert_eq!((status, bytes.len()), (StatusCode::NOT_MODIFIED, 0));
    let (status, body, _) = signed(
        &app,
        "GET",
        m,
        &key,
        &id,
        vec![],
        None,
        now,
        &"02".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&body).contains("replay"));
    let (status, body, _) = signed(
        &app,
        "GET",
        m,
        &key,
        &id,
        vec![],
        None,
        now - 301,
        &"03".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&body).contains("clock"));
    let (status, _, _) = signed(
        &app,
        "GET",
        m,
        &other,
        &id,
        vec![],
        None,
        now,
        &"04".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = signed(
        &app,
        "GET",
        m,
        &key,
        "dev-0000",
        vec![],
        None,
        now,
        &"05".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The bundle the manifest names, conditionally.
    let b = "/v1/device/bundles/1";
    let (status, bytes, tag) = signed(
        &app,
        "GET",
        b,
        &key,
        &id,
        vec![],
        None,
        now,
        &"06".repeat(16),
    )
    .await;
    assert_eq!((status, bytes), (StatusCode::OK, bundle(1)));
    let (status, _, _) = signed(
        &app,
        "GET",
        b,
        &key,
        &id,
        vec![],
        tag.as_deref(),
        now,
        &"07".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, _) = signed(
        &app,
        "GET",
        "/v1/device/bundles/9",
        &key,
        &id,
        vec![],
        None,
        now,
        &"08".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Uploads: stored, then a duplicate when retried; another device's record is refused.
    let batch = serde_json::to_vec(&serde_json::json!({ "items": [
        { "task_id": "sync-1", "seq": 0, "kind": "record", "scopes": ["org:acme", "device_group:canary"], "body": record_of("C02X", 1) },
        { "task_id": "sync-1", "seq": 1, "kind": "record", "body": record_of("C02OTHER", 1) },
        { "task_id": "sync-1", "seq": 2, "kind": "event", "body": { "event": "remediation_started", "tenant_id": "acme", "device_id": "C02X", "policy_version": 1 } },
    ]}))
    .unwrap();
    let r = "/v1/device/reports";
    let (status, body, _) = signed(
        &app,
        "POST",
        r,
        &key,
        &id,
        batch.clone(),
        None,
        now,
        &"09".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let acks: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let dispositions: Vec<&str> = acks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["disposition"].as_str().unwrap())
        .collect();
    assert_eq!(dispositions, ["stored", "rejected", "stored"]);
    assert!(acks["items"][1]["reason"]
        .as_str()
        .unwrap()
        .contains("C02X"));
    let (_, body, _) = signed(
        &app,
        "POST",
        r,
        &key,
        &id,
        batch,
        None,
        now,
        &"0a".repeat(16),
    )
    .await;
    let acks: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let dispositions: Vec<&str> = acks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["disposition"].as_str().unwrap())
        .collect();
    assert_eq!(dispositions, ["duplicate", "rejected", "duplicate"]);
    // The body is signed: the same headers on another body are refused.
    let (status, _, _) = signed(
        &app,
        "POST",
        r,
        &key,
        &id,
        b"{\"items\":[]}".to_vec(),
        None,
        now,
        &"0b".repeat(16),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The metrics count the one device once.
    let (_, body, _) = call(&app, "GET", "/v1/tenants/acme/metrics", token, vec![], None).await;
    let metrics: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(metrics["fleet"]["devices"], 1, "{metrics}");
    assert_eq!(metrics["rings"][0]["ring"], "canary");
    assert_eq!(metrics["rings"][0]["releases"][0]["devices"], 1);
    assert_eq!(
        metrics["rings"][0]["releases"][0]["remediation"]["started"],
        1
    );
    let (_, body, _) = call(&app, "GET", "/v1/tenants/acme/audit", token, vec![], None).await;
    let trail: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let enrolls = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "device.enroll")
        .count();
    assert_eq!(enrolls, 1, "enrolling again is not a new enrollment");
}
