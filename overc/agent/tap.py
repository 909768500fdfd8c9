"""``twistd overcli-monitor``: Options and makeService for the agent daemon.

The twistd plugin (``twisted/plugins/overcli_monitor.py``) only names this module. The config
file is read in ``postOptions`` so a broken file stops twistd with one line naming the file,
section and key, before anything starts.

twistd's own ``--pidfile`` defaults to ``twistd.pid`` (and, daemonized, ``--logfile`` to
``twistd.log``) in the current folder, which is where a server started with twistd keeps its
own: the monitor would refuse to start ("Another twistd server is running"). Left at those
defaults, they become ``overcli-monitor.pid`` and ``overcli-monitor.log``. twistd hands its
options to ours as ``parent`` before it reads them itself.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from twisted.logger import LogLevel
from twisted.python import usage

from overc.agent.client import UsageError
from overc.agent.config import LOGLEVELS, ConfigError, read_config
from overc.agent.logs import AGENT_LOG, LEVELS, version

if TYPE_CHECKING:  # imported when the service is made: twistd lists plugins without it
    from overc.agent.monitor import Monitor

TWISTD_PIDFILE, TWISTD_LOGFILE = "twistd.pid", "twistd.log"
PIDFILE, LOGFILE = "overcli-monitor.pid", "overcli-monitor.log"


def _loglevel(value: str) -> str:
    if value.lower() not in LOGLEVELS:
        raise ValueError(f"--loglevel must be one of {', '.join(LOGLEVELS)}, got {value!r}")
    return value.lower()


class Options(usage.Options):
    synopsis = "[-s URL] [-i NAME:KEY] [--loglevel LEVEL] CONFIG.ini"
    longdesc = (
        "Run the plugins of an OverC monitor config and push their results. Without --pidfile "
        f"the pidfile is {PIDFILE} (not twistd.pid, which a server in the same folder uses)."
    )
    optParameters = [
        ["server", "s", None, "server URL (overrides [overc] server; default $OVERC_SERVER)"],
        ["server-id", "i", None, "NAME:KEY of this host (overrides [overc] my-name/my-key)"],
        ["loglevel", None, None, "debug, info, warn or error (overrides [overc] loglevel)", _loglevel],
    ]

    def opt_version(self) -> NoReturn:
        """Print OverC's version and exit."""
        print(f"overcli-monitor (OverC) {version()}")
        sys.exit(0)

    def parseArgs(self, *args: str) -> None:
        # One positional argument. (Twisted counts a ``parseArgs(self, config)`` signature's
        # arguments itself, but its own annotation, ``parseArgs(self)``, allows no override.)
        if len(args) != 1:
            raise usage.UsageError("Wrong number of arguments.")
        self["config"] = args[0]

    def postOptions(self) -> None:
        from overc.agent.cli import resolve_endpoint

        try:
            self["monitor-config"] = read_config(self["config"])
            self["endpoint"] = resolve_endpoint(self["server"], self["server-id"], os.environ, self["monitor-config"])
        except (ConfigError, UsageError) as e:
            # One line and status 2, as ``overcli monitor``; twistd would print its whole usage
            # text before a UsageError, burying the one line that matters.
            kind = "config error" if isinstance(e, ConfigError) else "error"
            print(f"overcli-monitor: {kind}: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        self["level"] = LEVELS[self["loglevel"] or self["monitor-config"].loglevel]
        own_files(getattr(self, "parent", None))


def own_files(twistd_options: Any) -> None:
    """twistd's default pidfile and logfile become the monitor's own (see the module doc)."""
    if twistd_options is None:
        return
    try:
        if twistd_options["pidfile"] == TWISTD_PIDFILE:
            twistd_options["pidfile"] = PIDFILE
        if not twistd_options["nodaemon"] and not twistd_options["logfile"] and not twistd_options["syslog"]:
            twistd_options["logfile"] = LOGFILE
    except KeyError:  # not twistd's ServerOptions (or a platform without these options)
        pass


def makeService(options: Options, reactor: Any = None, http: Any = None) -> Monitor:
    """Build the monitor service; the reactor and HTTP client are injectable for tests."""
    level: LogLevel = options["level"]
    if reactor is None:
        from twisted.internet import reactor as global_reactor  # entry point: the global reactor is fine here

        reactor = global_reactor
        # twistd installs its log observer after this returns: filter it once the reactor runs.
        AGENT_LOG.set_level(level)
        global_reactor.callWhenRunning(AGENT_LOG.install)
    from overc.agent.cli import default_http
    from overc.agent.monitor import build_monitor

    def stop_on_fatal(failure) -> None:
        # The failure is logged and sent as an alert; a supervisor restarts us.
        if reactor.running:
            reactor.stop()

    return build_monitor(
        options["monitor-config"],
        options["endpoint"],
        reactor,
        http if http is not None else default_http(reactor),
        on_fatal=stop_on_fatal,
        chdir=True,
        log_runs=level <= LogLevel.debug,
    )
