-- People: accounts, second factors, browser sessions and one-time links.
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,           -- normalised: trimmed, lowercase
    password_hash     TEXT NOT NULL,                  -- Argon2id PHC string, parameters inside
    email_verified_at INTEGER,
    totp_secret       BLOB,                           -- the database itself is encrypted
    totp_enabled_at   INTEGER,                        -- NULL while enrolment is pending
    totp_last_step    INTEGER,                        -- replay guard: last accepted time step
    created_at        INTEGER NOT NULL
) STRICT;

-- Only the SHA-256 of a session id is stored; the id itself lives in the cookie.
CREATE TABLE sessions (
    id_hash      BLOB PRIMARY KEY,
    -- The id before the last rotation, honoured for a few seconds so requests already in
    -- flight with it are not signed out.
    prev_id_hash BLOB,
    -- Random, fixed for the session's life: CSRF tokens are signed over it, so rotating
    -- the id does not invalidate forms already on screen.
    csrf_anchor  BLOB NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('mfa_pending', 'active')),
    created_at   INTEGER NOT NULL,                    -- the absolute timeout counts from here
    rotated_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,                    -- the idle timeout counts from here
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_prev_id ON sessions (prev_id_hash);

-- Ten single-use backup codes per account with MFA, stored hashed.
CREATE TABLE backup_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- Single-use links: first-run setup, email verification, password reset, magic sign-in.
CREATE TABLE one_time_links (
    hash       BLOB PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('setup', 'verify', 'reset', 'magic')),
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX one_time_links_by_user ON one_time_links (user_id, purpose);
