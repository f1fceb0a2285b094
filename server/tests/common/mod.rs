//! Helpers shared by the control plane's tests: keys, bundles of the example policies, and a
//! fresh database of each backend available.
#![allow(dead_code)]

pub mod idp;

use ed25519_dalek::SigningKey;
use hpl_compiler::build::build_bundle;
use hpl_compiler::check::CheckOptions;
use hpl_compiler::lower::BuildOptions;
use hpl_server::rings::{self, Initialised};
use hpl_server::{auth, Db, Principal};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const NOW: i64 = 1_795_914_000;
pub static N: AtomicUsize = AtomicUsize::new(0);

pub fn policy_key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

pub fn public_text(k: &SigningKey) -> String {
    format!(
        "hpl-ed25519-public:{}",
        hpl_runtime::load::hex(k.verifying_key().as_bytes())
    )
}

pub fn bundle_by(version: u64, key: &SigningKey) -> Vec<u8> {
    static A: OnceLock<hpl_compiler::Analysis> = OnceLock::new();
    let analysis = A.get_or_init(|| {
        let files =
            hpl_compiler::driver::load_files(&[std::path::PathBuf::from("../examples/acme")])
                .unwrap();
        hpl_compiler::analyze_sources(files, CheckOptions::default())
    });
    let options = BuildOptions {
        bundle_version: version,
        issued_at: NOW - 3600,
        expires_at: None,
        root: None,
    };
    build_bundle(analysis, &options, &[key]).unwrap()
}

pub fn bundle(version: u64) -> Vec<u8> {
    bundle_by(version, &policy_key())
}

/// A fresh database of each backend available: a SQLite file, and a new PostgreSQL database
/// when `HPL_TEST_DATABASE_URL` names a server.
pub async fn databases(name: &str) -> Vec<Db> {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let file =
        std::env::temp_dir().join(format!("hpl-server-{name}-{}-{n}.db", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let mut out = vec![Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap()];
    match std::env::var("HPL_TEST_DATABASE_URL") {
        Ok(url) => {
            use sqlx::Connection;
            let db = format!("hpl_test_{name}_{}_{n}", std::process::id());
            let mut admin = sqlx::PgConnection::connect(&url)
                .await
                .expect("PostgreSQL at HPL_TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}")))
                .execute(&mut admin)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let base = url
                .rsplit_once('/')
                .map_or(url.as_str(), |(b, _)| b)
                .to_string();
            out.push(Db::connect(&format!("{base}/{db}")).await.unwrap());
        }
        Err(_) => {
            eprintln!("PostgreSQL not tested: HPL_TEST_DATABASE_URL is not set (.ci/run sets it)")
        }
    }
    out
}

pub async fn setup(db: &Db) -> (Initialised, Principal) {
    let (init, owner, _) = setup_with_enrollment(db).await;
    (init, owner)
}

/// `init` and the tenant acme: what init printed, the owner, acme's enrollment token.
pub async fn setup_with_enrollment(db: &Db) -> (Initialised, Principal, String) {
    let init = rings::init(db, NOW).await.unwrap();
    let owner = auth::authenticate(db, &init.owner_token).await.unwrap();
    let enrollment = rings::add_tenant(db, &owner, "acme", &public_text(&policy_key()), NOW)
        .await
        .unwrap();
    (init, owner, enrollment)
}

/// Enrolls a device with `key` and `scopes` as the HTTP layer would (the enrollment signed
/// by the key).
pub async fn enroll(
    db: &Db,
    enrollment: &str,
    key: &SigningKey,
    serial: &str,
    scopes: &[&str],
) -> hpl_server::devices::Device {
    use ed25519_dalek::Signer;
    let request = hpl_server::devices::Enrollment {
        public_key: public_text(key),
        serial: serial.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    let body = serde_json::to_vec(&request).unwrap();
    let digest = hpl_runtime::protocol::request_digest("POST", "/v1/enroll", NOW, "00", &body);
    let signature = hpl_runtime::load::hex(&key.sign(&digest).to_bytes());
    let e = hpl_server::devices::enroll(db, enrollment, &request, &digest, &signature, NOW)
        .await
        .unwrap();
    hpl_server::devices::Device {
        id: e.device_id,
        tenant: e.tenant,
        serial: serial.into(),
        ring: e.ring,
    }
}

/// A record of an example device (`template` under examples/devices) as `serial`, evaluated
/// on `bundle`.
pub fn record(template: &str, serial: &str, bundle: &[u8]) -> serde_json::Value {
    let mut keys = hpl_runtime::load::TrustedKeys::new();
    keys.add(policy_key().verifying_key().as_bytes()).unwrap();
    let b = hpl_runtime::load::load(bundle, &keys).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("../examples/devices/{template}.json")).unwrap(),
    )
    .unwrap();
    json["device_id"] = serial.into();
    let inv = hpl_runtime::inventory::Inventory::from_json(&json).unwrap();
    let r = hpl_runtime::device::Device::with_bundle(b, None).evaluate(&inv, NOW);
    serde_json::to_value(r).unwrap()
}

/// Acme's operators sign in through `idp`: the groups hpl-owners, hpl-admins, hpl-auditors,
/// hpl-operators and hpl-viewers are the five roles.
pub async fn trust(db: &Db, owner: &Principal, tenant: &str, idp: &idp::Provider) {
    use hpl_server::rbac::Role;
    let role_map = Role::ALL
        .into_iter()
        .map(|r| (format!("hpl-{r}s"), r))
        .collect();
    let config = hpl_server::oidc::SsoConfig {
        issuer: idp.issuer.clone(),
        client_id: idp.client_id.clone(),
        client_secret: None,
        roles_claim: "groups".into(),
        role_map,
    };
    hpl_server::oidc::set_sso(db, owner, tenant, &config, NOW)
        .await
        .unwrap();
}
