-- OAuth clients registered dynamically (RFC 7591): public clients only, so no secrets.
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL CHECK (json_valid(redirect_uris) AND json_type(redirect_uris) = 'array'),
    scope         TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
