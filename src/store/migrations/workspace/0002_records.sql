-- Records: JSON objects grouped in collections. Deletion leaves a tombstone (deleted = 1)
-- so it syncs; the full-text index is kept in step by triggers, in the same transaction.
CREATE TABLE records (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    data       TEXT NOT NULL CHECK (json_valid(data) AND json_type(data) = 'object'),
    version    INTEGER NOT NULL CHECK (version >= 1),
    updated_at INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    PRIMARY KEY (collection, id)
) STRICT;

-- The text of every string and number in a live record, for search.
CREATE VIRTUAL TABLE records_fts USING fts5(
    collection UNINDEXED,
    id UNINDEXED,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER records_fts_insert AFTER INSERT ON records WHEN new.deleted = 0 BEGIN
    INSERT INTO records_fts (rowid, collection, id, body)
    VALUES (new.rowid, new.collection, new.id,
            (SELECT group_concat(value, ' ') FROM json_tree(new.data)
             WHERE type IN ('text', 'integer', 'real')));
END;

CREATE TRIGGER records_fts_update AFTER UPDATE ON records BEGIN
    DELETE FROM records_fts WHERE rowid = old.rowid;
    INSERT INTO records_fts (rowid, collection, id, body)
    SELECT new.rowid, new.collection, new.id,
           (SELECT group_concat(value, ' ') FROM json_tree(new.data)
            WHERE type IN ('text', 'integer', 'real'))
    WHERE new.deleted = 0;
END;

CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
    DELETE FROM records_fts WHERE rowid = old.rowid;
END;
