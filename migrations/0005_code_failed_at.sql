-- When a code was used up by a failed token request (a wrong redirect_uri or PKCE verifier)
-- rather than redeemed: a later attempt then learns that nothing was issued from it, so
-- there is nothing to revoke. NULL for a redeemed code, and for one spent by an older node
-- (which does not set it): those keep the revocation answer.
ALTER TABLE authorization_codes ADD COLUMN failed_at BIGINT;
