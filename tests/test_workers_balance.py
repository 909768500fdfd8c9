"""``[overc] processes = N``: one long-lived keep-alive connection does not stay on one process.

The kernel picks the process per connection, so a client that keeps one connection open would
talk to one process forever; the server ends a connection after ``RECYCLE_AFTER`` requests
(``Connection: close``), and the client's next connection is a new draw.
"""
from __future__ import annotations

import http.client
import json

from overc.workers import RECYCLE_AFTER
from realserver import RealServer


def test_one_keepalive_client_reaches_every_process(tmp_path, mysql_url):
    server = RealServer(tmp_path, database=mysql_url, config_text="[overc]\nprocesses = 2\n")
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        pids: dict[int, int] = {}
        closes = []
        sockets = set()
        for n in range(1, 20 * RECYCLE_AFTER + 1):
            connection.request("GET", "/healthz")  # http.client reconnects after a close
            sockets.add(id(connection.sock))
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == 200
            pids[body["pid"]] = pids.get(body["pid"], 0) + 1
            if response.getheader("connection") == "close":
                closes.append(n)
        connection.close()
        # Every RECYCLE_AFTER-th request of a connection closes it: 20 connections, each a new
        # draw of the kernel's hash (all 20 on one process: 2 in a million).
        assert closes == [k * RECYCLE_AFTER for k in range(1, 21)]
        assert len(pids) == 2, pids
        assert min(pids.values()) >= RECYCLE_AFTER
    finally:
        server.stop()
