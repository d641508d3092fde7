-- Whether a grant was made with the offline_access scope (OpenID Connect Core section 11).
-- Ending a browser session revokes the grants made in it except these: "Refresh tokens issued
-- with the offline_access property normally SHOULD NOT be revoked" (Back-Channel Logout 1.0
-- section 2.7). Grants recorded before this column existed count as not offline, so a logout
-- still revokes them as it did.
ALTER TABLE grants ADD COLUMN offline_access BIGINT NOT NULL DEFAULT 0;
