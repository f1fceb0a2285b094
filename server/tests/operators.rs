//! Operators (issue 12): OIDC tokens verified against a local provider, the permission matrix
//! walked endpoint by endpoint and role by role, tenant isolation, four-eyes approvals, and the
//! audit trail's chain, triggers and export — on SQLite and, with `HPL_TEST_DATABASE_URL`,
//! PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::idp::{self, Provider};
use common::{bundle, databases, policy_key, public_text, trust, NOW};
use hpl_server::http::{Access, App, ENDPOINTS};
use hpl_server::oidc::Verifier;
use hpl_server::rbac::{self, Role};
use hpl_server::{approvals, audit, auth, rings, Db, Principal};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Two tenants, acme and globex, each with its own provider; the server owner.
struct World {
    db: Db,
    owner: Principal,
    owner_token: String,
    acme: Provider,
    globex: Provider,
    verifier: Arc<Verifier>,
}

async fn world(db: Db) -> World {
    let init = rings::init(&db, NOW).await.unwrap();
    let owner = auth::authenticate(&db, &init.owner_token).await.unwrap();
    for t in ["acme", "globex"] {
        rings::add_tenant(&db, &owner, t, &public_text(&policy_key()), NOW)
            .await
            .unwrap();
    }
    let acme = Provider::start("hpl-acme").await;
    let globex = Provider::start("hpl-globex").await;
    trust(&db, &owner, "acme", &acme).await;
    trust(&db, &owner, "globex", &globex).await;
    World {
        db,
        owner,
        owner_token: init.owner_token,
        acme,
        globex,
        verifier: Arc::new(Verifier::new(Duration::ZERO)),
    }
}

fn group(role: Role) -> String {
    format!("hpl-{role}s")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn tokens_are_verified_against_the_tenants_provider_and_every_forgery_is_refused() {
    for db in databases("tokens").await {
        let w = world(db).await;
        let v = &w.verifier;
        let good = w
            .acme
            .token("alice", &["hpl-admins", "hpl-viewers", "unmapped"]);
        let id = v.verify(&w.db, &good, None).await.unwrap();
        assert_eq!(
            (id.tenant.as_str(), id.subject.as_str(), id.roles.clone()),
            ("acme", "alice", vec![Role::Admin, Role::Viewer])
        );
        assert_eq!(id.display.as_deref(), Some("alice@example.com"));
        // Globex's provider's token is globex's operator, never acme's.
        let g = v
            .verify(&w.db, &w.globex.token("gina", &["hpl-owners"]), None)
            .await
            .unwrap();
        assert_eq!(g.tenant, "globex");

        let claims = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut c = w.acme.claims("alice", &["hpl-owners"]);
            f(&mut c);
            c
        };
        let now = idp::now();
        let stranger = idp::ed25519_key("k1");
        let hs256 = jsonwebtoken::encode(
            &{
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                h.kid = Some("k1".into());
                h
            },
            &claims(&|_| {}),
            // The "secret" an attacker has: the provider's public key.
            &jsonwebtoken::EncodingKey::from_secret(
                serde_json::to_string(&w.acme.key.jwk).unwrap().as_bytes(),
            )
            .unwrap(),
        )
        .unwrap();
        let payload = b64(claims(&|_| {}).to_string().as_bytes());
        let none = format!(
            "{}.{payload}.",
            b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#)
        );
        let mut tampered: Vec<String> = good.split('.').map(str::to_string).collect();
        tampered[1] = b64(w
            .acme
            .claims("alice", &["hpl-owners"])
            .to_string()
            .as_bytes());
        let cases: Vec<(&str, String)> = vec![
            (
                "expired",
                w.acme
                    .sign(&claims(&|c| c["exp"] = (now - 3600).into()), &w.acme.key),
            ),
            (
                "not yet valid",
                w.acme
                    .sign(&claims(&|c| c["nbf"] = (now + 3600).into()), &w.acme.key),
            ),
            (
                "no expiry",
                w.acme.sign(
                    &claims(&|c| {
                        c.as_object_mut().unwrap().remove("exp");
                    }),
                    &w.acme.key,
                ),
            ),
            (
                "wrong audience",
                w.acme
                    .sign(&claims(&|c| c["aud"] = "someone-else".into()), &w.acme.key),
            ),
            (
                "wrong issuer",
                w.acme.sign(
                    &claims(&|c| c["iss"] = "https://evil.example".into()),
                    &w.acme.key,
                ),
            ),
            (
                "another provider's issuer",
                w.acme.sign(
                    &claims(&|c| {
                        c["iss"] = w.globex.issuer.clone().into();
                        c["aud"] = "hpl-globex".into();
                    }),
                    &w.acme.key,
                ),
            ),
            (
                "unknown key",
                w.acme.sign(&claims(&|_| {}), &idp::ed25519_key("k9")),
            ),
            (
                "a stranger's key under a known kid",
                w.acme.sign(&claims(&|_| {}), &stranger),
            ),
            ("alg none", none),
            ("HS256 with the public key as secret", hs256),
            ("payload changed", tampered.join(".")),
            ("not a JWT", "abc.def".into()),
        ];
        for (what, token) in cases {
            let e = v.verify(&w.db, &token, None).await.unwrap_err();
            assert_eq!(e.code(), "unauthorized", "{what}: {e}");
        }
        // The browser flow's nonce must be the one it sent.
        let with_nonce = w
            .acme
            .sign(&claims(&|c| c["nonce"] = "n-1".into()), &w.acme.key);
        assert!(v.verify(&w.db, &with_nonce, Some("n-1")).await.is_ok());
        assert!(v.verify(&w.db, &with_nonce, Some("n-2")).await.is_err());
        assert!(v.verify(&w.db, &good, Some("n-1")).await.is_err());

        // A rotation: a token under a newly published key verifies after the JWKS is fetched
        // again for the unknown kid.
        let k2 = w.acme.rotate("k2");
        assert!(v
            .verify(&w.db, &w.acme.sign(&claims(&|_| {}), &k2), None)
            .await
            .is_ok());
        // With the default refresh interval an unknown kid does not fetch again at once.
        let slow = Verifier::default();
        assert!(slow.verify(&w.db, &good, None).await.is_ok());
        let k3 = w.acme.rotate("k3");
        assert!(slow
            .verify(&w.db, &w.acme.sign(&claims(&|_| {}), &k3), None)
            .await
            .is_err());
    }
}

/// The algorithms providers use: RS256 (most), ES256, EdDSA — each verifies with its own key
/// and with nothing else.
#[tokio::test]
async fn rs256_and_es256_tokens_verify_and_a_key_of_another_algorithm_does_not() {
    for db in databases("algorithms").await {
        let w = world(db).await;
        let rsa = w.acme.publish(idp::rsa_key("rsa-1"));
        let ec = w.acme.publish(idp::p256_key("ec-1"));
        let claims = w.acme.claims("alice", &["hpl-viewers"]);
        for key in [&rsa, &ec] {
            let id = w
                .verifier
                .verify(&w.db, &w.acme.sign(&claims, key), None)
                .await
                .unwrap_or_else(|e| panic!("{:?}: {e}", key.alg));
            assert_eq!(id.roles, vec![Role::Viewer]);
        }
        // An RSA key that was never published, under the published RSA key's kid.
        let mut stranger = idp::rsa_key("rsa-1");
        stranger.kid = "rsa-1".into();
        let e = w
            .verifier
            .verify(&w.db, &w.acme.sign(&claims, &stranger), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unauthorized", "{e}");
        // An ES256 token naming the RSA key: the key is not for that algorithm.
        let mut confused = idp::p256_key("rsa-1");
        confused.kid = "rsa-1".into();
        let e = w
            .verifier
            .verify(&w.db, &w.acme.sign(&claims, &confused), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a ES256 signing key"), "{e}");
    }
}

/// Every request of a signed-in operator records the sighting, but writes only when it is
/// new, its roles changed, or it is a minute old.
#[tokio::test]
async fn a_sighting_is_written_once_a_minute_not_per_request() {
    for db in databases("seen").await {
        let w = world(db).await;
        let token = w.acme.token("alice", &["hpl-viewers"]);
        let id = w.verifier.verify(&w.db, &token, None).await.unwrap();
        let last = |w: &World| {
            let (db, tenant) = (w.db.clone(), "acme".to_string());
            async move { hpl_server::oidc::operators(&db, &tenant).await.unwrap()[0].last_seen }
        };
        hpl_server::oidc::seen(&w.db, &id, NOW).await.unwrap();
        hpl_server::oidc::seen(&w.db, &id, NOW + 30).await.unwrap();
        assert_eq!(last(&w).await, NOW);
        hpl_server::oidc::seen(&w.db, &id, NOW + 61).await.unwrap();
        assert_eq!(last(&w).await, NOW + 61);
        let mut promoted = id.clone();
        promoted.roles = vec![Role::Admin];
        hpl_server::oidc::seen(&w.db, &promoted, NOW + 62)
            .await
            .unwrap();
        let ops = hpl_server::oidc::operators(&w.db, "acme").await.unwrap();
        assert_eq!(
            (ops[0].last_seen, ops[0].roles.clone()),
            (NOW + 62, vec![Role::Admin])
        );
    }
}

/// Sends one request through the router.
async fn send(
    app: &axum::Router,
    method: &Method,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method.clone()).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = if *method == Method::GET || *method == Method::DELETE {
        Body::empty()
    } else {
        Body::from("{}")
    };
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn uri(path: &str, tenant: &str) -> String {
    path.replace("{tenant}", tenant)
        .replace("{ring}", "canary")
        .replace("{id}", "1")
        .replace("{version}", "1")
}

/// Every endpoint × every role (and no token, another tenant's operator, a tenant API
/// credential, the server owner): exactly what docs/rbac.md says — the documented status when
/// refused, and never 401 or 403 when allowed.
#[tokio::test]
async fn the_permission_matrix_is_enforced_on_every_endpoint_for_every_role() {
    for db in databases("matrix").await {
        let w = world(db).await;
        let app = hpl_server::http::router_for(App {
            verifier: w.verifier.clone(),
            ..App::new(w.db.clone())
        });
        let (_, api_viewer) = auth::issue_api(&w.db, &w.owner, "acme", Role::Viewer, NOW)
            .await
            .unwrap();
        let outsider = w.globex.token("gina", &["hpl-owners"]);
        let mut checked = 0;
        for e in ENDPOINTS {
            let u = uri(e.path, "acme");
            match e.access {
                Access::Public => {
                    let (s, _) = send(&app, &e.method, &u, None).await;
                    assert!(
                        s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                        "{u}"
                    );
                }
                Access::Device => {
                    let (s, _) = send(&app, &e.method, &u, None).await;
                    assert_eq!(
                        s,
                        StatusCode::UNAUTHORIZED,
                        "{} {u} without a signature",
                        e.method
                    );
                    let t = w.acme.token("alice", &["hpl-owners"]);
                    let (s, _) = send(&app, &e.method, &u, Some(&t)).await;
                    assert_eq!(
                        s,
                        StatusCode::UNAUTHORIZED,
                        "{} {u}: an operator is not a device",
                        e.method
                    );
                }
                Access::Authenticated => {
                    assert_eq!(
                        send(&app, &e.method, &u, None).await.0,
                        StatusCode::UNAUTHORIZED
                    );
                    for role in Role::ALL {
                        let t = w.acme.token("alice", &[&group(role)]);
                        assert_eq!(send(&app, &e.method, &u, Some(&t)).await.0, StatusCode::OK);
                    }
                }
                Access::Operator(p) => {
                    let (s, body) = send(&app, &e.method, &u, None).await;
                    assert_eq!(
                        s,
                        StatusCode::UNAUTHORIZED,
                        "{} {u} without a token: {body}",
                        e.method
                    );
                    let (s, _) = send(&app, &e.method, &u, Some("hpl-owner-forged")).await;
                    assert_eq!(
                        s,
                        StatusCode::UNAUTHORIZED,
                        "{} {u} with a forged credential",
                        e.method
                    );
                    let (s, _) = send(&app, &e.method, &u, Some(&outsider)).await;
                    assert_eq!(
                        s,
                        StatusCode::FORBIDDEN,
                        "{} {u} by globex's owner",
                        e.method
                    );
                    for role in Role::ALL {
                        let t = w.acme.token(&format!("u-{role}"), &[&group(role)]);
                        let (s, body) = send(&app, &e.method, &u, Some(&t)).await;
                        if rbac::grants(role, p) {
                            assert!(
                                s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                                "{} {u}: {role} has {p} but got {s}: {body}",
                                e.method
                            );
                        } else {
                            assert_eq!(
                                s,
                                StatusCode::FORBIDDEN,
                                "{} {u}: {role} lacks {p}: {body}",
                                e.method
                            );
                            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                            assert_eq!(v["error"], "forbidden");
                        }
                        checked += 1;
                    }
                    // Someone signed in whose groups map to no role has no access.
                    let t = w.acme.token("nobody", &["contractors"]);
                    assert_eq!(
                        send(&app, &e.method, &u, Some(&t)).await.0,
                        StatusCode::FORBIDDEN
                    );
                    let (s, _) = send(&app, &e.method, &u, Some(&api_viewer)).await;
                    assert_eq!(
                        rbac::grants(Role::Viewer, p),
                        s != StatusCode::FORBIDDEN && s != StatusCode::UNAUTHORIZED,
                        "{} {u} by a viewer API credential: {s}",
                        e.method
                    );
                    let (s, body) = send(&app, &e.method, &u, Some(&w.owner_token)).await;
                    assert!(
                        s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                        "{} {u} by the server owner: {s} {body}",
                        e.method
                    );
                }
            }
        }
        assert!(checked >= 25 * 5, "{checked}");
        // The table is what the router routes: nothing answers outside it.
        let (s, body) = send(
            &app,
            &Method::GET,
            "/v1/tenants/acme/secrets",
            Some(&w.owner_token),
        )
        .await;
        assert_eq!((s, body.as_str()), (StatusCode::NOT_FOUND, ""));
    }
}

/// What acme's operators read never has a row of globex's, on any listing endpoint.
#[tokio::test]
async fn no_endpoint_shows_one_tenant_another_tenants_rows() {
    for db in databases("isolation").await {
        let w = world(db).await;
        let app = hpl_server::http::router_for(App {
            verifier: w.verifier.clone(),
            ..App::new(w.db.clone())
        });
        // Globex gets data of every kind: a request, audit entries, an operator, a credential.
        let gina = w.globex.token("gina", &["hpl-owners"]);
        let identity = w.verifier.verify(&w.db, &gina, None).await.unwrap();
        hpl_server::oidc::seen(&w.db, &identity, NOW).await.unwrap();
        let g = identity.principal();
        auth::issue_api(&w.db, &w.owner, "globex", Role::Operator, NOW)
            .await
            .unwrap();
        rings::publish(&w.db, &w.owner, "acme", &bundle(1), NOW)
            .await
            .unwrap();
        rings::set_paused(&w.db, &g, "globex", "canary", true, NOW)
            .await
            .unwrap();
        let auditor = w.acme.token("ann", &["hpl-auditors", "hpl-owners"]);
        for e in ENDPOINTS.iter().filter(|e| e.method == Method::GET) {
            if !e.path.contains("{tenant}") {
                continue;
            }
            let u = uri(e.path, "acme");
            let (s, body) = send(&app, &e.method, &u, Some(&auditor)).await;
            assert!(
                s.is_success() || s == StatusCode::NOT_FOUND,
                "{u}: {s} {body}"
            );
            assert!(
                !body.contains("globex") && !body.contains("gina"),
                "{u} shows globex: {body}"
            );
        }
    }
}

async fn principal_of(w: &World, token: &str) -> Principal {
    w.verifier
        .verify(&w.db, token, None)
        .await
        .unwrap()
        .principal()
}

#[tokio::test]
async fn promotions_wait_for_approvals_by_someone_else_and_everything_is_audited() {
    for db in databases("approvals").await {
        let w = world(db).await;
        let db = &w.db;
        rings::publish(db, &w.owner, "acme", &bundle(1), NOW)
            .await
            .unwrap();
        rings::publish(db, &w.owner, "acme", &bundle(2), NOW)
            .await
            .unwrap();
        let olga = principal_of(&w, &w.acme.token("olga", &["hpl-operators"])).await;
        let alice = principal_of(&w, &w.acme.token("alice", &["hpl-admins"])).await;
        let bob = principal_of(&w, &w.acme.token("bob", &["hpl-admins"])).await;
        let carol = principal_of(&w, &w.acme.token("carol", &["hpl-owners"])).await;

        let r = approvals::request_promotion(db, &olga, "acme", "canary", 1, NOW)
            .await
            .unwrap();
        assert_eq!((r.state, r.required), (approvals::State::Pending, 1));
        // Nothing rolls out on a pending request.
        assert_eq!(rings::rings(db, "acme").await.unwrap()[0].release, None);
        // A second request for the ring waits for the first.
        let e = approvals::request_promotion(db, &alice, "acme", "canary", 2, NOW)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "conflict");
        // The requester cannot approve their own request.
        let e = approvals::decide(
            db,
            &olga,
            "acme",
            r.id,
            approvals::Decision::Approve,
            None,
            NOW,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "forbidden", "{e}");
        let done = approvals::decide(
            db,
            &alice,
            "acme",
            r.id,
            approvals::Decision::Approve,
            Some("looks good"),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(done.state, approvals::State::Applied);
        assert_eq!(rings::rings(db, "acme").await.unwrap()[0].release, Some(1));
        // Decided is decided.
        let e = approvals::decide(
            db,
            &bob,
            "acme",
            r.id,
            approvals::Decision::Approve,
            None,
            NOW,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "conflict");

        // Two approvals: one is not enough, the same person twice is one, a rejection ends it.
        approvals::set_required(db, &carol, "acme", 2, NOW)
            .await
            .unwrap();
        assert_eq!(
            approvals::set_required(db, &carol, "acme", 0, NOW)
                .await
                .unwrap_err()
                .code(),
            "invalid"
        );
        let r = approvals::request_promotion(db, &alice, "acme", "canary", 2, NOW)
            .await
            .unwrap();
        let r1 = approvals::decide(
            db,
            &bob,
            "acme",
            r.id,
            approvals::Decision::Approve,
            None,
            NOW,
        )
        .await
        .unwrap();
        assert_eq!((r1.state, r1.approvals()), (approvals::State::Pending, 1));
        assert_eq!(rings::rings(db, "acme").await.unwrap()[0].release, Some(1));
        assert_eq!(
            approvals::decide(
                db,
                &bob,
                "acme",
                r.id,
                approvals::Decision::Approve,
                None,
                NOW
            )
            .await
            .unwrap_err()
            .code(),
            "conflict"
        );
        let rejected = approvals::decide(
            db,
            &carol,
            "acme",
            r.id,
            approvals::Decision::Reject,
            Some("not today"),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(rejected.state, approvals::State::Rejected);
        assert_eq!(rings::rings(db, "acme").await.unwrap()[0].release, Some(1));

        // An undecided request expires, recorded; then nothing can approve it.
        let r = approvals::request_promotion(db, &alice, "acme", "canary", 2, NOW)
            .await
            .unwrap();
        let later = NOW + approvals::LIFETIME + 1;
        let listed = approvals::list(db, "acme", None, later).await.unwrap();
        assert_eq!(listed[0].state, approvals::State::Expired);
        assert_eq!(
            approvals::decide(
                db,
                &bob,
                "acme",
                r.id,
                approvals::Decision::Approve,
                None,
                later
            )
            .await
            .unwrap_err()
            .code(),
            "conflict"
        );

        approvals::set_required(db, &carol, "acme", 1, later)
            .await
            .unwrap();
        // An approved promotion the health gate refuses (canary has no records yet) is
        // `failed`, with why; a paused ring refuses a request at once.
        let r = approvals::request_promotion(db, &alice, "acme", "pilot", 1, later)
            .await
            .unwrap();
        let e = approvals::decide(
            db,
            &bob,
            "acme",
            r.id,
            approvals::Decision::Approve,
            None,
            later,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "unhealthy", "{e}");
        let failed = approvals::get_request(db, "acme", r.id).await.unwrap();
        assert_eq!(failed.state, approvals::State::Failed);
        assert!(failed.outcome.unwrap().contains("health gate"));
        rings::set_paused(db, &bob, "acme", "canary", true, later)
            .await
            .unwrap();
        let e = approvals::request_promotion(db, &alice, "acme", "pilot", 1, later)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("paused"), "{e}");

        // The trail has every step, the emergency pause flagged, and it verifies.
        let trail = audit::entries(db, "acme", &audit::Filter::default())
            .await
            .unwrap();
        let steps: Vec<(&str, &str, bool)> = trail
            .iter()
            .filter(|e| e.action.starts_with("approval.") || e.action.starts_with("ring."))
            .map(|e| (e.action.as_str(), e.actor.as_str(), e.emergency))
            .collect();
        assert_eq!(
            steps,
            [
                ("approval.request", "oidc:acme:olga", false),
                ("approval.approve", "oidc:acme:alice", false),
                ("ring.promote", "oidc:acme:alice", false),
                ("approval.request", "oidc:acme:alice", false),
                ("approval.approve", "oidc:acme:bob", false),
                ("approval.reject", "oidc:acme:carol", false),
                ("approval.request", "oidc:acme:alice", false),
                ("approval.expire", "approvals", false),
                ("approval.request", "oidc:acme:alice", false),
                ("approval.approve", "oidc:acme:bob", false),
                ("approval.fail", "oidc:acme:bob", false),
                ("ring.pause", "oidc:acme:bob", true),
            ]
        );
        let promote = trail.iter().find(|e| e.action == "ring.promote").unwrap();
        assert!(promote
            .after
            .as_deref()
            .unwrap()
            .contains("\"requested_by\":\"oidc:acme:olga\""));
        assert!(audit::verify(db, "acme").await.unwrap().is_ok());
        // An API credential cannot be an approver.
        assert_eq!(
            auth::issue_api(db, &carol, "acme", Role::Admin, NOW)
                .await
                .unwrap_err()
                .code(),
            "invalid"
        );
    }
}

#[tokio::test]
async fn the_database_refuses_to_change_the_audit_trail() {
    for db in databases("append_only").await {
        let w = world(db).await;
        let pool = sqlx::AnyPool::connect(w.db.url()).await.unwrap();
        let mut statements = vec![
            "UPDATE audit_log SET actor = 'mallory'",
            "UPDATE audit_log SET hash = prev_hash WHERE seq = 1",
            "DELETE FROM audit_log",
            "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
            // The first, unchained table takes no new entries.
            "INSERT INTO audit (at, actor, action, subject) VALUES (0, 'm', 'x', 'y')",
        ];
        if w.db.backend == hpl_server::db::Backend::Postgres {
            statements.push("TRUNCATE audit_log");
        }
        for sql in statements {
            let e = sqlx::query(sql).execute(&pool).await.unwrap_err();
            assert!(
                e.to_string().contains("append-only") || e.to_string().contains("audit_log"),
                "{sql}: {e}"
            );
        }
        for chain in audit::chains(&w.db).await.unwrap() {
            assert!(audit::verify(&w.db, &chain).await.unwrap().is_ok());
        }
    }
}

/// An entry changed in the SQLite file itself (no SQL, so no trigger) is found, and its
/// link named.
#[tokio::test]
async fn an_entry_changed_in_the_database_file_is_found_by_verify() {
    let file = std::env::temp_dir().join(format!("hpl-server-tamper-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let url = format!("sqlite://{}", file.display());
    {
        let db = Db::connect(&url).await.unwrap();
        let w = world(db).await;
        let alice = principal_of(&w, &w.acme.token("alice", &["hpl-admins"])).await;
        rings::publish(&w.db, &w.owner, "acme", &bundle(1), NOW)
            .await
            .unwrap();
        rings::set_paused(&w.db, &alice, "acme", "pilot", true, NOW)
            .await
            .unwrap();
        assert_eq!(
            audit::verify(&w.db, "acme").await.unwrap().unwrap().entries,
            4
        );
        // Everything into the main file, then closed.
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    let mut bytes = std::fs::read(&file).unwrap();
    let needle = b"oidc:acme:alice";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the entry is in the file");
    bytes[at + 10] = b'e'; // alice -> aleice's twin of the same length: "oidc:acme:elice"
    std::fs::write(&file, &bytes).unwrap();
    let db = Db::connect(&url).await.unwrap();
    let broken = audit::verify(&db, "acme").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 4, "{broken:?}");
    assert!(broken.reason.contains("changed"), "{broken:?}");
    drop(db);
    // The command an operator runs says the same, and fails.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_hpl-server"))
        .args(["--database-url", &url, "audit", "verify"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(run.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("chain acme: BROKEN at entry 4: its fields do not give its hash"),
        "{stdout}"
    );
    assert!(
        stdout.contains("chain (server): 1 entries verified"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the first broken link of `acme` is entry 4"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&file);
}

/// Once people sign in, the bootstrap token can go: revoked, it is refused everywhere.
#[tokio::test]
async fn the_bootstrap_token_can_be_revoked() {
    for db in databases("revoke").await {
        let w = world(db).await;
        let (api_id, api) = auth::issue_api(&w.db, &w.owner, "acme", Role::Operator, NOW)
            .await
            .unwrap();
        auth::revoke(&w.db, &w.owner, Some("acme"), &api_id, NOW)
            .await
            .unwrap();
        assert_eq!(
            auth::authenticate(&w.db, &api).await.unwrap_err().code(),
            "unauthorized"
        );
        // Another tenant's credential is not found through this tenant.
        let (g_id, _) = auth::issue_api(&w.db, &w.owner, "globex", Role::Viewer, NOW)
            .await
            .unwrap();
        assert_eq!(
            auth::revoke(&w.db, &w.owner, Some("acme"), &g_id, NOW)
                .await
                .unwrap_err()
                .code(),
            "not_found"
        );
        auth::revoke(&w.db, &w.owner, None, &w.owner.id, NOW)
            .await
            .unwrap();
        assert_eq!(
            auth::authenticate(&w.db, &w.owner_token)
                .await
                .unwrap_err()
                .code(),
            "unauthorized"
        );
        let revocations: Vec<_> = audit::trail(&w.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "credential.revoke")
            .collect();
        assert_eq!(revocations.len(), 2);
        let bootstrap = revocations
            .iter()
            .find(|e| e.subject.contains(&w.owner.id))
            .unwrap();
        assert_eq!(bootstrap.chain, "", "the bootstrap's is the server's entry");
    }
}

/// A receiver that is down for a while gets every entry once it is back, and the export
/// verifies as a chain.
#[tokio::test]
async fn a_webhook_that_was_down_receives_everything_when_it_is_back() {
    for db in databases("webhook").await {
        let w = world(db).await;
        // A port nobody listens on yet.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let hook = hpl_server::export::Webhook {
            tenant: "acme".into(),
            url: format!("http://{addr}/siem"),
            token_env: None,
        };
        rings::publish(&w.db, &w.owner, "acme", &bundle(1), NOW)
            .await
            .unwrap();
        assert!(hpl_server::export::deliver(&w.db, &hook, NOW)
            .await
            .is_err());
        // More happens while it is down.
        let bob = principal_of(&w, &w.acme.token("bob", &["hpl-admins"])).await;
        rings::set_paused(&w.db, &bob, "acme", "broad", true, NOW)
            .await
            .unwrap();
        assert!(hpl_server::export::deliver(&w.db, &hook, NOW)
            .await
            .is_err());

        let received = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = received.clone();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let app = axum::Router::new().route(
            "/siem",
            axum::routing::post(move |body: String| {
                let sink = sink.clone();
                async move {
                    sink.lock()
                        .unwrap()
                        .extend(body.lines().map(str::to_string));
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let sent = hpl_server::export::deliver(&w.db, &hook, NOW)
            .await
            .unwrap();
        let all = audit::entries(&w.db, "acme", &audit::Filter::default())
            .await
            .unwrap();
        assert_eq!(sent, all.len());
        // Nothing new: nothing sent again.
        assert_eq!(
            hpl_server::export::deliver(&w.db, &hook, NOW)
                .await
                .unwrap(),
            0
        );
        let lines = received.lock().unwrap().clone();
        let entries: Vec<audit::AuditEntry> = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["class_uid"], 6003);
                serde_json::from_value(v["unmapped"]["hpl"]["entry"].clone()).unwrap()
            })
            .collect();
        assert_eq!(entries, all);
        let v = hpl_runtime::audit_chain::verify(
            "acme",
            &entries,
            1,
            &hpl_runtime::audit_chain::genesis("acme"),
        )
        .unwrap();
        assert_eq!(v.entries as usize, all.len());
    }
}
