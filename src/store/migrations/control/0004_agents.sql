-- Paired desktop agents: single-use pairing codes, the agents themselves, and their
-- rotating refresh secrets. Every secret is stored as the SHA-256 of its text.
CREATE TABLE pairing_codes (
    code_hash    BLOB PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    device_name  TEXT NOT NULL,
    created_by   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    agent_id     TEXT  -- the agent the code became
) STRICT;
CREATE INDEX pairing_codes_by_workspace ON pairing_codes (workspace_id);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    paired_at      INTEGER NOT NULL,
    paired_by      TEXT,  -- the user who issued the code; kept when they leave
    last_seen_at   INTEGER,
    version        TEXT,
    revoked_at     INTEGER,
    revoked_reason TEXT CHECK (revoked_reason IN ('dashboard', 'refresh_reuse')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;
CREATE INDEX agents_by_workspace ON agents (workspace_id);

-- Every refresh secret an agent was given. Only the newest unused one is valid; presenting
-- a used one means it was copied, and the agent is revoked.
CREATE TABLE agent_refresh_secrets (
    secret_hash BLOB PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    issued_at   INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX agent_refresh_secrets_by_agent ON agent_refresh_secrets (agent_id);
