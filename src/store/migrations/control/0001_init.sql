-- Control database: install-wide state. Later migrations add accounts, sessions, OAuth, agents.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per workspace; key_version says which derived key opens its database file.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    key_version INTEGER NOT NULL CHECK (key_version >= 1),
    created_at  INTEGER NOT NULL
) STRICT;

-- Written and read back by /readyz to prove the database accepts writes.
CREATE TABLE readiness_probe (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    nonce      TEXT NOT NULL,
    checked_at INTEGER NOT NULL
) STRICT;
