-- /metrics reads only the service rows that changed since its last builds (issue 13): when a
-- row last changed, by the database's clock (Unix seconds on SQLite). MariaDB keeps it by
-- itself on every UPDATE that changes the row; on SQLite the ingest's upsert sets it, and a
-- trigger sets it after every other UPDATE (acks, silences, the watchdog, renames, ...).
-- Rows that no UPDATE touched yet keep the default: a build finds new services by their ids.
-- DATETIME, not TIMESTAMP (which ends in 2038): in UTC, as every OverC session sets
-- time_zone '+00:00' (storage/db.py).
{mysql} ALTER TABLE services ADD COLUMN changed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6);

{sqlite} ALTER TABLE services ADD COLUMN changed_at REAL NOT NULL DEFAULT 0;

{sqlite} CREATE TRIGGER IF NOT EXISTS services_changed_at AFTER UPDATE ON services FOR EACH ROW WHEN NEW.changed_at IS OLD.changed_at BEGIN UPDATE services SET changed_at = (julianday('now') - 2440587.5) * 86400.0 WHERE id = NEW.id; END;
