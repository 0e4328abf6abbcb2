-- What AI clients asked of the workspace, one row per call: who, which operation, how many
-- items came back, how many values of each kind were masked, how long it took. Never the
-- arguments or the results. Kept 90 days.
CREATE TABLE usage (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,      -- the credential: 'grant:<id>' or 'token:<id>'
    user_id     TEXT NOT NULL,
    operation   TEXT NOT NULL,      -- a tool's name, or an MCP method
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'refused')),
    items       INTEGER NOT NULL CHECK (items >= 0),
    masked      TEXT NOT NULL CHECK (json_valid(masked)),  -- {"EMAIL": 2, ...}
    duration_us INTEGER NOT NULL CHECK (duration_us >= 0)
) STRICT;

CREATE INDEX usage_by_time ON usage (at);
