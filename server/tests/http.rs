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

/// A server on a fresh SQLite file with the tenant acme: the router, what `init` printed, and
/// acme's enrollment token.
async fn server(name: &str) -> (axum::Router, rings::Initialised, String) {
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
    (hpl_server::http::router(db), init, enrollment)
}

#[tokio::test]
async fn operators_publish_and_promote_and_devices_read_manifests_with_etags() {
    let (app, init, enrollment) = server("http").await;
    let token = init.owner_token.as_str();

    assert_eq!(
        call(&app, "GET", "/healthz", "", vec![], None).await.0,
        StatusCode::OK
    );
    let (status, body, _) = call(&app, "POST", "/v1/releases", "", bundle(1), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        call(&app, "POST", "/v1/releases", token, bundle(1), None)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&app, "POST", "/v1/releases", token, bundle(1), None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, body, _) = call(&app, "POST", "/v1/releases", token, b"junk".to_vec(), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "invalid");

    let manifest_uri = "/v1/tenants/acme/rings/canary/manifest";
    assert_eq!(
        call(&app, "GET", manifest_uri, &enrollment, vec![], None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _, _) = call(
        &app,
        "POST",
        "/v1/tenants/acme/rings/canary/promote",
        token,
        br#"{"release":1}"#.to_vec(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(
        &app,
        "POST",
        "/v1/tenants/acme/rings/broad/promote",
        token,
        br#"{"release":1}"#.to_vec(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A device: the manifest, then a 304 while nothing changes.
    let (status, bytes, etag) = call(&app, "GET", manifest_uri, &enrollment, vec![], None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes.starts_with(b"HPLM"));
    let etag = etag.unwrap();
    let (status, bytes, _) =
        call(&app, "GET", manifest_uri, &enrollment, vec![], Some(&etag)).await;
    assert_eq!((status, bytes.len()), (StatusCode::NOT_MODIFIED, 0));
    // The bundle it names, conditionally too; the device's store follows the pair.
    let bundle_uri = "/v1/tenants/acme/releases/1/bundle";
    let (status, bundle_bytes, bundle_tag) =
        call(&app, "GET", bundle_uri, &enrollment, vec![], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bundle_bytes, bundle(1));
    let bundle_tag = bundle_tag.unwrap();
    assert!(bundle_tag.contains("sha256:"), "{bundle_tag}");
    assert_eq!(
        call(
            &app,
            "GET",
            bundle_uri,
            &enrollment,
            vec![],
            Some(&bundle_tag)
        )
        .await
        .0,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        call(
            &app,
            "GET",
            "/v1/tenants/acme/releases/9/bundle",
            &enrollment,
            vec![],
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            "GET",
            "/v1/tenants/globex/releases/1/bundle",
            &enrollment,
            vec![],
            None
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // An operator token is not a device's, and a device's token does not operate.
    assert_eq!(
        call(&app, "GET", manifest_uri, token, vec![], None).await.0,
        StatusCode::FORBIDDEN
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
        StatusCode::FORBIDDEN
    );

    let (_, body, _) = call(&app, "GET", "/v1/tenants/acme/rings", token, vec![], None).await;
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status[0]["release"], 1);
    let (_, body, _) = call(&app, "GET", "/v1/audit", token, vec![], None).await;
    let trail: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(trail.as_array().unwrap().len(), 4, "{trail}");
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
    assert_eq!(paths.len(), 7);
    for (path, item) in paths {
        let uri = path
            .replace("{tenant}", "acme")
            .replace("{ring}", "canary")
            .replace("{op}", "pause")
            .replace("{version}", "1");
        for method in ["get", "post"] {
            if item.get(method).is_none() {
                continue;
            }
            let (status, body, _) =
                call(&app, &method.to_uppercase(), &uri, "", vec![], None).await;
            assert!(
                !(status == StatusCode::NOT_FOUND && body.is_empty())
                    && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed ({status})"
            );
        }
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
