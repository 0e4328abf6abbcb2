-- The audit log: control migration 10 (the system log) and workspace migration 5 (each
-- workspace's log). Rows are append-only and chained: each row's hash covers the previous
-- row's. The nightly sweep removes old rows only after writing an anchor that covers them.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
) STRICT;

CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE INDEX audit_log_by_action ON audit_log (action, seq);

-- Where the chain ends, signed, so rows cut from the end are noticed too.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL,
    mac  BLOB NOT NULL
) STRICT;

-- One per sweep that removed rows: everything up to through_seq is gone, the last of it
-- hashed last_hash; the MAC proves the sweep wrote it.
CREATE TABLE audit_anchors (
    through_seq INTEGER PRIMARY KEY,
    last_hash   BLOB NOT NULL,
    removed     INTEGER NOT NULL CHECK (removed > 0),
    swept_at    INTEGER NOT NULL,
    mac         BLOB NOT NULL
) STRICT;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit rows cannot be changed');
END;

CREATE TRIGGER audit_log_swept_only BEFORE DELETE ON audit_log
WHEN OLD.seq > (SELECT coalesce(max(through_seq), 0) FROM audit_anchors)
BEGIN
    SELECT RAISE(ABORT, 'audit rows are removed only by the retention sweep');
END;

CREATE TRIGGER audit_anchors_append_only BEFORE UPDATE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors cannot be changed');
END;

CREATE TRIGGER audit_anchors_kept BEFORE DELETE ON audit_anchors
BEGIN
    SELECT RAISE(ABORT, 'audit anchors cannot be removed');
END;
