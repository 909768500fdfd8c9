"""``overcli``: the command line of the agent (ping, service-status, alert, monitor, run).

Exit status is the contract scripts rely on (SPEC 7): 0 success; 1 the server refused; 2 a
usage or config error; 3 the server could not be reached, timed out or answered 5xx. Every
error is one line on stderr; ``-v`` adds detail (and tracebacks of unexpected errors).

:func:`run` holds the whole logic and takes the reactor, the HTTP client, the environment and
the output streams, so tests drive it with ``StubTreq`` and a fake reactor; :func:`main` only
sets up logging and hands :func:`run` to ``task.react``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import IO, TYPE_CHECKING, Any, Mapping, NoReturn, Sequence

from twisted.internet import defer, task
from twisted.logger import LogLevel, Logger, globalLogBeginner, textFileLogObserver

from overc.agent import client as clientmod
from overc.agent.client import Endpoint, OvercClient, Refused, Unreachable, UsageError
from overc.agent.config import MAX_PERIOD, ConfigError, MonitorConfig, read_config
from overc.agent.logs import AGENT_LOG, level_for, version
from overc.agent.plugin_runner import PluginRunner, PluginSpec
from overc.agent.results import Report
from overc.core.schedule import check_schedule, typical_interval, zone

if TYPE_CHECKING:  # treq is imported when a command needs HTTP
    from treq.client import HTTPClient

log = Logger()

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
DEFAULT_RUN_PERIOD = 60


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting: one line, our format."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see overcli --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="overcli", description="OverC agent: push service states to an OverC server.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail (repeat for debug)")
    p.add_argument("--version", action="version", version=f"overcli (OverC) {version()}")
    p.add_argument("-s", "--server", help="server URL (default: $OVERC_SERVER)")
    p.add_argument("-i", "--server-id", help="NAME:KEY of this host (default: $OVERC_SERVER_ID)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("ping", help="check the server and the key; prints pong")

    c = sub.add_parser("service-status", help="report one service state")
    c.add_argument("period", help="seconds until the next report is due")
    c.add_argument("name", help="service name")
    c.add_argument("state", help="OK, WARN, FAIL or UNK")
    c.add_argument("info", nargs="?", default="", help="plugin output text")
    _schedule_options(c)

    c = sub.add_parser("alert", help="raise an alert")
    c.add_argument("--service", help="service the alert is about")
    c.add_argument("message")

    c = sub.add_parser("monitor", help="run the plugins of a config file, forever")
    c.add_argument("config", help="monitor config (INI)")

    c = sub.add_parser("run", help="run a plugin once and report it (cron wrapper)")
    c.add_argument("--period", help="seconds until the next report is due (default 60; with"
                   " --schedule, the schedule's typical interval)")
    c.add_argument("--timeout", help="seconds the plugin may take (default: the period); sent"
                   " with the start signal, the server raises a timeout alert after it")
    _schedule_options(c)
    c.add_argument("name", help="service name")
    c.add_argument("plugin", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    _add_maintenance_parser(sub)
    return p


def _schedule_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--schedule", help='cron expression the job runs on, like "0 3 * * *": the'
                   " server expects the next report at the next scheduled time")
    c.add_argument("--tz", help="IANA time zone of --schedule (default UTC)")


def parse_schedule(args: argparse.Namespace, now: float) -> tuple[str | None, str | None, int | None]:
    """``(schedule, tz, typical interval)`` from ``--schedule``/``--tz``; usage errors name the option."""
    if args.schedule is None:
        if args.tz is not None:
            raise UsageError("--tz needs --schedule")
        return None, None, None
    try:
        schedule = check_schedule(args.schedule)
    except ValueError as e:
        raise UsageError(f"--schedule: {e}") from None
    tz = args.tz or "UTC"
    try:
        zone(tz)
    except ValueError as e:
        raise UsageError(f"--tz: {e}") from None
    return schedule, tz, min(MAX_PERIOD, typical_interval(schedule, tz, now))
def _add_maintenance_parser(sub: Any) -> None:
    c = sub.add_parser("maintenance", help="announce maintenance of this host (notifications held)",
                       description="Hold this host's notifications for a while (a deploy, a reboot);"
                       " at the end OverC sends once what is still wrong.")
    c.add_argument("duration", nargs="?", help="how long: 30m, 2h, or seconds")
    c.add_argument("reason", nargs="?", default="", help="why, e.g. \"deploy 4.2\"")
    c.add_argument("--service", action="append", default=[], metavar="NAME",
                   help="only this service (repeatable; default: the whole host)")
    c.add_argument("--end", action="store_true", help="end this host's announced windows now")


def maintenance_body(args: argparse.Namespace) -> dict[str, Any]:
    """What ``overcli maintenance`` posts to ``/api/set/maintenance`` (the identity apart)."""
    from overc.core.durations import parse_duration

    if args.end:
        if args.duration or args.service:
            raise UsageError("maintenance --end takes no duration or --service")
        return {"end": True}
    if not args.duration:
        raise UsageError("maintenance needs a duration (like 30m) or --end")
    try:
        seconds = parse_duration(args.duration)
    except ValueError as e:
        raise UsageError(f"duration: {e}") from None
    if seconds <= 0:
        raise UsageError("duration must be more than 0")
    body: dict[str, Any] = {"duration": seconds, "reason": args.reason}
    if args.service:
        body["services"] = list(args.service)
    return body


def parse_period(raw: str, what: str = "period") -> int:
    try:
        value = int(float(raw))
    except ValueError:
        raise UsageError(f"{what} must be a number of seconds, got {raw!r}") from None
    if not 1 <= value <= MAX_PERIOD:
        raise UsageError(f"{what} must be from 1 to {MAX_PERIOD} seconds, got {raw!r}")
    return value


def resolve_endpoint(
    server: str | None,
    server_id: str | None,
    env: Mapping[str, str],
    config: MonitorConfig | None = None,
) -> Endpoint:
    """Command line, then ``OVERC_SERVER``/``OVERC_SERVER_ID``, then the monitor config's ``[overc]``."""
    url = server or env.get("OVERC_SERVER") or (config.server if config else None)
    ident = server_id or env.get("OVERC_SERVER_ID")
    if not ident and config is not None and config.name and config.key:
        ident = f"{config.name}:{config.key}"
    where = f" or [overc] in {config.path}" if config is not None else ""
    if not url:
        raise UsageError(f"no server URL: use -s URL or OVERC_SERVER{where}")
    if not ident:
        raise UsageError(f"no server identity: use -i NAME:KEY or OVERC_SERVER_ID{where}")
    return clientmod.make_endpoint(url, ident)


def default_http(reactor: Any) -> HTTPClient:
    """treq over a connection pool bound to this reactor (no global reactor import)."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=True)
    # Idle connections closed by the far side make a POST fail; keep them short-lived.
    pool.cachedConnectionTimeout = 30
    return HTTPClient(Agent(reactor, pool=pool))


async def run(
    reactor: Any,
    argv: Sequence[str],
    http: HTTPClient | None = None,
    env: Mapping[str, str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run one overcli command line; return the exit status (never raises for user errors)."""
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    verbose = 0
    try:
        args = build_parser().parse_args(list(argv))
        verbose = args.verbose
        if http is None:
            http = default_http(reactor)
        return await _dispatch(reactor, args, http, env, out, err)
    except UsageError as e:
        print(f"overcli: error: {e}", file=err)
        return EXIT_USAGE
    except ConfigError as e:
        print(f"overcli: config error: {e}", file=err)
        return EXIT_USAGE
    except Refused as e:
        print(f"overcli: {e}", file=err)
        return EXIT_REFUSED
    except Unreachable as e:
        print(f"overcli: {e.message}", file=err)
        return EXIT_UNREACHABLE
    except SystemExit as e:  # argparse --help
        return int(e.code or 0)
    except Exception as e:
        print(f"overcli: internal error: {type(e).__name__}: {e}", file=err)
        if verbose:
            import traceback

            traceback.print_exc(file=err)
        return EXIT_REFUSED


async def _dispatch(reactor, args, http, env, out, err) -> int:
    if args.command == "monitor":
        return await _monitor(reactor, args, http, env, err)
    endpoint = resolve_endpoint(args.server, args.server_id, env)
    client = OvercClient(http, reactor, endpoint)
    if args.command == "ping":
        await client.ping()
        print("pong", file=out)
    elif args.command == "service-status":
        period = parse_period(args.period)
        schedule, tz, _ = parse_schedule(args, reactor.seconds())
        report = Report(args.name, args.state, args.info, period, reactor.seconds(), schedule, tz)
        await client.set_service_status([report], with_time=False)
    elif args.command == "alert":
        alert = {"message": args.message}
        if args.service:
            alert["service"] = args.service
        await client.set_alerts([alert])
    elif args.command == "run":
        await _run_once(reactor, args, client, out)
    elif args.command == "maintenance":
        await _maintenance(args, client, out)
    return EXIT_OK


async def _maintenance(args: argparse.Namespace, client: OvercClient, out: IO[str]) -> None:
    answer = await client.post("api/set/maintenance", client._body(**maintenance_body(args)))
    if args.end:
        print(f"ended {answer.get('ended', 0)} window(s)", file=out)
    else:
        print(f"maintenance window {answer.get('id')}", file=out)


async def _run_once(reactor, args, client: OvercClient, out) -> None:
    """``run NAME -- CMD ...``: one plugin run, reported like the monitor would (no spool).

    The start signal goes first (its timeout: ``--timeout``, else the period), so a run that
    hangs or dies without reporting raises a ``timeout`` alert; the report carries the duration.
    """
    schedule, tz, typical = parse_schedule(args, reactor.seconds())
    given_period = args.period is not None
    period = parse_period(args.period) if given_period else (typical or DEFAULT_RUN_PERIOD)
    timeout = parse_period(args.timeout, "timeout") if args.timeout else period
    plugin = list(args.plugin)
    if plugin and plugin[0] == "--":
        plugin = plugin[1:]
    if not plugin:
        raise UsageError("run needs a command after the service name: run NAME -- COMMAND [ARG...]")
    try:
        await client.start(args.name, timeout)
    except Unreachable as e:  # the job runs anyway (cron would not retry it); its report may get through
        log.warn("Could not send the start signal: {reason}", reason=e.message)
    result = await PluginRunner(reactor, concurrency=1).run(PluginSpec(tuple(plugin), None, float(timeout)))
    log.info("{name}: {state}: {info}", name=args.name, state=result.outcome.state, info=result.outcome.info)
    report = Report(args.name, result.outcome.state, result.outcome.info, period, result.finished,
                    schedule, tz, result.finished - result.started)
    await client.set_service_status([report], with_time=False)


async def _monitor(reactor, args, http, env, err) -> int:
    from overc.agent.monitor import build_monitor, failure_message

    try:
        config = read_config(args.config)
    except ConfigError as e:
        await _alert_config_error(reactor, args, http, env, e)
        raise
    endpoint = resolve_endpoint(args.server, args.server_id, env, config)
    fatal: defer.Deferred = defer.Deferred()
    level = level_for(args.verbose, config.loglevel)
    AGENT_LOG.set_level(level)
    # Each run's debug line is shown only at debug level: skip making it otherwise.
    monitor = build_monitor(config, endpoint, reactor, http, on_fatal=fatal.callback, chdir=True, log_runs=level <= LogLevel.debug)
    trigger = reactor.addSystemEventTrigger("before", "shutdown", monitor.stopService)
    monitor.startService()
    failure = await fatal  # only a fatal error ends the foreground monitor; a signal stops the reactor
    reactor.removeSystemEventTrigger(trigger)
    await monitor.stopService()
    print(f"overcli: {failure_message(failure)}", file=err)  # the monitor already sent it as an alert
    return EXIT_REFUSED


async def _alert_config_error(reactor, args, http, env, error: ConfigError) -> None:
    """A config error is fatal too: tell the server when we know which one and who we are."""
    from overc.agent.config import peek_identity
    from overc.agent.monitor import send_failure_alert

    server, name, key = peek_identity(args.config)
    try:
        ident = args.server_id or env.get("OVERC_SERVER_ID") or (f"{name}:{key}" if name and key else None)
        url = args.server or env.get("OVERC_SERVER") or server
        if not url or not ident:
            return
        endpoint = clientmod.make_endpoint(url, ident)
    except UsageError:
        return
    # The error itself is printed on one line; a server that cannot hear about it is detail.
    await send_failure_alert(OvercClient(http, reactor, endpoint), f"Monitoring failure: config error: {error}", quiet=True)


def _start_logging(verbose: int) -> None:
    """stderr, quiet by default (warnings and errors); ``monitor`` sets its level from the config."""
    AGENT_LOG.set_level(level_for(verbose))
    globalLogBeginner.beginLoggingTo([AGENT_LOG.wrap(textFileLogObserver(sys.stderr))], redirectStandardIO=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script entry point (``overcli = overc.agent.cli:main``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = sum(a.count("v") for a in argv if a.startswith("-") and not a.startswith("--") and set(a[1:]) <= {"v"})
    verbose += argv.count("--verbose")
    _start_logging(verbose)

    async def _main(reactor) -> None:
        code = await run(reactor, argv)
        if code:
            raise SystemExit(code)

    task.react(_main)
