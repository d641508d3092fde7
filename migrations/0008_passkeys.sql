-- Passkeys (WebAuthn Level 2) as second factors and for signing in without a password
-- (issue 19). A passkey's public key is not secret: it is kept as webauthn-rs's `Passkey`
-- JSON (public key, signature counter, backup flags), looked up by its credential id.
ALTER TABLE mfa_factors ADD COLUMN credential_id TEXT;
ALTER TABLE mfa_factors ADD COLUMN credential TEXT;
-- Whether the browser said the credential is discoverable (credProps.rk, WebAuthn Level 2
-- section 10.4): unsigned, so it is only shown, never relied on.
ALTER TABLE mfa_factors ADD COLUMN discoverable BIGINT NOT NULL DEFAULT 0;
-- A credential belongs to one account (WebAuthn Level 2 section 7.1, step 22). NULLs (the
-- authenticator apps) do not collide.
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors (credential_id);

-- A WebAuthn ceremony of a signed-in account or of a sign-in whose password was right (adding
-- a passkey, a passkey as the second factor), between its options and the browser's answer:
-- the challenge state lives here, never in the browser, keyed by the SHA-256 of a random value
-- in the page's form, taken once (DELETE ... RETURNING), at most a few per account, and
-- bounded by expires_at.
CREATE TABLE passkey_ceremonies (
    id_hash    TEXT PRIMARY KEY,
    -- register | second_factor
    kind       TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    -- SHA-256 of what it belongs to: the session adding a passkey (its sid), or the pending
    -- sign-in of a second factor.
    bound      TEXT NOT NULL,
    -- A registration: the name the person gave the passkey.
    name       TEXT,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_expires ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_user ON passkey_ceremonies (user_id);

-- Sign-ins with a passkey alone are started by anyone, so they store nothing until a passkey
-- answers: the ceremony state travels in the page, sealed under the master key and bound to
-- what it continues. A ceremony that signed someone in is spent here (the SHA-256 of its
-- sealed value), so its answer cannot sign in twice; kept until the ceremony would have
-- expired.
CREATE TABLE passkey_spent (
    id_hash    TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_spent_expires ON passkey_spent (expires_at);
