-- Server offline (SPEC 10.3): one alert for a dead host, not one per service.

-- The shortest period among the server's live services as the ingest last knew it (it only
-- ever lowers it; the watchdog checks the true value before it declares the server offline).
ALTER TABLE servers ADD COLUMN period {double};

-- Last sign of life + period + grace while online. While offline: NULL until the first push
-- back, then the time of that push (the watchdog raises `server-online` from it).
ALTER TABLE servers ADD COLUMN deadline {double};

ALTER TABLE servers ADD COLUMN offline {bool} NOT NULL DEFAULT 0;

-- The last sign of life before the server went offline (NULL while online).
ALTER TABLE servers ADD COLUMN offline_since {double};

-- The watchdog asks "offline = 0 AND deadline < now" and "offline = 1 AND deadline >= 0":
-- cost proportional to the servers that expire or come back, as for services.
CREATE INDEX servers_watch ON servers (offline, deadline);

-- A stale service whose `offline` alert was held because its server was offline gets, once
-- its server is back, until this time to report; then its `offline` alert is raised again
-- and notified. NULL otherwise.
ALTER TABLE services ADD COLUMN recheck {double};

CREATE INDEX services_recheck ON services (recheck);
