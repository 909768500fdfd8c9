-- Core schema: servers, services, state history, performance data, alerts.
-- Written once for both databases: {slots} are filled by the dialect (overc/storage/dialect.py).
-- Times are UTC Unix seconds (double). Statements end with ';' at the end of a line.

CREATE TABLE servers (
    id {id},
    name {name} NOT NULL,
    key_hash {name} NOT NULL,
    ip {short},
    created {double} NOT NULL,
    last_seen {double},
    silenced_until {double},
    silence_reason {text}
) {table_options};

CREATE UNIQUE INDEX servers_name ON servers (name);

CREATE TABLE services (
    id {id},
    server_id {ref} NOT NULL,
    name {name} NOT NULL,
    state {short},
    info {text},
    period INTEGER,
    last_time {double},
    deadline {double},
    stale {bool} NOT NULL DEFAULT 0,
    created {double} NOT NULL,
    acked {bool} NOT NULL DEFAULT 0,
    ack_comment {text},
    silenced_until {double},
    silence_reason {text},
    FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE
) {table_options};

CREATE UNIQUE INDEX services_server_name ON services (server_id, name);

-- The watchdog asks "stale = 0 AND deadline < now": this index makes that cost proportional
-- to the services that expire, not to all services.
CREATE INDEX services_watch ON services (stale, deadline);

CREATE TABLE states (
    id {id},
    service_id {ref} NOT NULL,
    time {double} NOT NULL,
    state {short} NOT NULL,
    info {text},
    late {bool} NOT NULL DEFAULT 0,
    FOREIGN KEY (service_id) REFERENCES services (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX states_service_time ON states (service_id, time);

CREATE INDEX states_time ON states (time);

CREATE TABLE perfdata (
    id {id},
    service_id {ref} NOT NULL,
    time {double} NOT NULL,
    label {name} NOT NULL,
    value {double} NOT NULL,
    uom {short},
    warn {name},
    crit {name},
    min {double},
    max {double},
    FOREIGN KEY (service_id) REFERENCES services (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX perfdata_service_label_time ON perfdata (service_id, label, time);

CREATE INDEX perfdata_time ON perfdata (time);

CREATE TABLE alerts (
    id {id},
    server_id {ref} NOT NULL,
    service_id {ref},
    time {double} NOT NULL,
    kind {short} NOT NULL,
    severity {short} NOT NULL,
    message {text} NOT NULL,
    state {short},
    info {text},
    FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE,
    FOREIGN KEY (service_id) REFERENCES services (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX alerts_time ON alerts (time);

CREATE INDEX alerts_server_time ON alerts (server_id, time);

CREATE INDEX alerts_service_time ON alerts (service_id, time);
