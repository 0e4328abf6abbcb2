-- The scheduled jobs: one row per finished run, for `strongbox jobs list`. The summary is
-- counts per category, never content. Old runs are pruned as new ones are recorded.
CREATE TABLE job_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT NOT NULL,                        -- the job's CLI name, e.g. 'usage-sweep'
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'stopped')),
    summary     TEXT NOT NULL
) STRICT;
CREATE INDEX job_runs_by_job ON job_runs (job, id);

-- Workspaces whose control rows are deleted but whose directory may still be on disk: the
-- row commits with the deletion, and goes once the directory is gone, so a crash between
-- the two is finished by the next purge.
CREATE TABLE workspace_deletions (
    workspace_id TEXT PRIMARY KEY,
    deleted_at   INTEGER NOT NULL
) STRICT;
