"""The web side of the composition root: the UI, the read API and ``/metrics`` over one database.

Rank 6 with :mod:`overc.tap`: the only place that puts ``overc.ui`` and ``overc.api`` side by
side. One :class:`Queries`, one :class:`Auth` and one :class:`Control` are shared by the three
resources, all driven by the injected reactor (clock and thread pool).
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorProcess
from twisted.internet.threads import deferToThreadPool
from twisted.web.resource import IResource

from overc.api.read import ReadAPI
from overc.config import ServerConfig
from overc.core.counters import Counters
from overc.core.passwords import KEY_ITERATIONS, hash_secret
from overc.storage.actions import Actions
from overc.storage.db import Database
from overc.storage.maintenance_store import MaintenanceStore
from overc.storage.queries import Queries
from overc.ui.pages import UI
from overc.web.auth import Auth, load_shared_sessions, thread_verifier
from overc.web.compress import thread_compressor
from overc.web.control import Control
from overc.web.maintenance import MaintenanceControl
from overc.web.metrics import MetricsResource
from overc.web.metrics_worker import MetricsWorker


def metrics_worker(reactor: Any, db: Database) -> MetricsWorker | None:
    """/metrics builds in a process of its own wherever this reactor can start one."""
    return MetricsWorker(reactor, db.target) if IReactorProcess.providedBy(reactor) else None


def make_web_resources(
    config: ServerConfig,
    db: Database,
    reactor: Any,
    *,
    counters: Counters,
    forget_keys: Callable[[], None],
) -> dict[str, IResource]:
    """``{"ui": ..., "api": ..., "metrics": ...}`` to mount at ``/ui``, ``/api``, ``/metrics``.

    ``forget_keys`` drops the push API's cache of verified server keys; it is called after a
    key reset or a deletion so this process applies them at once. ``api`` serves every
    ``/api/*`` path except the push endpoints, including ``/api/openapi.json``.
    """

    async def hash_key(key: str) -> str:
        return await deferToThreadPool(reactor, reactor.getThreadPool(), hash_secret, key,
                                       KEY_ITERATIONS)

    queries = Queries(db)
    auth = Auth(
        users=config.users,
        required=config.auth_required,
        secret=lambda: load_shared_sessions(db),
        clock=reactor,
        verify=thread_verifier(reactor),
        wall=reactor.seconds,
        secure_cookies=config.public_url.lower().startswith("https:"),
    )
    control = Control(Actions(db), reactor, hash_key, forget_keys)
    windows = MaintenanceControl(MaintenanceStore(db), reactor)
    return {
        "ui": UI(queries, control, auth, reactor, windows,
                 compress=thread_compressor(reactor)).app.resource(),
        "api": ReadAPI(queries, control, auth, reactor, windows).app.resource(),
        "metrics": MetricsResource(queries, auth, reactor, counters, threads=reactor,
                                   worker=metrics_worker(reactor, db)),
    }
