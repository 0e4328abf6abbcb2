-- Masking rules (a term shown under an alias, or redacted), and the sync batches agents
-- sent, kept so a replayed batch is answered from its stored result. The setting
-- 'require_redaction' lives in meta.
CREATE TABLE masking_rules (
    term       TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    action     TEXT NOT NULL CHECK (action IN ('alias', 'redact')),
    alias      TEXT,
    created_at INTEGER NOT NULL,
    CHECK ((action = 'alias') = (alias IS NOT NULL))
) STRICT;

CREATE TABLE sync_batches (
    agent_id        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    BLOB NOT NULL,  -- SHA-256 of the batch, so a reused key with other content is refused
    result          TEXT NOT NULL CHECK (json_valid(result)),
    records         INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (agent_id, idempotency_key)
) STRICT;
