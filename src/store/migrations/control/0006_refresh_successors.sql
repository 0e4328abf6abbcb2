-- Each used refresh secret names the secret that replaced it, so an agent that lost the
-- answer to a rotation can retry once, briefly, without being taken for a thief.
ALTER TABLE agent_refresh_secrets ADD COLUMN replaced_by BLOB;
