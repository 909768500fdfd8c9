-- Dependencies (SPEC 10.4): a child's alerts are held while its parent is down.

-- 1: a dependency held at least one of this service's alerts since its last catch-up. The
-- dispatcher clears it (a conditional write in its serialized transaction) once the parent is
-- back, and notifies what is still wrong with the child then: exactly once, whatever the
-- number of processes. The index finds the few such services without a scan.
ALTER TABLE services ADD COLUMN held_by_parent {bool} NOT NULL DEFAULT 0;

CREATE INDEX services_held_by_parent ON services (held_by_parent);

-- "depends on <parent>" needs more room than "flapping". 63 characters keep a one-byte length
-- in utf8mb4, so MariaDB widens the column in place instead of copying the alerts table.
{mysql} ALTER TABLE alerts MODIFY held VARCHAR(63);
