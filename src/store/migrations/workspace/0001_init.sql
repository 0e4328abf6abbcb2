-- Workspace database: one per workspace. Later migrations add collections, records, audit, masking.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
