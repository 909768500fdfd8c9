-- Watchdog coordination and notification delivery (SPEC 2, 3 and 8).
-- Every claim lives here, so several OverC processes on one database do each thing once.

-- Where an alert is in the notification pipeline:
-- 0 waiting for dispatch, 1 dispatched (notifications created, maybe none matched a channel),
-- 2 held by a silence, 3 superseded while held (a newer alert of the service was notified).
ALTER TABLE alerts ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;

-- Alerts that existed before this migration were handled by whatever ran then: do not page
-- anybody for history on upgrade.
UPDATE alerts SET dispatched = 1;

CREATE INDEX alerts_dispatch ON alerts (dispatched, id);

-- An `internal` alert about a failing channel is not sent to that channel.
ALTER TABLE alerts ADD COLUMN skip_channel {name};

-- One row per coordinated job (1 watchdog, 2 dispatcher, 3 retention). Every transaction of
-- that job first updates its row: the row lock serializes the job across processes, and
-- last_tick tells a starting process how long nobody watched (restart awareness).
CREATE TABLE coordination (
    id INTEGER NOT NULL PRIMARY KEY,
    job {short} NOT NULL,
    last_tick {double} NOT NULL,
    ticks {bigint} NOT NULL DEFAULT 0
) {table_options};

INSERT INTO coordination (id, job, last_tick, ticks) VALUES (1, 'watchdog', 0, 0);

INSERT INTO coordination (id, job, last_tick, ticks) VALUES (2, 'dispatch', 0, 0);

INSERT INTO coordination (id, job, last_tick, ticks) VALUES (3, 'retention', 0, 0);

-- One delivery of one server's alerts to one channel. status: pending (waiting for its
-- next_attempt), sending (leased by lease_owner until lease_until), sent, failed (for good),
-- dropped (its alerts were deleted before delivery).
CREATE TABLE notifications (
    id {id},
    channel {name} NOT NULL,
    server_id {ref} NOT NULL,
    kind {short} NOT NULL,
    created {double} NOT NULL,
    status {short} NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt {double} NOT NULL,
    lease_owner {name},
    lease_until {double},
    finished {double},
    last_error {text},
    FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX notifications_due ON notifications (status, next_attempt);

CREATE INDEX notifications_lease ON notifications (status, lease_until);

CREATE INDEX notifications_server ON notifications (server_id, created);

CREATE INDEX notifications_created ON notifications (created);

CREATE TABLE notification_alerts (
    notification_id {ref} NOT NULL,
    alert_id {ref} NOT NULL,
    PRIMARY KEY (notification_id, alert_id),
    FOREIGN KEY (notification_id) REFERENCES notifications (id) ON DELETE CASCADE,
    FOREIGN KEY (alert_id) REFERENCES alerts (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX notification_alerts_alert ON notification_alerts (alert_id);

-- Every attempt, kept for the UI: ok NULL while it runs.
CREATE TABLE notification_attempts (
    id {id},
    notification_id {ref} NOT NULL,
    owner {name} NOT NULL,
    started {double} NOT NULL,
    finished {double},
    ok {bool},
    error {text},
    FOREIGN KEY (notification_id) REFERENCES notifications (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id);

-- A channel was told about a problem of a service: it gets the recovery, and repeats while
-- the problem lasts unacknowledged (repeat_due NULL: no repeat).
CREATE TABLE channel_problems (
    channel {name} NOT NULL,
    service_id {ref} NOT NULL,
    alert_id {ref} NOT NULL,
    repeat_due {double},
    PRIMARY KEY (channel, service_id),
    FOREIGN KEY (service_id) REFERENCES services (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX channel_problems_repeat ON channel_problems (repeat_due);

CREATE INDEX channel_problems_service ON channel_problems (service_id);
