-- A key rotation in progress (`strongbox keys rotate`): the version each workspace database
-- moves to. Set for every workspace before the first one is rekeyed; cleared, with
-- key_version moved to it, once that workspace's database is under its new key.
ALTER TABLE workspaces ADD COLUMN pending_key_version INTEGER
    CHECK (pending_key_version IS NULL OR pending_key_version = key_version + 1);
