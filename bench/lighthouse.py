"""Lighthouse scores of the UI: the overview with 10,000 services, a service page, the alerts.

Starts a real server (open mode on loopback: no login needed) on a new SQLite file, fills it
with 1,000 servers x 10 services (a few silenced, API alerts, one service with a day of
history and perfdata), and runs npm's ``lighthouse`` against Debian's Chromium
(``CHROME_PATH=/usr/bin/chromium``), desktop and mobile presets. Lighthouse comes from
``~/.cache/overc-bench-npm`` (``npm install --prefix ~/.cache/overc-bench-npm lighthouse@12``,
done here when missing). Goal (issue 14): accessibility 100, performance >= 95 on the overview.

Usage: ``python bench/lighthouse.py [--servers 1000] [--services 10] [--pages overview,service]
[--presets desktop,mobile] [--root CHECKOUT]``; ``--root`` runs another checkout's server (a
before/after comparison: ``git archive COMMIT | tar -x -C /tmp/before``).
Results: bench/RESULTS.md ("UI in Lighthouse").
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from realserver import RealServer  # noqa: E402

NPM = Path(os.environ.get("OVERC_BENCH_NPM", Path.home() / ".cache" / "overc-bench-npm"))
CLI = NPM / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROMIUM = "/usr/bin/chromium"
STATES = ["OK"] * 90 + ["WARN"] * 6 + ["FAIL"] * 3 + ["UNK"]


def ensure_lighthouse() -> None:
    if not CLI.exists():
        NPM.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NPM),
                        "lighthouse@12"], check=True)


def varied_info(rng: random.Random, state: str) -> str:
    """Output like real plugins': numbers, sizes and timings that differ from service to
    service (what makes a page compress less than the bench's repeated text)."""
    n = rng.randint
    return rng.choice([
        f"DISK {state} - free space: / {n(1000, 99999)} MiB ({n(1, 99)}% inode={n(1, 99)}%);"
        f" /var {n(1000, 99999)} MiB ({n(1, 99)}%)| /={n(1000, 99999)}MiB;{n(1, 9999)};"
        f"{n(1, 9999)};0;{n(1, 99999)}",
        f"{state} - load average: {rng.random() * 4:.2f}, {rng.random() * 4:.2f},"
        f" {rng.random() * 4:.2f}|load1={rng.random() * 4:.3f};15.000;30.000;0;",
        f"HTTP {state}: HTTP/1.1 200 OK - {n(100, 99999)} bytes in {rng.random():.3f} second"
        f" response time |time={rng.random():.6f}s;;;0.000000 size={n(100, 99999)}B;;;0",
        f"PROCS {state}: {n(1, 400)} processes with STATE = RSZDT",
        f"SWAP {state} - {n(1, 100)}% free ({n(1, 4000)} MB out of 4095 MB) |swap={n(1, 4000)}MB",
    ])


def fill(db_path: Path, servers: int, services: int, varied: bool = False) -> int:
    """The estate, written straight into the migrated SQLite file; returns the charted id."""
    rng = random.Random(14)
    now = time.time()
    with sqlite3.connect(db_path, timeout=30) as db:
        db.executemany(
            "INSERT INTO servers (name, key_hash, ip, created, last_seen) VALUES (?, 'x', ?, ?, ?)",
            [(f"srv{i:04d}", f"10.0.{i // 250}.{i % 250}", now - 86400, now - 5)
             for i in range(servers)])
        ids = [r[0] for r in db.execute("SELECT id FROM servers ORDER BY id")]
        rows = []
        for sid in ids:
            for j in range(services):
                state = rng.choice(STATES)
                silenced = now + 3600 if rng.random() < 0.01 else None
                info = varied_info(rng, state) if varied else f"{state} - check {j} output | v={j}"
                rows.append((sid, f"svc{j:02d}", state, info,
                             60, now - rng.random() * 60, now + 60, now - 86400, silenced))
        db.executemany(
            "INSERT INTO services (server_id, name, state, info, period, last_time, deadline,"
            " created, silenced_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        charted = db.execute("SELECT MIN(id) FROM services").fetchone()[0]
        db.executemany(
            "INSERT INTO states (service_id, time, state, info) VALUES (?, ?, ?, ?)",
            [(charted, now - 86400 + i * 300, "OK" if i % 50 else "WARN", f"load {i % 7}")
             for i in range(288)])
        db.executemany(
            "INSERT INTO perfdata (service_id, time, label, value, uom, warn, crit, min, max)"
            " VALUES (?, ?, 'load1', ?, '', '4', '8', 0, NULL)",
            [(charted, now - 86400 + i * 300, 1 + (i % 37) / 10) for i in range(288)])
        db.executemany(
            "INSERT INTO alerts (server_id, time, kind, severity, message, dispatched)"
            " VALUES (?, ?, 'api', 'FAIL', 'System down: kernel panic', 1)",
            [(sid, now - 600) for sid in ids[:: max(1, len(ids) // 20)]])
    return int(charted)


CATEGORIES = "performance,accessibility,best-practices"


def lighthouse(url: str, preset: str, out: Path, categories: str = CATEGORIES
               ) -> dict[str, float]:
    command = ["node", str(CLI), url, "--quiet", "--output=json", f"--output-path={out}",
               f"--only-categories={categories}",
               "--chrome-flags=--headless=new --no-sandbox --disable-gpu"]
    if preset == "desktop":
        command.append("--preset=desktop")
    for attempt in range(3):  # a loaded machine makes Chromium miss DevTools deadlines
        done = subprocess.run(command, env={**os.environ, "CHROME_PATH": CHROMIUM},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode == 0:
            break
        print(f"lighthouse failed ({attempt + 1}/3): {done.stderr.strip()[-200:]}",
              file=sys.stderr)
    else:
        raise SystemExit(f"lighthouse failed three times on {url}")
    report = json.loads(out.read_text())
    scores = {name: round(cat["score"] * 100) for name, cat in report["categories"].items()}
    for name in CATEGORIES.split(","):
        scores.setdefault(name, "-")  # type: ignore[assignment]
    audits = report["audits"]
    scores["LCP ms"] = round(audits["largest-contentful-paint"]["numericValue"])
    scores["TBT ms"] = round(audits["total-blocking-time"]["numericValue"])
    scores["CLS"] = round(audits["cumulative-layout-shift"]["numericValue"], 3)
    failed = [a["id"] for a in audits.values()
              if a.get("score") is not None and a["score"] < 1
              and a.get("scoreDisplayMode") == "binary"]
    scores["failed"] = ",".join(sorted(failed)[:6]) or "-"  # type: ignore[assignment]
    for audit in failed:
        items = (audits[audit].get("details") or {}).get("items") or []
        for item in items[:3]:
            node = item.get("node") or {}
            print(f"  {audit}: {node.get('snippet', item)!s:.160}", file=sys.stderr)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--pages", default="overview,service,alerts")
    parser.add_argument("--presets", default="desktop,mobile")
    parser.add_argument("--varied-info", action="store_true",
                        help="plugin-like outputs that differ per service (default: one text)")
    parser.add_argument("--categories", default=CATEGORIES,
                        help="Lighthouse categories (axe on 10,000 tiles is slow when the"
                             " machine is loaded: measure performance alone then)")
    parser.add_argument("--root", type=Path, default=None,
                        help="the checkout whose server to run (default: this one)")
    parser.add_argument("--reports", type=Path, default=None,
                        help="keep Lighthouse's JSON reports in this folder")
    args = parser.parse_args()
    ensure_lighthouse()
    if args.reports:
        args.reports.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = RealServer(Path(tmp), root=args.root).start()
        try:
            run(server, args, Path(tmp))
        finally:
            server.stop()


def run(server: RealServer, args: argparse.Namespace, tmp: Path) -> None:
    import urllib.request

    charted = fill(server.db_path, args.servers, args.services, args.varied_info)
    base = server.url.rstrip("/")
    pages = {"overview": "/ui/", "service": f"/ui/service/{charted}",
             "alerts": "/ui/alerts"}
    for encoding in ("identity", "gzip"):
        started = time.perf_counter()
        asked = urllib.request.Request(base + "/ui/", headers={"Accept-Encoding": encoding})
        with urllib.request.urlopen(asked) as answer:
            size = len(answer.read())
            sent = answer.headers.get("content-encoding") or "identity"
        print(f"the overview ({sent}): {size / 1e6:.2f} MB in"
              f" {(time.perf_counter() - started) * 1000:.0f} ms (server and transfer)")
    load = os.getloadavg()[0]
    print(f"{args.servers * args.services} services; load average {load:.1f}"
          f" on {os.cpu_count()} cores")
    print("| page | preset | performance | accessibility | best practices | LCP ms"
          " | TBT ms | CLS | failed audits |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.pages.split(","):
        for preset in args.presets.split(","):
            s = lighthouse(base + pages[name], preset,
                           (args.reports or tmp) / f"{name}-{preset}.json", args.categories)
            print(f"| {name} | {preset} | {s['performance']} | {s['accessibility']} |"
                  f" {s['best-practices']} | {s['LCP ms']} | {s['TBT ms']} | {s['CLS']} |"
                  f" {s['failed']} |", flush=True)


if __name__ == "__main__":
    main()
