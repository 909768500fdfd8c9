"""Processes on one database must have the same channels: a process with another set refuses
to start with one line (pure rules, the store on SQLite and MariaDB, real server processes)."""
from __future__ import annotations

import re
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from overc.core.channel_sets import ChannelSet, conflict_message, differing, expiry
from overc.notify.channel_config import parse_channel
from overc.notify.channel_sets import channel_set
from overc.storage.channel_set_store import ChannelSetStore

from helpers import reactor, wait_for
from realserver import RealServer

LOG = ChannelSet(("log",), "f-log")
BOTH = ChannelSet(("log", "pager"), "f-both")
LOG_OTHER = ChannelSet(("log",), "f-log-2")

LINE = ("the channels differ from those of the running processes on this database:"
        " here [log, pager], there [log]: give every process the same [alert:*] sections")


def test_the_refusal_names_both_sets():
    assert conflict_message(BOTH, [LOG]) == LINE
    assert conflict_message(ChannelSet((), "f-none"), [LOG]).startswith(
        "the channels differ from those of the running processes on this database:"
        " here [], there [log]:")
    assert "here [log] (other options), there [log] (other options):" \
        in conflict_message(LOG, [LOG_OTHER])
    assert "there [log] and [log, pager]:" in conflict_message(
        ChannelSet(("x",), "f-x"), [BOTH, LOG, LOG])


def test_differing_keeps_distinct_other_sets():
    assert differing(LOG, [LOG, LOG]) == []
    assert differing(LOG, [BOTH, LOG, BOTH, LOG_OTHER]) == [LOG_OTHER, BOTH]


def test_expiry_is_three_beats_and_ten_seconds():
    assert expiry(5.0) == 25.0 and expiry(1.0) == 13.0


def test_the_fingerprint_covers_options_not_folders_nor_secrets(tmp_path: Path):
    def spec(folder: Path, **raw: str):
        return parse_channel("hook", {"url": "https://h.example/x", **raw}, source="s",
                             base_dir=folder)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = channel_set([spec(tmp_path / "a")])
    assert base.names == ("hook",) and re.fullmatch(r"[0-9a-f]{64}", base.fingerprint)
    assert channel_set([spec(tmp_path / "b")]) == base  # workers, hosts: another folder
    assert channel_set([spec(tmp_path / "a", headers="Authorization: Bearer other")]) != base
    secret = channel_set([spec(tmp_path / "a", headers="Authorization: Bearer s3cret")])
    assert channel_set([spec(tmp_path / "a", headers="Authorization: Bearer 0ther")]) == secret
    assert channel_set([spec(tmp_path / "a", **{"min-severity": "FAIL"})]) != base
    assert channel_set([spec(tmp_path / "a", retries="2")]) != base
    one = spec(tmp_path / "a")
    assert channel_set([replace(one, smtp_password="x")]) == channel_set([one])
    other = replace(one, name="mail")
    assert channel_set([one, other]) == channel_set([other, one])
    assert channel_set([one, other]).names == ("hook", "mail")
    assert channel_set([]) == channel_set(()) != base


@pytest_twisted.ensureDeferred
async def test_store_registers_refuses_expires_and_removes(database):
    store = ChannelSetStore(database)
    ttl = expiry()
    assert await store.register("a", BOTH, 100.0, ttl) == []
    assert await store.register("b", LOG, 101.0, ttl) == [BOTH]  # refused, nothing written
    assert set(await store.live(101.0, ttl)) == {"a"}
    assert await store.register("c", BOTH, 102.0, ttl) == []  # the same set joins
    assert await store.register("c", BOTH, 103.0, ttl) == []  # registering again is fine
    assert await store.heartbeat("a", 110.0) is True
    assert await store.heartbeat("b", 110.0) is False  # never registered
    assert await store.live(110.0, ttl) == {"a": BOTH, "c": BOTH}
    await store.remove("c")
    # "a" died at 110 (no more heartbeats): alive until 110 + ttl, gone after.
    assert await store.register("b", LOG, 110.0 + ttl - 1, ttl) == [BOTH]
    assert await store.register("b", LOG, 110.0 + ttl + 1, ttl) == []
    assert await store.live(110.0 + ttl + 1, ttl) == {"b": LOG}
    assert await store.heartbeat("a", 200.0) is False  # its row expired and was removed
    await store.remove("b")
    assert await store.live(0.0, ttl) == {}


@pytest_twisted.ensureDeferred
async def test_two_processes_registering_different_sets_at_once_one_wins(database,
                                                                         database_url,
                                                                         tmp_path):
    """Two connection pools (two processes) race: the committed result decides, once."""
    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database

    others = [Database(parse_database_url(database_url, tmp_path), reactor())
              for _ in range(3)]
    try:
        for round_ in range(5):
            stores = [ChannelSetStore(database)] + [ChannelSetStore(db) for db in others]
            sets = [LOG, BOTH, LOG_OTHER, BOTH]
            results = await gatherResults([
                __import__("twisted.internet.defer", fromlist=["x"]).ensureDeferred(
                    store.register(f"p{round_}-{n}", sets[n], 1000.0 * (round_ + 1), 1.0))
                for n, store in enumerate(stores)])
            live = await stores[0].live(1000.0 * (round_ + 1), 1.0)
            assert len({s.fingerprint for s in live.values()}) == 1, (results, live)
            winners = {sets[n].fingerprint for n, r in enumerate(results) if r == []}
            assert winners == {s.fingerprint for s in live.values()}
    finally:
        for db in others:
            db.close()


# -- Real server processes ------------------------------------------------------------------

TWO = "[alert:log]\ncommand = true\n[alert:pager]\ncommand = true\nmin-severity = FAIL\n"
ONE = "[alert:log]\ncommand = true\n"
LEVEL = re.compile(r"^\d{4}-\S+ \[(?:-|[^\]#]*#(\w+))\]")


def problems(output: str) -> list[str]:
    """The lines of a twistd log that are not routine (info) lines."""
    return [line for line in output.splitlines() if line.strip() and (
        (m := LEVEL.match(line)) is None or m.group(1) not in (None, "info", "debug"))]


def server(tmp_path: Path, database: str | None, config: str, name: str) -> RealServer:
    return RealServer(tmp_path, database, config + "[overc]\nwatchdog-interval = 0.5\n",
                      name=name)


@pytest.mark.slow
def test_real_processes_on_one_database_must_share_their_channels(tmp_path: Path,
                                                                   database_url):
    # SQLite: every RealServer in tmp_path uses (and queries) tmp_path/overc.db.
    database = None if database_url.startswith("sqlite") else database_url
    first = server(tmp_path, database, TWO, "first").start()
    same = server(tmp_path, database, TWO, "same")
    fewer = server(tmp_path, database, ONE, "fewer")
    try:
        def live():
            return first.query("SELECT names FROM channel_sets")

        wait_for(live, 20, "the first process to register its channels")
        fewer.start(wait=False)
        assert fewer.process is not None
        status = fewer.process.wait(60)
        log = fewer.log_text()
        assert status == 1, log
        assert "Traceback" not in log
        lines = problems(log)
        assert len(lines) == 1, log
        assert ("overc: the channels differ from those of the running processes on this"
                " database: here [log], there [log, pager]: give every process the same"
                " [alert:*] sections; stopping") in lines[0], lines

        same.start()  # the same channels: it starts and registers too
        wait_for(lambda: len(live()) == 2, 20, "both processes to be registered")
        assert sorted(live()) == [('["log", "pager"]',)] * 2
        for stopped in (first, same):  # twistd ends a clean SIGTERM stop with the signal
            assert stopped.stop() in (0, -signal.SIGTERM), stopped.log_text()
        assert live() == []  # a clean stop removes its row

        again = server(tmp_path, database, ONE, "again").start()  # now [log] may start
        try:
            wait_for(lambda: live() == [('["log"]',)], 20, "the new set to be registered")
        finally:
            again.stop()
    finally:
        for one in (first, same, fewer):
            one.stop()
