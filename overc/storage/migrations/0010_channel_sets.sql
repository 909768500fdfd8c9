-- The [alert:*] channels of every live OverC process on this database, one row per process
-- (SPEC 8, issue 9): a process whose channels differ from those of the live processes refuses
-- to start, so no process claims alerts for channels it does not have. names is a JSON array
-- of the channel names, fingerprint a SHA-256 of their options; heartbeat is renewed every
-- few seconds, a row whose heartbeat is older than the expiry is a dead process, and a process
-- that stops cleanly deletes its own row.
CREATE TABLE channel_sets (
    process {name} NOT NULL PRIMARY KEY,
    names {text} NOT NULL,
    fingerprint {name} NOT NULL,
    started {double} NOT NULL,
    heartbeat {double} NOT NULL
) {table_options};

-- Registering updates this row first: the row lock (a certification conflict on Galera)
-- serializes registrations, so two processes with different channels cannot both start.
INSERT INTO coordination (id, job, last_tick, ticks) VALUES (10, 'channel_sets', 0, 0);
