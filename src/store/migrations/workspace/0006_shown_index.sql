-- The shown index: every live record as an AI client is shown it (collection, id and data
-- masked by the workspace's rules and PII detectors) with the count of values masked per
-- category, and a full-text index over its masked values. MCP reads only
-- these tables, so nothing it answers depends on a value behind a mask; members' own
-- search keeps the raw index (records_fts). The server writes a record's row in the
-- transaction that writes the record, and rebuilds the whole index in the transaction
-- that changes the masking rules. meta 'shown_version' names the rules and masking
-- version the index was built under; a reader that finds it differing from the current
-- ones has the index rebuilt before it reads.
CREATE TABLE shown_records (
    record     INTEGER PRIMARY KEY,  -- the record's rowid in records
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object'),
    masked     TEXT NOT NULL CHECK (json_valid(masked)),  -- {"EMAIL": 2, ...}
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX shown_records_by_name ON shown_records (collection, id);

-- Contentless: the text indexed is the masked values of shown_records.data, joined (snippets
-- are cut from them again); rows are deleted by rowid.
CREATE VIRTUAL TABLE shown_fts USING fts5(
    text,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Any change to a record drops its shown row at once, so a row can never outlive the
-- record it shows; the server writes the new row in the same transaction.
CREATE TRIGGER shown_records_follow_update AFTER UPDATE ON records BEGIN
    DELETE FROM shown_fts WHERE rowid = old.rowid;
    DELETE FROM shown_records WHERE record = old.rowid;
END;

CREATE TRIGGER shown_records_follow_delete AFTER DELETE ON records BEGIN
    DELETE FROM shown_fts WHERE rowid = old.rowid;
    DELETE FROM shown_records WHERE record = old.rowid;
END;
