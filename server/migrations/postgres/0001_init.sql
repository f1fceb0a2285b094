-- The control plane's state. Every invariant is the database's: keys, uniqueness, and the
-- version columns that mutations compare and bump in one statement (no replica holds state).

CREATE TABLE server_keys (
    role TEXT PRIMARY KEY,              -- 'distribution'
    key_id TEXT NOT NULL UNIQUE,
    secret_hex TEXT NOT NULL,
    public_hex TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE policy_keys (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    key_id TEXT NOT NULL,
    public_hex TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, key_id)
);

-- Credentials are stored as sha256 of the secret; the secret is shown once.
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                 -- 'owner' (bootstrap) or 'enrollment'
    tenant TEXT,                        -- NULL: every tenant (the bootstrap owner)
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE releases (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    bundle_version BIGINT NOT NULL,
    bundle_hash TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (tenant, bundle_version),
    UNIQUE (tenant, bundle_hash)
);

-- A ring runs at most one release; `revision` moves by one with every change, and every change
-- is an UPDATE ... WHERE revision = the one read: two replicas changing one ring at once
-- leave one result and one conflict.
CREATE TABLE rings (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    name TEXT NOT NULL,
    position BIGINT NOT NULL,
    release_version BIGINT,
    paused BIGINT NOT NULL DEFAULT 0,
    revision BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, name),
    UNIQUE (tenant, position)
);

-- Signed ring manifests; manifest_version is the ring's revision that produced it.
CREATE TABLE manifests (
    tenant TEXT NOT NULL,
    ring TEXT NOT NULL,
    manifest_version BIGINT NOT NULL,
    bundle_version BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, ring, manifest_version)
);

-- Append-only: nothing updates or deletes a row (issue 12 chains them).
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    tenant TEXT,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
