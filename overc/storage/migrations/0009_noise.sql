-- Noise control (SPEC 10.1, 10.2): per-service settings, soft states, flapping, held alerts.

-- The effective settings of each service as of its last report (report > policy > default),
-- and where each came from ("report", "policy:<name>" or "default", one per line in the order
-- attempts, flapping, depends_on; NULL: all three are the defaults).
ALTER TABLE services ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;

ALTER TABLE services ADD COLUMN flap_thresholds {short} NOT NULL DEFAULT '30/25';

ALTER TABLE services ADD COLUMN depends_on {name};

ALTER TABLE services ADD COLUMN settings_source {text};

-- `state` is the hard state. A problem that has not yet lasted `attempts` reports is soft:
-- its state and how many reports in a row it has had so far.
ALTER TABLE services ADD COLUMN soft_state {short};

ALTER TABLE services ADD COLUMN soft_count INTEGER NOT NULL DEFAULT 0;

-- The last 20 transitions between reported states, newest in bit 0 (1: the state changed):
-- enough for the flapping measure without reading the history. `flapping`: it flaps now.
ALTER TABLE services ADD COLUMN flap_bits INTEGER NOT NULL DEFAULT 0;

ALTER TABLE services ADD COLUMN flapping {bool} NOT NULL DEFAULT 0;

-- An alert recorded but not notified says why: "flapping" (and, later, other reasons).
ALTER TABLE alerts ADD COLUMN held {short};
