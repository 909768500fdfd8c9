"""A real three-node MariaDB Galera cluster on this machine, for tests (and bench/ingest.py).

Each node is Debian's ``/usr/sbin/mariadbd`` with ``/usr/lib/galera/libgalera_smm.so``, in its
own folder under ``base``, on free ports (client, gcomm, IST, SST), configured from
``misc/galera/60-galera.cnf`` (the file docs/deploy.md tells operators to install) plus a local
``[mysqld]`` section for the folder. Node 1 bootstraps with ``--wsrep-new-cluster``; the others
join by rsync SST. The machine's own MariaDB on 3306 is never touched.

Run as root, the nodes run as the ``mysql`` user (mariadbd ``--user=mysql``) in folders it owns:
rsync's SST daemon, started by a root mariadbd, would switch to ``nobody`` and be refused the
data folder. ``base`` must therefore be reachable by ``mysql`` (not pytest's 0700 tmp tree).

Synchronous on purpose (subprocess + pymysql), like tests/realserver.py.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "misc" / "galera" / "60-galera.cnf"
MARIADBD = "/usr/sbin/mariadbd"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


def missing_parts() -> list[str]:
    """What this machine lacks to run a cluster (empty: all there)."""
    need = [p for p in (MARIADBD, PROVIDER, INSTALL_DB) if not os.path.exists(p)]
    need += [tool for tool in ("rsync", "wsrep_sst_rsync") if shutil.which(tool) is None]
    return need


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def render_template(values: dict[str, str]) -> str:
    """``misc/galera/60-galera.cnf`` with every ``@NAME@`` replaced (all must be given)."""
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if "@" in body:
        raise AssertionError(f"unfilled placeholder in {TEMPLATE}: {body}")
    return text


class Node:
    def __init__(self, cluster: "GaleraCluster", index: int, ports: list[int]) -> None:
        self.cluster = cluster
        self.index = index
        self.name = f"db{index + 1}"
        self.port, self.gcomm, self.ist, self.sst = ports
        self.dir = cluster.base / self.name
        self.datadir = self.dir / "data"
        self.cnf = self.dir / "my.cnf"
        self.log = self.dir / "error.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cluster.give(self.dir)
        peers = ",".join(f"127.0.0.1:{n.gcomm}" for n in self.cluster.nodes)
        galera = render_template({
            "NODE_NAME": self.name, "NODE_ADDRESS": "127.0.0.1", "BIND_ADDRESS": "127.0.0.1",
            "PORT": str(self.port), "CLUSTER_ADDRESSES": peers, "GCOMM_PORT": str(self.gcomm),
            "IST_PORT": str(self.ist), "SST_PORT": str(self.sst),
        })
        local = "\n".join([
            "[mysqld]",
            f"datadir = {self.datadir}",
            f"socket = {self.dir / 'mysqld.sock'}",
            f"pid-file = {self.dir / 'mysqld.pid'}",
            f"log-error = {self.log}",
            f"tmpdir = {self.dir}",
            f"user = {self.cluster.user}",
            "innodb_buffer_pool_size = 64M",
            "innodb_log_file_size = 32M",
            # Test speed only: the cluster is the durability (a commit is on 2+ nodes).
            "innodb_flush_log_at_trx_commit = 2",
            "performance_schema = OFF",
            "max_connections = 300",
            "",
            "[client]",
            f"socket = {self.dir / 'mysqld.sock'}",
            "",
        ])
        self.cnf.write_text(local + "\n" + galera)

    def install(self) -> None:
        subprocess.run(
            [INSTALL_DB, f"--defaults-file={self.cnf}", f"--user={self.cluster.user}",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             f"--datadir={self.datadir}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
        )
        self.cluster.give(self.dir)

    def start(self, bootstrap: bool = False) -> None:
        command = [MARIADBD, f"--defaults-file={self.cnf}", f"--user={self.cluster.user}"]
        if bootstrap:
            command.append("--wsrep-new-cluster")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)

    def kill(self) -> None:
        """SIGKILL: a crash (the process group: rsync helpers too)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # leftover SST helpers

    def connect(self, database: str | None = None, **kw: Any) -> Any:
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                               database=database, connect_timeout=3, autocommit=True, **kw)

    def query(self, sql: str, *params: Any, database: str | None = None) -> list[tuple]:
        with contextlib.closing(self.connect(database)) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION wsrep_sync_wait = 1")
                cursor.execute(sql.replace("?", "%s"), params or None)
                return [tuple(row) for row in cursor.fetchall()]

    def status(self, name: str) -> str | None:
        with contextlib.closing(self.connect()) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SHOW STATUS LIKE %s", (name,))
                row = cursor.fetchone()
                return None if row is None else str(row[1])

    def synced(self, size: int) -> bool:
        """This node is up, ready, and sees ``size`` members."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
        try:
            return (self.status("wsrep_ready") == "ON"
                    and self.status("wsrep_local_state_comment") == "Synced"
                    and self.status("wsrep_cluster_size") == str(size))
        except Exception:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class GaleraCluster:
    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.user = "root"
        self._ids: tuple[int, int] | None = None
        if os.geteuid() == 0:
            import pwd

            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam("mysql")
                self.user, self._ids = "mysql", (entry.pw_uid, entry.pw_gid)
        self.nodes: list[Node] = []
        ports = _free_ports(4 * size)
        for index in range(size):
            self.nodes.append(Node(self, index, ports[4 * index: 4 * index + 4]))

    def give(self, path: Path) -> None:
        """Hand ``path`` (recursively) to the user the nodes run as."""
        if self._ids is None:
            return
        os.chown(path, *self._ids)
        for folder, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(os.path.join(folder, name), *self._ids, follow_symlinks=False)

    def start(self, timeout: float = 240.0) -> "GaleraCluster":
        atexit.register(self.kill_all)
        for node in self.nodes:
            node.write_config()
            node.install()
        first, *others = self.nodes
        first.start(bootstrap=True)
        self.wait(lambda: first.synced(1), timeout, "node 1 to bootstrap")
        for node in others:  # one joiner at a time: the donor serves one rsync SST
            node.start()
            self.wait(lambda: node.synced(self.nodes.index(node) + 1), timeout,
                      f"{node.name} to join")
        return self

    def wait_size(self, size: int, nodes: list[Node], timeout: float = 120.0) -> None:
        self.wait(lambda: all(n.synced(size) for n in nodes), timeout,
                  f"{[n.name for n in nodes]} to be synced in a cluster of {size}")

    def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {n.name}\n{n.log_tail(1500)}" for n in self.nodes)
                raise RuntimeError(f"timed out after {timeout} s waiting for {what}\n{tails}")
            time.sleep(0.2)

    def url(self, database: str, order: list[int] | None = None) -> str:
        """``mysql://root@h:p,h:p,h:p/database``, nodes in ``order`` (indexes, default 0..n)."""
        order = order if order is not None else list(range(len(self.nodes)))
        hosts = ",".join(self.nodes[i].address for i in order)
        return f"mysql://root@{hosts}/{database}"

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.kill_all()
