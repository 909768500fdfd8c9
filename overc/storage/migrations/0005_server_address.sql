-- A server's address is any client address: IPv6 is up to 45 characters, more with a zone
-- (fe80::1%eth0). SQLite TEXT has no length; MariaDB's column grows from VARCHAR(32).
-- A statement starting with {mysql} runs on MariaDB/MySQL only.

{mysql} ALTER TABLE servers MODIFY ip {name};
