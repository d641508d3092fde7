-- The flow explorer (issue 20): one learner's run of one flow, tied to their browser by a
-- random cookie whose SHA-256 keys the row. `data` is the run as JSON: the exchanges it
-- made and saw, with the tokens it received (shown only to this browser), bounded in size
-- by the explorer. Deleted when it expires.
CREATE TABLE explorer_runs (
    id_hash    TEXT PRIMARY KEY,
    flow       TEXT NOT NULL,
    data       TEXT NOT NULL,
    -- Bumped by every write: two tabs of one run cannot overwrite each other's steps.
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX explorer_runs_expires ON explorer_runs (expires_at);
