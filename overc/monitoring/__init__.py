"""The watchdog (missed periods, restart awareness), retention, and their composition."""
