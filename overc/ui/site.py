"""The one function the composition root calls to get the UI, the read API and /metrics.

Everything here is wiring: one :class:`Queries`, one :class:`Auth` and one :class:`Control`
shared by the three resources, all driven by the injected reactor (clock and thread pool).
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.web.resource import IResource

from overc.api.read import ReadAPI
from overc.config import ServerConfig
from overc.core.counters import Counters
from overc.core.passwords import KEY_ITERATIONS, hash_secret
from overc.metrics import MetricsResource
from overc.storage.actions import Actions
from overc.storage.db import Database
from overc.storage.queries import Queries
from overc.ui.auth import Auth, load_shared_sessions, thread_verifier
from overc.ui.control import Control
from overc.ui.pages import UI


def make_web_resources(
    config: ServerConfig,
    db: Database,
    reactor: Any,
    *,
    forget_keys: Callable[[], None] | None = None,
    counters: Counters | None = None,
) -> dict[str, IResource]:
    """``{"ui": ..., "api": ..., "metrics": ...}`` to mount at ``/ui``, ``/api``, ``/metrics``.

    ``forget_keys`` drops the push API's cache of verified server keys; it is called after a
    key reset or a deletion so this process applies them at once.

    ``api`` serves every ``/api/*`` path except the push endpoints (``/api/ping``,
    ``/api/set/*``), including ``/api/openapi.json``.
    """
    from twisted.internet.threads import deferToThreadPool

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
    control = Control(Actions(db), reactor, hash_key, forget_keys or (lambda: None))
    return {
        "ui": UI(queries, control, auth, reactor).app.resource(),
        "api": ReadAPI(queries, control, auth, reactor).app.resource(),
        "metrics": MetricsResource(queries, auth, reactor, counters),
    }
