-- Sign-in through OpenID Connect providers.

-- A person's identity at a provider: the provider's name in the config and its `sub`,
-- which is stable where an email address is not.
CREATE TABLE oidc_identities (
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT,                                -- as the provider last said it
    linked_at    INTEGER NOT NULL,
    last_used_at INTEGER,
    PRIMARY KEY (provider, subject),
    UNIQUE (user_id, provider)
) STRICT;

-- A sign-in sent to a provider and not back yet. The state is stored hashed and works
-- once; the callback must come back to the browser that started it (browser_hash: the hash
-- of its pre-session or session anchor), before expires_at.
CREATE TABLE oidc_logins (
    state_hash    BLOB PRIMARY KEY,
    provider      TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    browser_hash  BLOB NOT NULL,
    link_user_id  TEXT REFERENCES users (id) ON DELETE CASCADE,  -- set when linking
    next          TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
) STRICT;

CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);

-- Accounts made by a provider sign-in have no password until the person sets one; they
-- keep a random hash nobody knows, and this says so.
ALTER TABLE users ADD COLUMN has_password INTEGER NOT NULL DEFAULT 1
    CHECK (has_password IN (0, 1));
