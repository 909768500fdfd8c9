"""/metrics on a real ``processes = 2`` server: each process builds in a child of its own
(started by its first scrape), every answer is whole, and stopping the server ends them all."""
from __future__ import annotations

import gzip
import os
import time
import urllib.request

from realserver import running_server


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its command line."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = {}, [pid]
    while todo:
        current = todo.pop()
        for child, parent in parents.items():
            if parent == current:
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                        found[child] = cmdline.read().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                todo.append(child)
    return found


def _metrics_children(pid: int) -> list[int]:
    return [p for p, command in _descendants(pid).items() if "overc.web.metrics_child" in command]


def _scrape(url: str, compressed: bool) -> bytes:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if compressed
                                     else {})
    with urllib.request.urlopen(request, timeout=30) as response:  # a new connection each
        body = response.read()
        assert response.status == 200
        assert (response.headers.get("content-encoding") == "gzip") is compressed
    return gzip.decompress(body) if compressed else body


def test_each_process_builds_in_its_own_child_and_stopping_ends_them(tmp_path, mysql_url):
    with running_server(tmp_path, database=mysql_url,
                        config_text="[overc]\nprocesses = 2\n") as server:
        status, _, _ = server.post("api/set/service/status", {
            "server": {"name": "web 1", "key": "k"}, "period": 60,
            "services": [{"name": "disk", "state": "OK", "info": "fine | used=42%;80;90"}]})
        assert status == 200
        main = server.process.pid
        assert _metrics_children(main) == []  # nobody scraped yet: no child
        deadline = time.monotonic() + 60
        scrapes = 0
        while len(_metrics_children(main)) < 2:  # each new connection is a new draw
            assert time.monotonic() < deadline, _descendants(main)
            text = _scrape(server.url + "metrics", compressed=scrapes % 2 == 0)
            scrapes += 1
            assert b'overc_service_state{server="web 1",service="disk"} 0' in text
            assert b'overc_perfdata{server="web 1",service="disk",label="used",uom="%"} 42' \
                in text
            assert text.endswith(b"\n")
        children = _metrics_children(main)
        assert len(children) == 2
    # running_server stopped it: the children read EOF on stdin and end
    deadline = time.monotonic() + 15
    while any(_is_metrics_child(pid) for pid in children):
        assert time.monotonic() < deadline, f"metrics children left running: {children}"
        time.sleep(0.1)


def _is_metrics_child(pid: int) -> bool:
    """Still running (a zombie's command line is empty)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"overc.web.metrics_child" in cmdline.read()
    except OSError:
        return False
