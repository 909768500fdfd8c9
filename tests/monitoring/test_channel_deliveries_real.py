"""Which channel failed: a real server with one channel that works and two that fail (a script
that exits 1), and the read API and the Alerts page naming each channel with its state, its
attempts and its last error."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import wait_for
from realserver import running_server

pytestmark = pytest.mark.slow

CONFIG = """[overc]
watchdog-interval = 0.5
[alert:log]
command = ./alert.d/ok.sh
[alert:pager]
command = ./alert.d/broken.sh
retries = 0
[alert:sms]
command = ./alert.d/broken.sh
retries = 3
"""


def script(folder: Path, name: str, body: str) -> None:
    path = folder / "alert.d" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def test_the_api_and_the_alerts_page_name_the_failing_channel(tmp_path: Path, database_url):
    script(tmp_path, "ok.sh", "cat > /dev/null\n")
    script(tmp_path, "broken.sh", "cat > /dev/null\necho 'gateway down' >&2\nexit 1\n")
    database = None if database_url.startswith("sqlite") else database_url
    with running_server(tmp_path, database=database, config_text=CONFIG) as server:
        status, _, body = server.post("api/set/service/status", {
            "server": {"name": "web1", "key": "k1"}, "period": 3600,
            "services": [{"name": "app", "state": "FAIL", "info": "down"}]})
        assert status == 200, body

        def settled():
            status, _, page = server.get("api/alerts?server=web1&service=app")
            assert status == 200, page
            alert = page["items"][0]
            by_channel = {d["channel"]: d for d in alert["deliveries"]}
            if (by_channel.get("pager", {}).get("status") == "failed"
                    and by_channel.get("sms", {}).get("attempts") == 1
                    and by_channel.get("sms", {}).get("status") == "pending"
                    and by_channel.get("log", {}).get("status") == "sent"):
                return alert
            return None

        alert = wait_for(settled, 30, "log sent, pager failed for good, sms waiting to retry")
        assert alert["deliveries"] == [
            {"channel": "log", "status": "sent", "attempts": 1, "last_error": None},
            {"channel": "pager", "status": "failed", "attempts": 1,
             "last_error": alert["deliveries"][1]["last_error"]},
            {"channel": "sms", "status": "pending", "attempts": 1,
             "last_error": alert["deliveries"][2]["last_error"]},
        ]
        for failed in alert["deliveries"][1:]:
            assert failed["last_error"].startswith("exit code 1"), failed
            assert "gateway down" in failed["last_error"], failed
        assert alert["delivery"] == {"sent": 1, "failed": 1, "pending": 1}  # the old counts

        status, _, html = server.get(f"ui/alerts?server=web1")
        assert status == 200
        html = html.decode() if isinstance(html, bytes) else str(html)
        rows = dict(re.findall(r'data-channel="(\w+)"><b>\w+</b> (\w+)', html))
        assert rows == {"log": "sent", "pager": "failed", "sms": "pending"}, html
        assert "gateway down" in html and "1 attempt<" in html
