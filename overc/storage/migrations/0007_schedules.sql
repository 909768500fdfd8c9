-- Schedules, runs and durations (SPEC 9). Each report states its promise: a cron schedule in a
-- zone (NULL: period-based) and its own grace (NULL: the config's). A start signal opens a run;
-- the watchdog raises one `timeout` alert when run_deadline passes without a report.

ALTER TABLE services ADD COLUMN schedule {name};

ALTER TABLE services ADD COLUMN tz {short};

ALTER TABLE services ADD COLUMN grace {double};

ALTER TABLE services ADD COLUMN run_started {double};

ALTER TABLE services ADD COLUMN run_timeout INTEGER;

-- Start + timeout + grace while a run is open and not yet timed out; NULL otherwise, so the
-- watchdog's "run_deadline < now" reads only the runs that expire.
ALTER TABLE services ADD COLUMN run_deadline {double};

ALTER TABLE services ADD COLUMN run_late {bool} NOT NULL DEFAULT 0;

-- The latest duration (for /metrics and the UI); each report's own is in states.duration.
ALTER TABLE services ADD COLUMN duration {double};

CREATE INDEX services_run ON services (run_deadline);

ALTER TABLE states ADD COLUMN duration {double};
