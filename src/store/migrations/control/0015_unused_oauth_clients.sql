-- OAuth clients remember when they were first granted something, so `expired-cleanup` can
-- remove registrations that never were once they are old enough.
ALTER TABLE oauth_clients ADD COLUMN first_granted_at INTEGER;
UPDATE oauth_clients
SET first_granted_at = (SELECT min(created_at) FROM oauth_grants WHERE client_id = oauth_clients.id);
CREATE INDEX oauth_clients_unused ON oauth_clients (created_at) WHERE first_granted_at IS NULL;
