-- Every membership gets an id, and every credential names the membership it was made in.
-- A membership ends when its person is removed, leaves, or their account is purged; its id
-- is never given out again (AUTOINCREMENT), so someone invited back starts a new membership
-- and the old one's credentials stay dead. Until now a credential was matched to its
-- membership by comparing whole-second timestamps, which cannot tell a membership from the
-- next one begun in the same second.

-- The table is rebuilt to give it an id: SQLite cannot add a primary key to a table.
CREATE TABLE memberships_with_ids (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, user_id)
) STRICT;
INSERT INTO memberships_with_ids (workspace_id, user_id, role, created_at)
    SELECT workspace_id, user_id, role, created_at FROM memberships
    ORDER BY created_at, workspace_id, user_id;
DROP TABLE memberships;
ALTER TABLE memberships_with_ids RENAME TO memberships;
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Each credential links to its person's current membership when that membership began no
-- later than the credential (the rule the timestamps enforced); otherwise to nothing, and
-- a credential with no membership is refused. When a membership ends, the links to it are
-- cleared (ON DELETE SET NULL), which lets lists and the cleanup job see dead credentials;
-- the checks themselves compare ids and do not depend on it.
ALTER TABLE personal_tokens ADD COLUMN membership_id INTEGER
    REFERENCES memberships (id) ON DELETE SET NULL;
UPDATE personal_tokens SET membership_id = (
    SELECT m.id FROM memberships m
    WHERE m.workspace_id = personal_tokens.workspace_id
      AND m.user_id = personal_tokens.user_id
      AND m.created_at <= personal_tokens.created_at);
CREATE INDEX personal_tokens_by_membership ON personal_tokens (membership_id);

ALTER TABLE oauth_grants ADD COLUMN membership_id INTEGER
    REFERENCES memberships (id) ON DELETE SET NULL;
UPDATE oauth_grants SET membership_id = (
    SELECT m.id FROM memberships m
    WHERE m.workspace_id = oauth_grants.workspace_id
      AND m.user_id = oauth_grants.user_id
      AND m.created_at <= oauth_grants.created_at);
CREATE INDEX oauth_grants_by_membership ON oauth_grants (membership_id);

-- A pairing code belongs to the membership of the person who issued it.
ALTER TABLE pairing_codes ADD COLUMN membership_id INTEGER
    REFERENCES memberships (id) ON DELETE SET NULL;
UPDATE pairing_codes SET membership_id = (
    SELECT m.id FROM memberships m
    WHERE m.workspace_id = pairing_codes.workspace_id
      AND m.user_id = pairing_codes.created_by
      AND m.created_at <= pairing_codes.created_at);
CREATE INDEX pairing_codes_by_membership ON pairing_codes (membership_id);

-- An agent belongs to the membership its pairing code was issued in. Agents used to
-- outlive the person who paired them; an agent whose person is no longer a member, or
-- joined again after pairing it, stops here.
ALTER TABLE agents ADD COLUMN membership_id INTEGER
    REFERENCES memberships (id) ON DELETE SET NULL;
UPDATE agents SET membership_id = (
    SELECT m.id FROM memberships m
    WHERE m.workspace_id = agents.workspace_id
      AND m.user_id = agents.paired_by
      AND m.created_at <= agents.paired_at);
CREATE INDEX agents_by_membership ON agents (membership_id);
