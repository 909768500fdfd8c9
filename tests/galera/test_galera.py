"""SPEC 12 on a real three-node MariaDB Galera cluster (one per session, see conftest.py).

- migrations started at once on two nodes; every table has a primary key;
- the store claim suite of tests/monitoring/test_alerting_store.py, its second pool on another
  node;
- two real OverC processes on two nodes (host lists in different orders) and a third through
  the single-writer front of misc/haproxy/overc.cfg, under continuous pushes, ``kill -9`` of
  one process's node: nothing acknowledged is lost, every process answers 200 again within
  seconds, no 500 anywhere, services going stale meanwhile are notified once; the node
  restarts and rejoins with the same data;
- services of both processes stop reporting and one process is killed mid-delivery: every
  stale transition and every notification once;
- docs/deploy.md followed as written (addresses only changed), misc/haproxy/overc.cfg in front.

The tests run in file order and leave the cluster whole (the kill test restarts its node).
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

import slow_channel
from galera_cluster import TEMPLATE
from haproxy_front import SHIPPED, HAProxy, free_port, local_config, require_haproxy
from helpers import reactor, wait_for
from realserver import ROOT, RealServer, http

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitoring"))
import test_alerting_store as claim_suite  # noqa: E402

pytestmark = [pytest.mark.galera, pytest.mark.slow, pytest.mark.mysql]


def _database(url: str, tmp_path: Path):
    from overc.core.dburl import parse_database_url
    from overc.storage.db import Database

    return Database(parse_database_url(url, tmp_path), reactor())


# -- Migrations ----------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_two_processes_on_two_nodes_migrate_at_once(galera, galera_database, tmp_path):
    from overc.storage.migrate import load_migrations

    known = max(v for v, _, _ in load_migrations())
    dbs = [_database(galera.url(galera_database, order), tmp_path)
           for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1])]
    try:
        versions = await gatherResults([Deferred.fromCoroutine(db.migrate()) for db in dbs])
        assert versions == [known] * 3
    finally:
        for db in dbs:
            db.close()
    for node in galera.nodes:  # the same schema on every node, each version recorded once
        rows = node.query("SELECT version FROM schema_version ORDER BY version",
                          database=galera_database)
        assert [v for (v,) in rows] == sorted({v for v, _, _ in load_migrations()})
    without_key = galera.nodes[2].query(
        "SELECT t.table_name FROM information_schema.tables t WHERE t.table_schema = ?"
        " AND NOT EXISTS (SELECT 1 FROM information_schema.table_constraints c"
        "  WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name"
        "  AND c.constraint_type = 'PRIMARY KEY')", galera_database)
    assert without_key == [], "Galera needs a primary key on every table"


# -- The store claim suite, its second pool on another node ----------------------------------

CLAIM_TESTS = sorted(name for name, value in vars(claim_suite).items()
                     if name.startswith("test_") and callable(value))


@pytest.mark.parametrize("name", CLAIM_TESTS)
@pytest_twisted.ensureDeferred
async def test_claim_suite_on_the_cluster(name, galera, galera_database, tmp_path):
    db = _database(galera.url(galera_database, [0, 1, 2]), tmp_path)
    await db.migrate()
    try:
        test = getattr(claim_suite, name)
        arguments = {"world": claim_suite.World(db), "tmp_path": tmp_path,
                     # the second pool of the racing test: another node first
                     "database_url": galera.url(galera_database, [1, 2, 0])}
        wanted = inspect.signature(inspect.unwrap(test)).parameters
        await test(**{key: arguments[key] for key in wanted})
    finally:
        db.close()


# -- Two processes, one node killed under load -------------------------------------------------

def _push(server: RealServer, host: str, services: dict[str, str], period: int = 3600,
          timeout: float = 15.0) -> tuple[int, object]:
    status, _, body = http("POST", server.url + "api/set/service/status", {
        "server": {"name": host, "key": "k-" + host}, "period": period,
        "services": [{"name": name, "state": "OK", "info": info}
                     for name, info in services.items()],
    }, timeout=timeout)
    return status, body


class Pusher(threading.Thread):
    """One client pushing to one process as fast as it is answered; every answer recorded."""

    def __init__(self, name: str, server: RealServer, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.name, self.server, self.stop = name, server, stop
        self.answers: list[tuple[float, float, int, str]] = []  # sent, answered, status, info

    def run(self) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            info = f"{self.name}-{count}"
            sent = time.time()
            try:
                status, _ = _push(self.server, self.name, {f"svc{count % 5}": info})
            except OSError:
                status = -1
            self.answers.append((sent, time.time(), status, info))


def _fingerprint(node, database: str) -> tuple:
    return tuple(node.query(
        "SELECT (SELECT COUNT(*) FROM states), (SELECT SUM(CRC32(info)) FROM states),"
        " (SELECT COUNT(*) FROM services), (SELECT COUNT(*) FROM servers),"
        " (SELECT SUM(CRC32(CONCAT(id, state, info))) FROM services)", database=database)[0])


def _writer_front(galera, tmp_path: Path, overc: list[int]) -> tuple[HAProxy, str, str]:
    """misc/haproxy/overc.cfg running here: its HTTP front to the OverC ports ``overc``, its
    ``galera-writer`` front to the three nodes, db1 first. Creates the check user as the
    file's comment says (:func:`_drop_check_user` removes it). Returns HAProxy, the HTTP
    front's URL and the writer front's ``127.0.0.1:PORT``."""
    require_haproxy()
    check_user = re.search(r"CREATE USER .*;", SHIPPED.read_text())[0]
    galera.nodes[0].query(_here(check_user, galera))
    writer = f"127.0.0.1:{free_port()}"
    port = free_port()
    front = HAProxy(tmp_path, local_config(
        f"127.0.0.1:{port}", [f"127.0.0.1:{p}" for p in overc],
        writer, [node.address for node in galera.nodes]))
    try:
        front.check()
        return front.start(port), f"http://127.0.0.1:{port}/", writer
    except BaseException:
        front.stop()
        _drop_check_user(galera)
        raise


def _drop_check_user(galera) -> None:
    galera.nodes[1].query("DROP USER IF EXISTS 'haproxy_check'@'127.0.0.%'")


def test_kill_a_node_under_load_loses_nothing_and_fails_over(galera, galera_database,
                                                              tmp_path):
    """Also: a third process through the shipped config's single-writer front (db1, the node
    killed, then a backup), pushed to through the kill and the node's return; and services
    going stale while the cluster waits for the killed node, notified through a channel."""
    victim_node = galera.nodes[0]
    slow_channel.install(tmp_path)
    q = lambda sql: galera.nodes[2].query(sql, database=galera_database)  # noqa: E731
    config = slow_channel.CONFIG
    a = RealServer(tmp_path, galera.url(galera_database, [0, 1, 2]), config, name="a")
    b = RealServer(tmp_path, galera.url(galera_database, [1, 2, 0]), config, name="b")
    front, _, writer = _writer_front(galera, tmp_path, [a.port, b.port])
    w = RealServer(tmp_path, f"mysql://root@{writer}/{galera_database}", config, name="w")
    stop = threading.Event()
    pushers = [Pusher(f"c{i}", server, stop) for i, server in enumerate([a, b, a, b, w])]
    try:
        for server in (a, b, w):
            server.start()
        assert a.get("healthz")[2]["database"]["host"] == galera.nodes[0].address
        assert b.get("healthz")[2]["database"]["host"] == galera.nodes[1].address
        assert w.get("healthz")[2]["database"]["host"] == writer
        for pusher in pushers:
            pusher.start()
        wait_for(lambda: all(sum(1 for x in p.answers if x[2] == 200) >= 20 for p in pushers),
                 30, "every client to have 20 acknowledged pushes")
        # Ten services due 3 s from now, whose host then stops pushing.
        for name, server in (("gone0", a), ("gone1", b)):
            services = {f"s{i}": f"{name} s{i}" for i in range(5)}
            assert _push(server, name, services, period=2)[0] == 200
        killed = time.time()
        victim_node.kill()
        # Process a's node is gone: it answers 200 again, through the next host of its list.
        wait_for(lambda: any(x[0] > killed and x[2] == 200
                             for p in pushers if p.server is a for x in p.answers),
                 20, "process a to acknowledge a push sent after the kill")
        recovered = min(x[1] for p in pushers if p.server is a for x in p.answers
                        if x[0] > killed and x[2] == 200) - killed
        wait_for(lambda: all(sum(1 for x in p.answers if x[0] > killed + recovered
                                 and x[2] == 200) >= 20 for p in pushers),
                 30, "every client (w through the writer front too) to have 20 more"
                 " acknowledged pushes")
        health = a.get("healthz")
        assert health[0] == 200 and health[2]["database"]["host"] != victim_node.address
        # The killed node restarts, rejoins (IST from the others) under the same load; the
        # writer front takes db1 back once its check passes again.
        victim_node.start()
        galera.wait_size(3, galera.nodes, timeout=180)
        rejoined = time.time()
        wait_for(lambda: front.stat()["galera-writer/db1"]["status"] == "UP", 30,
                 "HAProxy to see db1 up again")
        back = time.time()
        wait_for(lambda: all(sum(1 for x in p.answers if x[0] > back and x[2] == 200) >= 20
                             for p in pushers),
                 30, "every client to have 20 acknowledged pushes after db1 is back")
        stop.set()
        for pusher in pushers:
            pusher.join(30)
        # Pushes answered 503 around the kill are a gap in watching (agents back off): the
        # 10 services get the fresh window, 65 s + grace from the last such tick, then go stale.
        wait_for(lambda: q("SELECT COUNT(*) FROM services WHERE stale = 1")[0][0] == 10,
                 100, "the 10 services with a 2 s period to go stale")
        slow_channel.wait_all_delivered(q)
    finally:
        stop.set()
        for pusher in pushers:
            if pusher.is_alive():
                pusher.join(30)
        for server in (a, b, w):
            server.stop()
        front.stop()
        _drop_check_user(galera)
    answers = [x for p in pushers for x in p.answers]
    statuses = {s.name: Counter(x[2] for p in pushers if p.server is s for x in p.answers)
                for s in (a, b, w)}
    slowest = {s.name: max((x[1] - x[0] for p in pushers if p.server is s for x in p.answers),
                           default=0.0) for s in (a, b, w)}
    print(f"statuses {statuses}; process a answered 200 again {recovered:.2f} s after its"
          f" node was killed; the node was back {rejoined - killed:.1f} s after the kill;"
          f" slowest answer per process {slowest}")
    assert all(set(s) <= {200, 503} for s in statuses.values()), f"only 200 or 503: {statuses}"
    assert recovered < 10.0
    acknowledged = {info for _, _, status, info in answers if status == 200}
    for node in galera.nodes:  # the survivors, and the rejoined node
        stored = Counter(info for (info,) in node.query("SELECT info FROM states",
                                                        database=galera_database))
        assert acknowledged <= set(stored), f"{node.name} lacks acknowledged reports"
        assert max(stored.values()) == 1, "a report stored twice"
    prints = [_fingerprint(node, galera_database) for node in galera.nodes]
    assert prints[0] == prints[1] == prints[2], prints
    # Every stale transition once, every alert in one notification, each delivered once (no
    # process died: no lease may have been taken over).
    # gone0 and gone1 stopped pushing: one server-offline each is what is notified, their
    # services' offline alerts are recorded and held (SPEC 10.3).
    offline = Counter(q("SELECT service_id FROM alerts WHERE kind = 'offline'"))
    assert len(offline) == 10 and set(offline.values()) == {1}
    assert Counter(kind for (kind,) in q("SELECT kind FROM alerts")) == {
        "offline": 10, "server-offline": 2}
    links = Counter(alert for (alert,) in q("SELECT alert_id FROM notification_alerts"))
    assert sorted(links.values()) == [1] * 2
    sent = {n for (n,) in q("SELECT id FROM notifications WHERE status = 'sent'")}
    delivered = Counter(json.loads(path.read_text())["notification"]
                        for path in (tmp_path / "deliveries").glob("*.json"))
    assert sent and delivered == {n: 1 for n in sent}, (sent, delivered)


# -- Stale transitions and notifications across two processes on two nodes --------------------

def test_two_nodes_every_stale_transition_and_notification_once(galera, galera_database,
                                                                 tmp_path):
    slow_channel.install(tmp_path)
    node = galera.nodes[2]
    q = lambda sql: node.query(sql, database=galera_database)  # noqa: E731
    config = slow_channel.CONFIG
    a = RealServer(tmp_path, galera.url(galera_database, [0, 1, 2]), config, name="a")
    b = RealServer(tmp_path, galera.url(galera_database, [1, 2, 0]), config, name="b")
    a.start()
    b.start()
    try:
        hosts = {"h0": a, "h1": b, "h2": a, "h3": b}
        for name, server in hosts.items():
            assert _push(server, name, {f"s{i}": "up" for i in range(5)}, period=2)[0] == 200
            status, _, body = server.post("api/set/service/status", {
                "server": {"name": name, "key": "k-" + name}, "period": 3600,
                "services": [{"name": "db", "state": "FAIL", "info": "down"}]})
            assert status == 200, body
        slow_channel.kill_the_deliverer(q, a, b)
        wait_for(lambda: q("SELECT COUNT(*) FROM services WHERE stale = 1")[0][0] == 20,
                 20, "all 20 services with a 2 s period to go stale")
        slow_channel.wait_all_delivered(q)
    finally:
        a.stop()
        b.stop()
    kinds = Counter(kind for (kind,) in q("SELECT kind FROM alerts"))
    assert kinds == {"offline": 20, "server-offline": 4, "state": 4}, kinds  # SPEC 10.3
    per_service = Counter(q("SELECT service_id FROM alerts WHERE kind = 'offline'"))
    assert set(per_service.values()) == {1}, "each stale transition once"
    per_server = Counter(q("SELECT server_id FROM alerts WHERE kind = 'server-offline'"))
    assert set(per_server.values()) == {1}, "each server's outage once"
    links = q("SELECT notification_id, alert_id FROM notification_alerts")
    assert sorted(Counter(alert for _, alert in links).values()) == [1] * 8
    slow_channel.check_deliveries(q, tmp_path)


# -- docs/deploy.md followed on the cluster, with misc/haproxy/overc.cfg in front --------------

GUIDE = ROOT / "docs" / "deploy.md"


def _guide_blocks(language: str) -> list[str]:
    """The guide's fenced code blocks in ``language``, in order."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", GUIDE.read_text(),
                                              re.M | re.S) if lang == language]


def _here(text: str, galera) -> str:
    """The guide's addresses made this machine's: ``dbN:3306`` is node N, and the network
    ``10.0.0.%`` that users are created for is 127.0.0.%. Nothing else changes."""
    for index, node in enumerate(galera.nodes):
        text = text.replace(f"db{index + 1}:3306", node.address)
    return text.replace("'10.0.0.%'", "'127.0.0.%'")


def _mariadb(galera, host: str, tmp_path: Path, words: list[str], stdin: str = "") -> str:
    """The ``mariadb`` client as the guide runs it on ``host`` (db1..db3): its ~/.my.cnf,
    in a HOME of its own, points it at that node."""
    node = galera.nodes[int(host[2:]) - 1]
    home = tmp_path / host
    home.mkdir(exist_ok=True)
    (home / ".my.cnf").write_text(f"[client]\nhost = 127.0.0.1\nport = {node.port}\n"
                                  "user = root\n")
    done = subprocess.run(words, input=stdin, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "HOME": str(home)})
    assert done.returncode == 0, done.stderr
    return done.stdout


class ConfigServer(RealServer):
    """A real server whose database is the one its config file names (the guide's [overc])."""

    def command(self) -> list[str]:
        command = super().command()
        at = command.index("--database")
        return command[:at] + command[at + 2:]


def test_the_deploy_guide_on_the_cluster(galera, tmp_path):
    install, start = _guide_blocks("sh")
    # 1. The packages it installs are those the cluster fixture runs, and the file it copies
    # is the one the fixture fills in for every node.
    [apt] = [line.split() for line in install.splitlines() if line.startswith("apt-get ")]
    for package in apt[2:]:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True).stdout
        assert status == "install ok installed", f"{package}: {status!r}"
    [copy] = [line.split() for line in install.splitlines() if line.startswith("cp ")]
    assert ROOT / copy[1] == TEMPLATE
    # 2. Starting the cluster: the fixture did what `galera_new_cluster` (mariadbd with
    # --wsrep-new-cluster) and `systemctl start mariadb` do on this machine without systemd;
    # the check is run as written, on the node written, and answers what its comment says.
    checked = 0
    for line in start.splitlines():
        host, command = line.split("$ ", 1)
        words = shlex.split(command, comments=True)
        if words[0] == "mariadb":
            output = _mariadb(galera, host, tmp_path, words)
            assert output.split()[-1] == command.rsplit("#", 1)[1].strip(), output
            checked += 1
    assert checked == 1
    # 3. OverC's user, then OverC with the guide's config (two processes, every node in the URL).
    [create_user] = _guide_blocks("sql")
    [config] = _guide_blocks("ini")
    cfg = SHIPPED.read_text()
    writer_bind = re.search(r"^listen galera-writer\n(?:.*\n)*?\s+bind (\S+)", cfg, re.M)[1]
    writer_url = re.search(r"mysql://\S+", cfg)[0]
    assert writer_bind in writer_url
    guide = ConfigServer(tmp_path, config_text=_here(config, galera), name="guide")
    single_port = free_port()
    front = single = None
    try:
        _mariadb(galera, "db2", tmp_path, ["mariadb"], _here(create_user, galera))
        guide.start(timeout=60)
        assert guide.get("healthz")[2]["database"]["host"] == galera.nodes[0].address
        # 4. HAProxy with the shipped config: HTTP to the guide's box and to a box whose
        # database is the `galera-writer` front, as the config's comment tells.
        front, url, writer = _writer_front(galera, tmp_path, [guide.port, single_port])
        single = ConfigServer(tmp_path, name="single", port=single_port, config_text=(
            "[overc]\ndatabase = " + writer_url.replace(writer_bind, writer) + "\n"))
        single.start(timeout=60)
        assert single.get("healthz")[2]["database"]["host"] == writer
        # Every check passes (/healthz on both boxes, HAProxy's user on every node), every
        # server is up (the box behind the writer front joined the rotation after 2 checks).
        checked = ["overc/overc1", "overc/overc2"] + [f"galera-writer/db{i}" for i in (1, 2, 3)]

        def all_up() -> dict | None:
            stats = front.stat()
            return stats if all(stats[name]["status"] == "UP" and stats[name]["check_status"]
                                in ("L7OK", "L7OKC") for name in checked) else None

        wait_for(all_up, 15, "every server of the HAProxy config to be up")
        for count in range(20):
            status, _, body = http("POST", url + "api/set/service/status", {
                "server": {"name": "web1", "key": "k"}, "period": 3600,
                "services": [{"name": "app", "state": "OK", "info": f"push {count}"}]})
            assert status == 200, body
        stats = front.stat()
        assert int(stats["overc/overc1"]["hrsp_2xx"]) > 0
        assert int(stats["overc/overc2"]["hrsp_2xx"]) > 0
        # The writer front is db1 while db1 lives; db2 and db3 are backups.
        assert [stats[f"galera-writer/db{i}"]["bck"] for i in (1, 2, 3)] == ["0", "1", "1"]
        import pymysql

        host, writer_port = writer.split(":")
        with contextlib.closing(pymysql.connect(host=host, port=int(writer_port), user="overc",
                                                password="PASSWORD")) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@wsrep_node_name")
                assert cursor.fetchone()[0] == "db1"
        infos = {info for (info,) in galera.nodes[2].query("SELECT info FROM states",
                                                            database="overc")}
        assert infos == {f"push {count}" for count in range(20)}
    finally:
        for process in (guide, single, front):
            if process is not None:
                process.stop()
        galera.nodes[0].query("DROP DATABASE IF EXISTS overc")
        galera.nodes[0].query("DROP USER IF EXISTS 'overc'@'127.0.0.%'")
        _drop_check_user(galera)
