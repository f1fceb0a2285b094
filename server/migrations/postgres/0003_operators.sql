-- Operators (issue 12): SSO per tenant, tenant API credentials with a role, four-eyes
-- approvals, and the audit trail as one hash chain per tenant that the database itself
-- refuses to change.

-- A tenant API credential's role (kind 'api'); the bootstrap owner and enrollment tokens have none.
ALTER TABLE credentials ADD COLUMN role TEXT;
-- How many approvals (by admins or owners other than the requester) a promotion needs.
ALTER TABLE tenants ADD COLUMN approvals_required BIGINT NOT NULL DEFAULT 1;

-- The tenant's identity provider: tokens whose issuer and audience are these are its operators;
-- role_map_json maps values of the roles claim (groups) to roles.
CREATE TABLE tenant_sso (
    tenant TEXT PRIMARY KEY REFERENCES tenants(name),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret TEXT,
    roles_claim TEXT NOT NULL,
    role_map_json TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (issuer, client_id)
);

-- Operators who signed in, with the roles they had then (the users and roles view).
CREATE TABLE operators (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    display TEXT,
    roles_json TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- A change that waits for approval. state: pending, applied, rejected, expired, failed.
CREATE TABLE change_requests (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(name),
    kind TEXT NOT NULL,
    ring TEXT NOT NULL,
    release_version BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    required BIGINT NOT NULL,
    state TEXT NOT NULL,
    decided_at BIGINT,
    outcome TEXT
);
-- One open request per ring: a second would race the first.
CREATE UNIQUE INDEX change_requests_one_pending ON change_requests (tenant, ring) WHERE state = 'pending';

CREATE TABLE approvals (
    request_id BIGINT NOT NULL REFERENCES change_requests(id),
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,             -- 'approve' or 'reject'
    at BIGINT NOT NULL,
    comment TEXT,
    PRIMARY KEY (request_id, approver)
);

-- The audit trail: chain = the tenant ('' for the server's own entries), seq 1, 2, 3 … in it,
-- each entry carrying the hash of the one before (runtime/src/audit_chain.rs).
CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    emergency BIGINT NOT NULL DEFAULT 0,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
-- Each chain's last entry. Appending locks this row, so entries of one chain are written one at
-- a time whatever the number of replicas.
CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE FUNCTION hpl_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION hpl_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION hpl_append_only();

-- The first audit table is read once into the chain (hpl-server does it when it opens the
-- database) and written no more.
CREATE TRIGGER audit_legacy_no_change BEFORE INSERT OR UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION hpl_append_only();
CREATE TRIGGER audit_legacy_no_truncate BEFORE TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION hpl_append_only();

-- Where each export (a webhook) has got to: at-least-once delivery resumes from here.
CREATE TABLE export_cursors (
    name TEXT PRIMARY KEY,
    audit_seq BIGINT NOT NULL,
    report_id BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
