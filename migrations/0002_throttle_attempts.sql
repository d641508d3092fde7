-- Throttles count attempts before they are verified, and bound the verifications in flight
-- per key (src/store/throttle.rs). `failures` now counts admitted attempts in the window.
ALTER TABLE throttles ADD COLUMN in_flight BIGINT NOT NULL DEFAULT 0;
ALTER TABLE throttles ADD COLUMN busy_until BIGINT NOT NULL DEFAULT 0;
-- Lockouts served in this window: each doubles the next.
ALTER TABLE throttles ADD COLUMN strikes BIGINT NOT NULL DEFAULT 0;
-- A random value written only by an admitted attempt, so the attempt knows it was admitted.
ALTER TABLE throttles ADD COLUMN ticket BIGINT NOT NULL DEFAULT 0;
