-- What a person granted an OAuth client: access to one workspace, for a scope, for the MCP
-- resource. Codes and tokens hang off the grant, so revoking it ends all of them.
CREATE TABLE oauth_grants (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    resource     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX oauth_grants_by_workspace ON oauth_grants (workspace_id);

-- Authorization codes: single use, a minute long, bound to the redirect URI and the PKCE
-- challenge they were issued with.
CREATE TABLE oauth_codes (
    code_hash      BLOB PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
) STRICT;

-- Access and refresh tokens, stored as SHA-256. A refresh token is rotated on use; the
-- one it was replaced by is kept to tell a parallel refresh from a replay.
CREATE TABLE oauth_tokens (
    token_hash  BLOB PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    used_at     INTEGER,
    grace_used  INTEGER NOT NULL DEFAULT 0 CHECK (grace_used IN (0, 1))
) STRICT;
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
