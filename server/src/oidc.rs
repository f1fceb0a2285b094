//! Operators' identity: OpenID Connect. Each tenant names its identity provider (issuer,
//! client id, the claim that carries groups, and which group is which role); a bearer token
//! is an ID or access token (a JWT) from that provider, verified here with `jsonwebtoken` —
//! nothing of JOSE is written by hand:
//!
//! - the signature, against the provider's JWKS, found through its discovery document and
//!   cached; an unknown `kid` fetches the JWKS again (at most once per
//!   [`Verifier::refresh_interval`], so random `kid`s cannot make the server hammer the
//!   provider), and still unknown is refused;
//! - asymmetric algorithms only (RS*, PS*, ES*, EdDSA): `none` does not parse, and an HMAC
//!   token would let anyone who has the provider's *public* key sign;
//! - issuer exactly, audience containing the client id, `exp` required, `nbf` when present,
//!   both with [`LEEWAY`]; the browser flow also checks the `nonce` it sent.
//!
//! The tenant is found from the token's issuer and audience (unique across tenants), then the
//! token is verified against that tenant's provider: a token of another tenant's provider
//! never verifies as this one's.

use crate::audit::{self, Action};
use crate::db::{get, Db};
use crate::error::ServerError;
use crate::rbac::Role;
use crate::Principal;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: u64 = 60;
/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_LIFETIME: Duration = Duration::from_secs(3600);

/// A tenant's identity provider and how its groups map to roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// The issuer URL exactly as tokens carry it (`https://…`; `http://` only on loopback).
    pub issuer: String,
    /// The client id registered for hpl: tokens must name it in `aud`.
    pub client_id: String,
    /// The client secret, for the console's code exchange (confidential clients). Never shown.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    /// The claim whose values (a string or a list) are looked up in `role_map`.
    #[serde(default = "default_claim")]
    pub roles_claim: String,
    /// Claim value → role. A person with several gets each; one with none gets no access.
    pub role_map: BTreeMap<String, Role>,
}

fn default_claim() -> String {
    "groups".into()
}

fn loopback(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with([':', '/']))
        })
}

/// `https://…`, or `http://` on loopback (the tests' provider): a token's keys never come over
/// plain HTTP from elsewhere.
fn check_url(what: &str, url: &str) -> Result<(), ServerError> {
    if url.starts_with("https://") || loopback(url) {
        Ok(())
    } else {
        Err(ServerError::Invalid(format!(
            "the {what} `{url}` is not https:// (plain http:// only on loopback)"
        )))
    }
}

impl SsoConfig {
    pub fn validate(&self) -> Result<(), ServerError> {
        check_url("issuer", &self.issuer)?;
        if self.client_id.trim().is_empty() || self.roles_claim.trim().is_empty() {
            return Err(ServerError::Invalid(
                "the client id and the roles claim are needed".into(),
            ));
        }
        Ok(())
    }
}

/// Sets a tenant's identity provider (audited, the secret left out).
pub async fn set_sso(
    db: &Db,
    who: &Principal,
    tenant: &str,
    config: &SsoConfig,
    now: i64,
) -> Result<SsoConfig, ServerError> {
    config.validate()?;
    let before = sso(db, tenant).await?;
    let mut tx = db.pool.begin().await?;
    let exists = sqlx::query("SELECT name FROM tenants WHERE name = $1")
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(ServerError::NotFound(format!("no tenant `{tenant}`")));
    }
    sqlx::query("DELETE FROM tenant_sso WHERE tenant = $1")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO tenant_sso (tenant, issuer, client_id, client_secret, roles_claim, role_map_json, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(&config.issuer)
    .bind(&config.client_id)
    .bind(config.client_secret.clone())
    .bind(&config.roles_claim)
    .bind(serde_json::to_string(&config.role_map).unwrap_or_default())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|_| {
        ServerError::Conflict(format!(
            "another tenant already trusts issuer `{}` with client id `{}`",
            config.issuer, config.client_id
        ))
    })?;
    audit::append(
        &mut tx,
        now,
        audit::Record {
            actor: who,
            tenant: Some(tenant),
            action: Action::TenantSso,
            subject: &format!("tenant {tenant}"),
            before: before.map(|b| serde_json::to_value(b).unwrap_or_default()),
            after: Some(serde_json::to_value(config).unwrap_or_default()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(config.clone())
}

fn config_of(row: &sqlx::any::AnyRow) -> Result<SsoConfig, ServerError> {
    let map: String = get(row, "role_map_json")?;
    Ok(SsoConfig {
        issuer: get(row, "issuer")?,
        client_id: get(row, "client_id")?,
        client_secret: get(row, "client_secret")?,
        roles_claim: get(row, "roles_claim")?,
        role_map: serde_json::from_str(&map)
            .map_err(|e| ServerError::Invalid(format!("a stored role map is corrupt: {e}")))?,
    })
}

/// A tenant's identity provider, if it has one.
pub async fn sso(db: &Db, tenant: &str) -> Result<Option<SsoConfig>, ServerError> {
    let row = sqlx::query("SELECT * FROM tenant_sso WHERE tenant = $1")
        .bind(tenant)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(config_of).transpose()
}

/// The provider's discovery document (the fields hpl uses).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
}

struct Cached {
    discovery: Discovery,
    jwks: JwkSet,
    fetched: Instant,
}

/// Verifies operators' tokens; holds each provider's discovery document and JWKS.
pub struct Verifier {
    cache: Mutex<HashMap<String, Cached>>,
    /// The least time between two JWKS fetches for one provider caused by unknown `kid`s.
    pub refresh_interval: Duration,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new(Duration::from_secs(30))
    }
}

/// A verified operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub tenant: String,
    pub subject: String,
    pub display: Option<String>,
    pub roles: Vec<Role>,
    pub expires_at: i64,
}

impl Identity {
    pub fn principal(&self) -> Principal {
        let mut p = Principal::operator(
            format!("oidc:{}:{}", self.tenant, self.subject),
            &self.tenant,
            self.roles.clone(),
        );
        p.display = self.display.clone();
        p
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What is read before the signature is checked: only to find the tenant whose provider then
/// verifies everything.
#[derive(Deserialize)]
struct Unverified {
    iss: String,
    aud: OneOrMany,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

fn unauthorized(why: impl std::fmt::Display) -> ServerError {
    ServerError::Unauthorized(format!("the token is not accepted: {why}"))
}

/// GETs a JSON document (blocking; called on a blocking thread).
fn fetch<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, ServerError> {
    let failed = |e: &dyn std::fmt::Display| {
        ServerError::Unauthorized(format!("the identity provider's {url} cannot be read: {e}"))
    };
    let answer = crate::outbound::get(url).map_err(|e| failed(&e))?;
    if answer.status != 200 {
        return Err(failed(&format!("it answered {}", answer.status)));
    }
    serde_json::from_slice(&answer.body).map_err(|e| failed(&e))
}

async fn fetch_async<T: serde::de::DeserializeOwned + Send + 'static>(
    url: String,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(move || fetch::<T>(&url))
        .await
        .map_err(|e| ServerError::Unauthorized(format!("fetching from the provider: {e}")))?
}

/// The algorithms a provider may sign with: asymmetric ones only.
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Verifier {
    pub fn new(refresh_interval: Duration) -> Verifier {
        Verifier {
            cache: Mutex::new(HashMap::new()),
            refresh_interval,
        }
    }

    fn cached<T>(&self, issuer: &str, f: impl FnOnce(&Cached) -> T) -> Option<T> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(issuer).map(f)
    }

    /// Fetches the discovery document and the JWKS of `issuer` and caches them.
    async fn load(&self, issuer: &str) -> Result<(), ServerError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = fetch_async(url).await?;
        if discovery.issuer != issuer {
            return Err(unauthorized(format!(
                "the provider at `{issuer}` calls itself `{}`",
                discovery.issuer
            )));
        }
        check_url("JWKS address", &discovery.jwks_uri)?;
        let jwks: JwkSet = fetch_async(discovery.jwks_uri.clone()).await?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(
            issuer.to_string(),
            Cached {
                discovery,
                jwks,
                fetched: Instant::now(),
            },
        );
        Ok(())
    }

    /// The provider's discovery document (cached).
    pub async fn discovery(&self, issuer: &str) -> Result<Discovery, ServerError> {
        if let Some(d) = self.cached(issuer, |c| c.discovery.clone()) {
            return Ok(d);
        }
        self.load(issuer).await?;
        self.cached(issuer, |c| c.discovery.clone())
            .ok_or_else(|| unauthorized("the provider's documents were not kept"))
    }

    /// The key `kid` of `issuer`, fetching the JWKS when it is not cached, stale, or does not
    /// have the key (and was not fetched within the refresh interval).
    async fn key(
        &self,
        issuer: &str,
        kid: &str,
        alg: Algorithm,
    ) -> Result<DecodingKey, ServerError> {
        let lookup = |c: &Cached| {
            c.jwks.find(kid).map(|jwk| {
                // A key for encryption, or for another algorithm, signs nothing here.
                let usable = !matches!(
                    jwk.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                ) && jwk
                    .common
                    .key_algorithm
                    .is_none_or(|a| Algorithm::try_from(a).is_ok_and(|a| a == alg));
                (usable, DecodingKey::from_jwk(jwk))
            })
        };
        let state = self.cached(issuer, |c| (c.fetched.elapsed(), lookup(c)));
        let found = match state {
            Some((age, Some(found))) if age < JWKS_LIFETIME => Some(found),
            Some((age, None)) if age < self.refresh_interval => {
                return Err(unauthorized(format!(
                    "no key `{kid}` in the provider's JWKS"
                )))
            }
            _ => None,
        };
        let (usable, key) = match found {
            Some(f) => f,
            None => {
                self.load(issuer).await?;
                self.cached(issuer, lookup)
                    .flatten()
                    .ok_or_else(|| unauthorized(format!("no key `{kid}` in the provider's JWKS")))?
            }
        };
        if !usable {
            return Err(unauthorized(format!(
                "key `{kid}` is not a {alg:?} signing key"
            )));
        }
        key.map_err(unauthorized)
    }

    /// Verifies `token` as an operator of the tenant whose provider issued it. `nonce`: the
    /// one the browser flow sent, which the token must carry.
    pub async fn verify(
        &self,
        db: &Db,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<Identity, ServerError> {
        let header = jsonwebtoken::decode_header(token).map_err(unauthorized)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(unauthorized(format!(
                "{:?} is not an asymmetric signature",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthorized("the token names no key (`kid`)"))?;
        let claimed: Unverified =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(unauthorized)?;
        let audiences = claimed.aud.into_vec();
        let rows = sqlx::query("SELECT * FROM tenant_sso WHERE issuer = $1")
            .bind(&claimed.iss)
            .fetch_all(&db.pool)
            .await?;
        let mut tenant_config = None;
        for row in &rows {
            let config = config_of(row)?;
            if audiences.contains(&config.client_id) {
                tenant_config = Some((get::<String>(row, "tenant")?, config));
            }
        }
        let (tenant, config) = tenant_config.ok_or_else(|| {
            unauthorized(format!(
                "no tenant trusts issuer `{}` for audience {audiences:?}",
                claimed.iss
            ))
        })?;
        let key = self.key(&config.issuer, &kid, header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(unauthorized)?;
        let claims = data.claims;
        if let Some(expected) = nonce {
            if claims.nonce.as_deref() != Some(expected) {
                return Err(unauthorized("the nonce is not the one this sign-in sent"));
            }
        }
        let groups = match claims.rest.get(&config.roles_claim) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<Role> = groups
            .iter()
            .filter_map(|g| config.role_map.get(g).copied())
            .collect();
        roles.sort();
        roles.dedup();
        Ok(Identity {
            tenant,
            subject: claims.sub,
            display: claims.email.or(claims.name),
            roles,
            expires_at: claims.exp,
        })
    }
}

/// How stale an operator's `last_seen` may get before a request writes it again.
const SEEN_EVERY: i64 = 60;

/// Records that an operator was seen with these roles (the users and roles view). Every API
/// request of a signed-in operator comes through here, so it reads, and writes only for a new
/// operator, changed roles or name, or a sighting older than [`SEEN_EVERY`] — not a write per
/// request.
pub async fn seen(db: &Db, identity: &Identity, now: i64) -> Result<(), ServerError> {
    let id = identity.principal().id;
    let roles = serde_json::to_string(&identity.roles).unwrap_or_default();
    let known = sqlx::query(
        "SELECT display, roles_json, last_seen FROM operators WHERE tenant = $1 AND id = $2",
    )
    .bind(&identity.tenant)
    .bind(&id)
    .fetch_optional(&db.pool)
    .await?;
    if let Some(row) = &known {
        let fresh = get::<i64>(row, "last_seen")? > now - SEEN_EVERY
            && get::<String>(row, "roles_json")? == roles
            && get::<Option<String>>(row, "display")? == identity.display;
        if fresh {
            return Ok(());
        }
        sqlx::query(
            "UPDATE operators SET display = $1, roles_json = $2, last_seen = $3 WHERE tenant = $4 AND id = $5",
        )
        .bind(identity.display.clone())
        .bind(&roles)
        .bind(now)
        .bind(&identity.tenant)
        .bind(&id)
        .execute(&db.pool)
        .await?;
    } else {
        // A race with another replica's insert is harmless: the row is there either way.
        let _ = sqlx::query(
            "INSERT INTO operators (tenant, id, display, roles_json, first_seen, last_seen) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&identity.tenant)
        .bind(&id)
        .bind(identity.display.clone())
        .bind(&roles)
        .bind(now)
        .execute(&db.pool)
        .await;
    }
    Ok(())
}

/// An operator the server has seen.
#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    pub id: String,
    pub display: Option<String>,
    pub roles: Vec<Role>,
    pub first_seen: i64,
    pub last_seen: i64,
}

pub async fn operators(db: &Db, tenant: &str) -> Result<Vec<Operator>, ServerError> {
    let rows = sqlx::query(
        "SELECT id, display, roles_json, first_seen, last_seen FROM operators WHERE tenant = $1 ORDER BY id",
    )
    .bind(tenant)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let roles: String = get(r, "roles_json")?;
            Ok(Operator {
                id: get(r, "id")?,
                display: get(r, "display")?,
                roles: serde_json::from_str(&roles).unwrap_or_default(),
                first_seen: get(r, "first_seen")?,
                last_seen: get(r, "last_seen")?,
            })
        })
        .collect()
}
