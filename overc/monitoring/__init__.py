"""The watchdog (missed periods, restart awareness) and retention: jobs every process runs."""
