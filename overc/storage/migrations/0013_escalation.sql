-- Escalation and acknowledgements (SPEC 10.5).

-- An acknowledgement may be sticky (it lasts over changes between problem states and ends
-- only when the service returns to OK) and may expire (Unix time; NULL: until it ends). The
-- dispatcher ends expired acknowledgements: the index makes that cost what expires.
ALTER TABLE services ADD COLUMN ack_sticky {bool} NOT NULL DEFAULT 0;

ALTER TABLE services ADD COLUMN ack_expires {double};

CREATE INDEX services_ack_expires ON services (ack_expires);

-- A channel with `after` was not told about a problem yet: it is told at `due` if the problem
-- is still there and not acknowledged. `since`: when the problem became hard (due = since +
-- after, kept over later problem alerts); `alert_id`: the newest problem alert, the one sent;
-- due NULL: parked by an acknowledgement without expiry (its end re-arms it).
CREATE TABLE escalations (
    channel {name} NOT NULL,
    service_id {ref} NOT NULL,
    alert_id {ref} NOT NULL,
    since {double} NOT NULL,
    due {double},
    PRIMARY KEY (channel, service_id),
    FOREIGN KEY (service_id) REFERENCES services (id) ON DELETE CASCADE
) {table_options};

CREATE INDEX escalations_due ON escalations (due);

CREATE INDEX escalations_service ON escalations (service_id);
