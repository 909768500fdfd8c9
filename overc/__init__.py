"""OverC: push-based service monitoring. The version here is the one source of truth
(``setup.cfg`` reads it; ``twistd overc --version``, ``/healthz`` and the start-up log show it)."""

__version__ = "2.0.0.dev0"
