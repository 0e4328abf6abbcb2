-- Control migration 16 and workspace migration 7: `INSERT OR REPLACE` removes the row it
-- replaces without firing the delete triggers (SQLite fires them for REPLACE only with
-- recursive triggers on), so an existing row or anchor could be swapped for another. Rows
-- and anchors are only ever appended: an insert onto an existing or swept seq is refused.
CREATE TRIGGER audit_log_appended_only BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
  OR NEW.seq <= (SELECT coalesce(max(through_seq), 0) FROM audit_anchors)
BEGIN
    SELECT RAISE(ABORT, 'audit rows are only appended');
END;

CREATE TRIGGER audit_anchors_appended_only BEFORE INSERT ON audit_anchors
WHEN EXISTS (SELECT 1 FROM audit_anchors WHERE through_seq = NEW.through_seq)
BEGIN
    SELECT RAISE(ABORT, 'audit anchors are only appended');
END;
