-- Browser UI: small named settings shared by every OverC process on this database.
-- The session-signing secret lives here so that sessions work behind a load balancer.

CREATE TABLE ui_settings (
    name {short} NOT NULL PRIMARY KEY,
    value {text} NOT NULL
) {table_options};
