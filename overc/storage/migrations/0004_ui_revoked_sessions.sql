-- Browser UI: sessions ended by logout. A session cookie names a random session id; a row here
-- refuses that cookie in every OverC process on this database until the cookie expires anyway.
-- Rows whose cookie has expired are useless and are purged (see overc/storage/sessions.py).

CREATE TABLE ui_revoked_sessions (
    session_id {short} NOT NULL PRIMARY KEY,
    expires {double} NOT NULL
) {table_options};

CREATE INDEX ui_revoked_sessions_expires ON ui_revoked_sessions (expires);
