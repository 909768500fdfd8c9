"""The small shared pieces of ``overc.web`` and the read model's dialect choices, directly."""
from __future__ import annotations

import sqlite3

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from overc.api.shapes import alert_json, server_json, state_json
from overc.storage.dialect import MySQLDialect, SQLiteDialect
from overc.core.alerts import Alert
from overc.storage.read_servers import ServerRow, ServiceRow
from overc.storage.read_service import StateRow
from overc.web.http import answer_later, json_body


def test_answer_later_writes_and_finishes_when_the_answer_is_ready():
    request = DummyRequest([b""])
    pending: Deferred[bytes] = Deferred()

    async def answer() -> bytes:
        return await pending

    answer_later(request, answer())
    assert request.written == [] and not request.finished
    pending.callback(b"done")
    assert request.written == [b"done"] and request.finished == 1


def test_answer_later_drops_the_answer_of_a_client_that_left():
    """The public way (``notifyFinish`` fails) replaces the private ``_disconnected`` probe."""
    request = DummyRequest([b""])
    pending: Deferred[bytes] = Deferred()

    async def answer() -> bytes:
        return await pending

    answer_later(request, answer())
    request.processingFailed(Failure(ConnectionError("gone")))
    pending.callback(b"too late")
    assert request.written == [] and not request.finished


def test_answer_later_answers_500_when_the_answer_fails():
    request = DummyRequest([b""])

    async def answer() -> bytes:
        raise RuntimeError("boom")

    answer_later(request, answer())
    assert request.responseCode == 500 and request.finished == 1
    assert request.written == [b"internal error\n"]


def test_json_body_is_compact_utf8_and_not_cached():
    request = DummyRequest([b""])
    assert json_body(request, {"name": "dü", "n": 1}, 201) == '{"name":"dü","n":1}'.encode()
    assert request.responseCode == 201
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"application/json; charset=utf-8"]
    assert request.responseHeaders.getRawHeaders(b"cache-control") == [b"no-store"]


class _Cursor:
    def __init__(self, connection: object = None) -> None:
        self.raw = type("Raw", (), {"connection": connection})()
        self.executed: list[str] = []

    def execute(self, sql: str) -> None:
        self.executed.append(sql)


def test_sqlite_read_model_sql():
    dialect = SQLiteDialect()
    cursor = _Cursor()
    assert dialect.json_array_aggregate(cursor) == ("", "json_group_array")
    assert not dialect.has_group_concat_limit(cursor)
    assert dialect.join_in_written_order == "CROSS JOIN"
    bucket = dialect.floor_to_int("(? - 1.5)")
    assert sqlite3.connect(":memory:").execute(f"SELECT {bucket}", (4,)).fetchone() == (2,)
    assert cursor.executed == []


def test_mysql_read_model_tells_mariadb_from_mysql_8():
    class Server:
        def __init__(self, version: str) -> None:
            self.version = version

        def get_server_info(self) -> str:
            return self.version

    dialect = MySQLDialect()
    mariadb = _Cursor(Server("10.11.6-MariaDB-0+deb12u1"))
    assert dialect.has_group_concat_limit(mariadb)
    assert dialect.json_array_aggregate(mariadb) == (
        "SET STATEMENT group_concat_max_len = 1073741824 FOR ", "JSON_ARRAYAGG")
    assert mariadb.executed == []
    mysql = _Cursor(Server("8.0.36"))
    assert not dialect.has_group_concat_limit(mysql)
    assert dialect.json_array_aggregate(mysql) == ("", "JSON_ARRAYAGG")
    assert mysql.executed == ["SET SESSION group_concat_max_len = 1073741824"]
    assert dialect.floor_to_int("x") == "FLOOR(x)" and dialect.join_in_written_order == "STRAIGHT_JOIN"


def test_api_shapes_carry_every_field_of_the_rows():
    service = ServiceRow(3, 1, "disk", "WARN", "90%", 60, 10.0, 70.0, False, True, "known",
                         None, None, "web1")
    server = ServerRow(1, "web1", "10.0.0.1", 1.0, 10.0, None, None, [service])
    shaped = server_json(server)
    assert shaped["services"][0] == {**vars(service)}
    assert {k: v for k, v in shaped.items() if k != "services"} == {
        k: v for k, v in vars(server).items() if k != "services"}
    assert state_json(StateRow(5, 9.5, "OK", None, True)) == {
        "id": 5, "time": 9.5, "state": "OK", "info": None, "late": True, "duration": None}
    from overc.core.alerts import ChannelDelivery

    alert = Alert(7, 1, "web1", 3, "disk", 9.0, "state", "WARN", "changed", "WARN", "",
                  {"sent": 2, "pending": 1}, deliveries=(
                      ChannelDelivery("log", "sent", 1, None),
                      ChannelDelivery("pager", "pending", 3, "exit status 1")))
    assert alert_json(alert) == {
        **{k: v for k, v in vars(alert).items() if k not in ("skip_channel", "deliveries")},
        "deliveries": [vars(d) for d in alert.deliveries]}
    assert alert_json(alert)["delivery"] is not alert.delivery
