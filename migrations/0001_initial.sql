-- Portable schema: the same file runs on PostgreSQL and SQLite.
-- Ids and hashes are TEXT, times are BIGINT unix seconds (UTC), flags are BIGINT 0/1,
-- structured values are JSON in TEXT. Secrets, codes, tokens and session ids are only
-- ever stored hashed.

CREATE TABLE clients (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,            -- 'config' or 'cli'
    enabled     BIGINT NOT NULL,
    secret_hash TEXT,                     -- 'sha256:…' or '$argon2id$…'
    settings    TEXT NOT NULL,            -- JSON ClientSettings
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,      -- the OIDC `sub`: never reassigned
    username       TEXT NOT NULL,
    username_lower TEXT NOT NULL UNIQUE,
    email_lower    TEXT,
    password_hash  TEXT NOT NULL,
    disabled       BIGINT NOT NULL,
    claims         TEXT NOT NULL,         -- JSON UserClaims
    source         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX users_email_lower ON users (email_lower);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    sid          TEXT NOT NULL,           -- public id, the id_token `sid`
    user_id      TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    amr          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,         -- absolute lifetime
    ended_at     BIGINT
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_sid ON sessions (sid);

-- An authorization request waiting for login or consent.
CREATE TABLE interactions (
    id_hash    TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    request    TEXT NOT NULL,             -- JSON AuthorizationRequest
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX interactions_expires ON interactions (expires_at);

CREATE TABLE authorization_codes (
    code_hash   TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    data        TEXT NOT NULL,            -- JSON CodeData
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

-- One row per grant that can be revoked as a family (refresh tokens, code reuse).
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    user_id    TEXT,
    sid        TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_expires ON grants (expires_at);
CREATE INDEX grants_sid ON grants (sid);

CREATE TABLE refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    grant_id          TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    user_id           TEXT,
    data              TEXT NOT NULL,      -- JSON GrantData
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,    -- min(idle, family absolute)
    family_expires_at BIGINT NOT NULL,
    rotated_at        BIGINT,
    successor         TEXT                -- the rotation's response, sealed with a key derived from this token
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- Access tokens are self-contained JWTs; revoking one records its jti until it expires.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_enc  TEXT NOT NULL,           -- AES-256-GCM under the master key
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

-- Login and device-code throttling, shared by every node.
CREATE TABLE throttles (
    key          TEXT PRIMARY KEY,        -- e.g. 'user:alice', 'ip:203.0.113.9'
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    user_id    TEXT,
    client_id  TEXT,
    ip         TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE device_authorizations (
    device_code_hash TEXT PRIMARY KEY,
    user_code        TEXT NOT NULL UNIQUE,  -- normalised, 8 chars of the RFC 8628 §6.1 alphabet
    client_id        TEXT NOT NULL,
    scope            TEXT NOT NULL,
    status           TEXT NOT NULL,         -- pending, approved, denied, consumed
    user_id          TEXT,
    data             TEXT,                  -- JSON GrantData once approved
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX device_authorizations_expires ON device_authorizations (expires_at);
