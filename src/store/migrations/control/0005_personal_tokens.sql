-- Personal tokens for scripts: `sbx_pat_<id>_<secret>`, scoped to one workspace and acting
-- for the person who made them. The id is public; only the SHA-256 of the whole token is kept.
CREATE TABLE personal_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  BLOB NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    access       TEXT NOT NULL CHECK (access IN ('read', 'read_write')),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX personal_tokens_by_workspace ON personal_tokens (workspace_id);
