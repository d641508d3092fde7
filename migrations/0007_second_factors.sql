-- Second factors (issue 19). A TOTP secret (RFC 6238) must be read back to compute codes, so
-- it is stored sealed under the master key (AES-256-GCM, crypto::aead), never in the clear.
CREATE TABLE mfa_factors (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret_enc    TEXT,
    -- The last time step a code was accepted for: RFC 6238 section 5.2, a code is good once.
    last_step     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    -- NULL until the user typed a first code; an enrolment not confirmed by expires_at is
    -- dropped by the janitor.
    confirmed_at  BIGINT,
    expires_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);
-- One authenticator app per account: a second confirmation of the same kind fails.
CREATE UNIQUE INDEX mfa_factors_one_totp ON mfa_factors (user_id)
    WHERE kind = 'totp' AND confirmed_at IS NOT NULL;

-- Recovery codes: shown once, stored as SHA-256 (they are random, like session ids), each
-- good once.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in between its password and its second factor. Keyed by the SHA-256 of the random
-- value in the form; bounded by expires_at and deleted when the factor is accepted, so it
-- starts one session at most.
CREATE TABLE pending_logins (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    -- Where the sign-in continues: an authorization request's interaction, a device code,
    -- or the account page.
    purpose     TEXT NOT NULL,
    interaction TEXT,
    -- A step-up: the session (by its public sid) that gets the second factor in place.
    sid         TEXT,
    amr         TEXT NOT NULL,
    auth_time   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX pending_logins_expires ON pending_logins (expires_at);

-- When the session's second factor was checked (NULL: password only), and where it was
-- started, for the account page's list of signed-in browsers.
ALTER TABLE sessions ADD COLUMN mfa_at BIGINT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
