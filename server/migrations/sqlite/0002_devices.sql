-- Devices, their signed requests, what they upload, ring membership and the health gate.

-- The ring's membership rule (JSON: device_groups, scopes, percent, all) and the release it ran
-- before the current one (the health gate compares the two).
ALTER TABLE rings ADD COLUMN members_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE rings ADD COLUMN previous_release BIGINT;

-- The tenant's health gate thresholds (JSON; missing fields take the defaults).
ALTER TABLE tenants ADD COLUMN health_json TEXT NOT NULL DEFAULT '{}';

-- An enrolled device: its ed25519 key signs every request. `serial` is the device id its
-- inventories and records carry; one live device per serial and tenant.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    serial TEXT NOT NULL,
    public_hex TEXT NOT NULL UNIQUE,
    scopes_json TEXT NOT NULL,
    ring TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    enrolled_by TEXT NOT NULL,
    revoked_at BIGINT,
    last_seen BIGINT
);
CREATE UNIQUE INDEX devices_live_serial ON devices (tenant, serial) WHERE revoked_at IS NULL;

-- Nonces of signed requests inside the replay window: a second use is a replay.
CREATE TABLE device_nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

-- What devices upload: records and events, each once per (tenant, device, task_id, seq).
CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    device_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,                 -- 'record' or the event type
    ring TEXT NOT NULL,
    bundle_version BIGINT NOT NULL,
    state TEXT,                         -- a record's state
    received_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (tenant, device_id, task_id, seq)
);
CREATE INDEX reports_by_ring ON reports (tenant, ring, bundle_version, kind, id);

-- Each device's newest record, summarised (what the metrics count).
CREATE TABLE device_latest (
    tenant TEXT NOT NULL,
    device_id TEXT NOT NULL,
    ring TEXT NOT NULL,
    bundle_version BIGINT NOT NULL,
    evaluated_at TEXT NOT NULL,
    report_id BIGINT NOT NULL,
    summary_json TEXT NOT NULL,
    PRIMARY KEY (tenant, device_id)
);
