-- Everything a user held that was issued at or before this time is revoked: self-contained
-- access tokens (by their iat), besides the grants and sessions ended in the same
-- transaction. Set by a password change, disabling, `latchkey user revoke-sessions`.
ALTER TABLE users ADD COLUMN tokens_revoked_at BIGINT NOT NULL DEFAULT 0;
