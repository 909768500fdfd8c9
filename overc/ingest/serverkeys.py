"""Server identification: trust on first use, salted key hashes, and a verification cache.

A PBKDF2 check costs tens of milliseconds by design, far more than storing a report, so a key
once verified is remembered (as a SHA-256 digest, never the key itself) together with the
stored hash it matched. After ``ttl`` seconds the stored hash is read again (a cheap query):
if it is unchanged the verdict stands without hashing again, so 10,000 servers cost no PBKDF2
at all in the steady state; if it changed (a key reset by another process) the key is checked
in full. Failed keys are remembered too, so a client hammering a wrong key costs one hash per
``ttl``. A reset in this process calls :meth:`ServerKeys.forget` and takes effect at once.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from overc.core.passwords import KEY_ITERATIONS, hash_secret, verify_secret
from overc.core.payload import ServerIdentity
from overc.storage.ingest_store import Store

log = Logger()
T = TypeVar("T")


#: Checked instead of a stored hash when the name is unknown and registration is closed, so a
#: refusal costs the same for an unknown name as for a wrong key (timing reveals no names).
DUMMY_KEY_HASH = f"pbkdf2_sha256${KEY_ITERATIONS}$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


class InvalidKey(Exception):
    """403: a known server with another key, or an unknown one while registration is closed."""


@dataclass
class _Verdict:
    digest: bytes
    server_id: int | None  # None: the key was wrong
    key_hash: str | None  # the stored hash this verdict was made against
    expires: float


class ServerKeys:
    def __init__(self, store: Store, reactor: IReactorTime, *, registration_open: bool = True,
                 ttl: float = 60.0,
                 verify: Callable[[str, str], bool] | None = None) -> None:
        self.store = store
        self._verify = verify
        self.reactor = reactor
        self.registration_open = registration_open
        self.ttl = ttl
        self._verdicts: dict[str, _Verdict] = {}

    def forget(self, name: str | None = None) -> None:
        """Drop cached verdicts (after a key reset or a deletion)."""
        if name is None:
            self._verdicts.clear()
        else:
            self._verdicts.pop(name, None)

    def known(self, identity: ServerIdentity) -> int | None:
        """The server's id from a verdict still fresh, with no I/O (the push fast path); None
        when :meth:`authenticate` has work to do. :class:`InvalidKey` for a fresh refusal."""
        verdict = self._verdicts.get(identity.name)
        if verdict is None or verdict.expires <= self.reactor.seconds():
            return None
        if verdict.digest != hashlib.sha256(identity.key.encode("utf-8")).digest():
            return None
        if verdict.server_id is None:
            raise InvalidKey()
        return verdict.server_id

    async def authenticate(self, identity: ServerIdentity, ip: str) -> int:
        """The server's id, registering it on first use; :class:`InvalidKey` otherwise."""
        known = self.known(identity)
        if known is not None:
            return known
        now = self.reactor.seconds()
        digest = hashlib.sha256(identity.key.encode("utf-8")).digest()
        verdict = self._verdicts.get(identity.name)
        if verdict is not None and verdict.digest == digest:
            if verdict.expires <= now:
                record = await self.store.get_server(identity.name)
                unchanged = (record is not None and record.key_hash == verdict.key_hash
                             and record.id == verdict.server_id)
                verdict = verdict if unchanged else None
                if verdict is not None:
                    verdict.expires = now + self.ttl
            if verdict is not None:
                if verdict.server_id is None:
                    raise InvalidKey()
                return verdict.server_id
        server_id, key_hash = await self._check(identity, ip, now)
        if len(self._verdicts) > 1_000_000:
            self._verdicts.clear()
        self._verdicts[identity.name] = _Verdict(digest, server_id, key_hash, now + self.ttl)
        if server_id is None:
            log.info("Refused server {name!r} from {ip}: invalid key", name=identity.name, ip=ip)
            raise InvalidKey()
        return server_id

    async def _check(self, identity: ServerIdentity, ip: str, now: float
                     ) -> tuple[int | None, str | None]:
        """Full check: ``(server id, or None if refused; the stored hash it was checked
        against)``."""
        record = await self.store.get_server(identity.name)
        if record is None:
            if not self.registration_open:
                await self._in_thread(self._verifier(), identity.key, DUMMY_KEY_HASH)
                return None, None
            hashed = await self._in_thread(hash_secret, identity.key, KEY_ITERATIONS)
            record, created = await self.store.register_server(identity.name, hashed, ip, now)
            if created:
                log.info("Registered new server {name!r} from {ip}", name=identity.name, ip=ip)
                return record.id, record.key_hash
        ok = await self._in_thread(self._verifier(), identity.key, record.key_hash)
        return (record.id if ok else None), record.key_hash

    def _verifier(self) -> Callable[[str, str], bool]:
        """The injected verifier (tests count hash checks with it), else the real one."""
        return self._verify or verify_secret

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Hashing is slow on purpose: keep it off the reactor thread when there is a pool."""
        reactor = self.reactor
        if IReactorThreads.providedBy(reactor):
            return await deferToThreadPool(reactor, reactor.getThreadPool(), function, *args)
        return function(*args)  # task.Clock in unit tests
