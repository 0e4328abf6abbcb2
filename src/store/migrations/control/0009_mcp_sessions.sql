-- MCP sessions (`Mcp-Session-Id`): bound to the credential that began them (an OAuth grant
-- or a personal token), idle 30 minutes at most, 4 hours in all.
CREATE TABLE mcp_sessions (
    id_hash          BLOB PRIMARY KEY,
    credential       TEXT NOT NULL,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    protocol_version TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL
) STRICT;
