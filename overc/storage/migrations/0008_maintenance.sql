-- Maintenance windows (SPEC 11). A window holds the notifications of its scope during its time;
-- section 3's silences are one-off windows of one server or service (source 'silence').
-- Scope: server_id (+ service_id, or services: a JSON list of names), or when server_id is NULL
-- the glob filters servers/services (JSON lists; empty or NULL: all).
-- Time: start_time..end_time, or every occurrence of schedule (cron, in tz) for duration s.
CREATE TABLE maintenance (
    id {id},
    source {short} NOT NULL,
    name {name},
    server_id {ref},
    service_id {ref},
    servers {text},
    services {text},
    start_time {double},
    end_time {double},
    schedule {name},
    tz {short},
    duration {double},
    reason {text},
    created_by {name},
    created {double} NOT NULL
) {table_options};

-- Finding the windows that run now costs the windows that end later, not all of history.
CREATE INDEX maintenance_end ON maintenance (end_time);

CREATE INDEX maintenance_schedule ON maintenance (schedule);

CREATE INDEX maintenance_server ON maintenance (server_id);

-- An alert held by a window keeps the window's id: the read API and the UI show it as
-- "held: maintenance" even after the window released it.
ALTER TABLE alerts ADD COLUMN maintenance_id {ref};

-- Silences in place become windows; the columns stay as what the pages show.
INSERT INTO maintenance (source, server_id, start_time, end_time, reason, created)
SELECT 'silence', id, created, silenced_until, silence_reason, created FROM servers
WHERE silenced_until IS NOT NULL;

INSERT INTO maintenance (source, server_id, service_id, start_time, end_time, reason, created)
SELECT 'silence', server_id, id, created, silenced_until, silence_reason, created FROM services
WHERE silenced_until IS NOT NULL;
