"""docs/deploy.md, "HAProxy in front": the shipped ``misc/haproxy/overc.cfg`` (only its
addresses replaced, see tests/haproxy_front.py) run by Debian's haproxy in front of two real
``twistd overc server`` processes on one MariaDB. Pushes go through HAProxy to both; one process
is SIGKILLed; every push still gets a 200 and its /healthz check takes the dead one out.

The config's ``galera-writer`` front needs a cluster: tests/galera/test_galera.py runs it.
"""
from __future__ import annotations

import re
import threading
from collections import Counter

import pytest

from haproxy_front import (SHIPPED, HAProxy, check_config, free_port, local_config,
                           require_haproxy)
from helpers import wait_for
from realserver import RealServer, http

CONFIG = "[overc]\naccess-log = on\n"  # to see HAProxy's checks and pushes arrive


class Pusher(threading.Thread):
    """Pushes through HAProxy as fast as it answers; every answer recorded in order."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.answers: list[tuple[str, int]] = []  # info, status

    def run(self) -> None:
        while not self.stop.is_set():
            info = f"push-{len(self.answers)}"
            try:
                status = http("POST", self.url + "api/set/service/status", {
                    "server": {"name": "web1", "key": "k"}, "period": 3600,
                    "services": [{"name": "app", "state": "OK", "info": info}]}, timeout=30)[0]
            except OSError:
                status = -1
            self.answers.append((info, status))

    def acknowledged(self) -> int:
        return sum(1 for _, status in self.answers if status == 200)


def test_the_shipped_config_is_valid_as_it_is():
    require_haproxy()
    check_config("-f", str(SHIPPED))


@pytest.mark.slow
@pytest.mark.mysql
def test_haproxy_keeps_pushes_at_200_when_an_overc_process_dies(tmp_path, mysql_url):
    require_haproxy()
    a = RealServer(tmp_path, mysql_url, CONFIG, name="a")
    b = RealServer(tmp_path, mysql_url, CONFIG, name="b")
    port = free_port()
    front = HAProxy(tmp_path, local_config(f"127.0.0.1:{port}",
                                           [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]))
    front.check()
    pusher = Pusher(f"http://127.0.0.1:{port}/")
    try:
        a.start()
        b.start()
        front.start(port)
        # Both processes are in the rotation, checked with GET /healthz, and take pushes.
        for server in (a, b):
            # (HAProxy's check is HTTP/1.0 without a User-Agent; RealServer's own is urllib's)
            wait_for(lambda: re.search(r'"GET /healthz HTTP/1\.0" 200 \d+ "-" "-"',
                                       server.log_text()),
                     15, f"HAProxy to check {server.name}'s /healthz")
        pusher.start()
        wait_for(lambda: all("POST /api/set/service/status" in s.log_text() for s in (a, b))
                 and pusher.acknowledged() >= 20, 30, "pushes through HAProxy to both processes")
        a.kill()
        killed_at = len(pusher.answers)
        down = wait_for(lambda: re.search(r"Server overc/overc1 is DOWN.*", front.log_text()),
                        15, "HAProxy's check to take the killed process out")
        after = len(pusher.answers)
        wait_for(lambda: pusher.acknowledged() >= after + 20, 30,
                 "20 more acknowledged pushes with one process left")
    finally:
        pusher.stop.set()
        if pusher.is_alive():
            pusher.join(30)
        front.stop()
        a.stop()
        b.stop()
    statuses = Counter(status for _, status in pusher.answers)
    print(f"{statuses}; {len(pusher.answers) - killed_at} pushes after the kill; {down[0]}")
    assert set(statuses) == {200}, statuses
    # The dead process left the rotation: every request HAProxy logged after it said so
    # went to overc2.
    log = front.log_text()
    later = log[log.index(down[0]):]
    served = Counter(re.findall(r"\] overc overc/(overc\d) ", later))
    assert set(served) == {"overc2"}, served
    # Every acknowledged push is stored (a push cut off by the kill after its COMMIT may be
    # stored twice, as when an agent resends it: HAProxy retries an empty response).
    stored = Counter(info for (info,) in a.query("SELECT info FROM states"))
    assert {info for info, _ in pusher.answers} <= set(stored)
