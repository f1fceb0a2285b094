-- The admin console's sign-ins: a login in progress (the OIDC state, nonce and PKCE verifier,
-- used once, for ten minutes) and sessions (the cookie's sha256, never the cookie itself).

CREATE TABLE console_logins (
    state TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    nonce TEXT NOT NULL,
    verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE console_sessions (
    id_sha256 TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    principal_json TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
