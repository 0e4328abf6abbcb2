-- Workspaces gain a name, members with roles, invitations, and a closure deadline.
ALTER TABLE workspaces ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE workspaces ADD COLUMN closes_at INTEGER;  -- set while closure is pending

CREATE TABLE memberships (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX memberships_by_user ON memberships (user_id);

-- An invitation is a single-use link bound to one email address and one role.
CREATE TABLE invites (
    hash         BLOB PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    invited_by   TEXT NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER
) STRICT;
CREATE INDEX invites_by_workspace ON invites (workspace_id);

-- Data exports, for the per-workspace hourly limit and as a record of who took a copy.
CREATE TABLE exports (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id),
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX exports_by_workspace ON exports (workspace_id, created_at);

-- Accounts can be closed too: deleted after a 30-day hold unless the owner cancels.
ALTER TABLE users ADD COLUMN closes_at INTEGER;
