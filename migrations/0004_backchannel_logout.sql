-- OpenID Connect Back-Channel Logout 1.0. One row per browser session and client with a
-- backchannel_logout_uri that the session authorized (section 2.3, "Remembering Logged-In
-- RPs"). Armed while the session lives; the transaction that ends the session makes it a
-- delivery (due_at, next_attempt_at), which a worker on any node claims and POSTs.
CREATE TABLE backchannel_logouts (
    jti             TEXT PRIMARY KEY,          -- the Logout Token's jti, the same on every attempt
    sid             TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,             -- the Logout Token's sub
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,           -- armed: the session's end; then when the janitor may purge it
    due_at          BIGINT,                    -- when the session ended; NULL while armed
    next_attempt_at BIGINT,                    -- set while the delivery is pending; a claim moves it past its lease
    attempts        BIGINT NOT NULL DEFAULT 0, -- claims so far; also what a claim's holder must still see to finish it
    finished_at     BIGINT,
    outcome         TEXT,                      -- delivered, failed, dropped
    UNIQUE (sid, client_id)
);
CREATE INDEX backchannel_logouts_next ON backchannel_logouts (next_attempt_at);
CREATE INDEX backchannel_logouts_user ON backchannel_logouts (user_id);
CREATE INDEX backchannel_logouts_expires ON backchannel_logouts (expires_at);
