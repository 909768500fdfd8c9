"""``twistd overcli-monitor``: Options and makeService for the agent daemon.

The twistd plugin (``twisted/plugins/overcli_monitor.py``) only names this module. The config
file is read in ``postOptions`` so a broken file stops twistd with one line naming the file,
section and key, before anything starts.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from twisted.python import usage

from overc.agent.client import UsageError
from overc.agent.config import ConfigError, read_config

if TYPE_CHECKING:  # imported when the service is made: twistd lists plugins without it
    from overc.agent.monitor import Monitor


class Options(usage.Options):
    synopsis = "[-s URL] [-i NAME:KEY] CONFIG.ini"
    longdesc = "Run the plugins of an OverC monitor config and push their results."
    optParameters = [
        ["server", "s", None, "server URL (overrides [overc] server; default $OVERC_SERVER)"],
        ["server-id", "i", None, "NAME:KEY of this host (overrides [overc] my-name/my-key)"],
    ]

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
            raise usage.UsageError(str(e)) from None


def makeService(options: Options, reactor: Any = None, http: Any = None) -> Monitor:
    """Build the monitor service; the reactor and HTTP client are injectable for tests."""
    if reactor is None:
        from twisted.internet import reactor  # entry point: the global reactor is fine here
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
    )
