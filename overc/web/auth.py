"""Who is asking: signed session cookies, HTTP Basic for scripts, CSRF tokens, slow failures.

Sessions are signed cookies (HMAC-SHA256) so several OverC processes behind a load balancer
accept each other's sessions: the signing secret is created once and stored in the database
(``ui_settings``). Each cookie names a random session id; logout stores that id as revoked
(``ui_revoked_sessions``), so a copied cookie is refused everywhere after logout. A process
remembers the revoked ids it has seen, and trusts "not revoked" for at most
:data:`REVOCATION_RECHECK` seconds per session: another process honours a logout within that
time, at the cost of one indexed lookup per session and interval. CSRF tokens are derived from
a per-browser nonce cookie and the user, so they need no storage, and they also protect the open
(no users) mode; every page carries its token masked with a fresh random pad, so a compressed
page cannot leak it through its size (BREACH).

Password hashes are deliberately slow (PBKDF2), so checks run in a pool thread; a correct HTTP
Basic password is remembered (as an HMAC, never the password) to keep scripts cheap.

Routes of the UI and the read API say what they need with one decorator,
:func:`overc.web.authenticated.authenticated`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import weakref
from dataclasses import dataclass
from enum import StrEnum
from typing import Awaitable, Callable, Iterable, Mapping

from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.defer import DeferredLock, DeferredSemaphore
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.server import Request

from overc.core.passwords import PASSWORD_ITERATIONS, is_hash, verify_secret
from overc.storage.db import Database
from overc.storage.sessions import SessionRevocations
from overc.storage.settings import get_or_create_setting

log = Logger()

SESSION_COOKIE = b"overc_session"
NONCE_COOKIE = b"overc_nonce"
SESSION_SECONDS = 12 * 3600
#: Delay after the n-th consecutive failure from one address or for one user: 1, 2, 4 ... 16 s.
MAX_FAILURE_DELAY = 16.0
#: Password hashes computed at once in one process (each takes a pool thread ~0.2 s).
MAX_VERIFYING = 4


def dummy_hash_like(hashes: Iterable[str], default: int = PASSWORD_ITERATIONS) -> str:
    """A hash that verifies nothing, as costly as the costliest of ``hashes``: checked for
    unknown names so that the time of an answer does not reveal which names exist."""
    iterations = max((int(h.split("$")[1]) for h in hashes if is_hash(h)), default=default)
    return f"pbkdf2_sha256${iterations}$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43
#: Seconds a process trusts that a session it checked is not revoked: a logout in another
#: process is honoured here within this time (in the logging-out process at once).
REVOCATION_RECHECK = 3.0
#: Bound on each in-process cache of session ids (cleared when exceeded, like the others).
_CACHE_LIMIT = 10000


@dataclass(frozen=True)
class SharedSessions:
    """What every OverC process on one database shares about UI sessions."""

    secret: bytes
    revocations: SessionRevocations


async def load_shared_sessions(db: Database) -> SharedSessions:
    """The shared signing secret (created by whichever process asks first) and the shared
    record of revoked sessions, both kept in ``db``."""
    value = await get_or_create_setting(db, "session_secret", secrets.token_hex(32))
    return SharedSessions(bytes.fromhex(value), SessionRevocations(db))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A session cookie with a valid signature, for a known user, not expired."""

    user: str
    expires: int
    session_id: str


class Via(StrEnum):
    """How a caller proved who they are."""

    SESSION = "session"  # the signed session cookie of a browser
    BASIC = "basic"  # HTTP Basic credentials (scripts, /metrics)
    OPEN = "open"  # nobody needs to: [ui] requires no login


@dataclass(frozen=True)
class Identity:
    """The caller of a request: ``user`` is None in open mode; ``via`` says how we know."""

    user: str | None
    via: Via


class Auth:
    """Every authentication decision of the UI, the read API and /metrics."""

    def __init__(
        self,
        users: Mapping[str, str],
        required: bool,
        secret: Callable[[], Awaitable[SharedSessions]],
        clock: IReactorTime,
        verify: Callable[[str, str], Awaitable[bool]],
        *,
        wall: Callable[[], float] = time.time,
        secure_cookies: bool = False,
        max_verifying: int = MAX_VERIFYING,
    ) -> None:
        self.users = dict(users)
        self.required = required
        self._shared_source = secret
        self._shared: SharedSessions | None = None
        self.clock = clock
        self._verify = verify
        self.wall = wall
        self.secure_cookies = secure_cookies
        self._failures: dict[str, int] = {}
        #: One attempt at a time per address and per name (see :meth:`check_password`).
        self._locks: dict[str, DeferredLock] = {}
        self._verifying = DeferredSemaphore(max_verifying)
        self._dummy_hash = dummy_hash_like(self.users.values())
        self._basic_ok: dict[str, float] = {}
        #: session id -> its cookie's expiry, for sessions known to be revoked (final).
        self._revoked: dict[str, float] = {}
        #: session id -> until when "not revoked" is trusted without asking the database.
        self._live: dict[str, float] = {}
        #: The nonce given to a request that came without one (its cookie is set once).
        self._fresh_nonces: weakref.WeakKeyDictionary[IRequest, str] = \
            weakref.WeakKeyDictionary()

    async def shared(self) -> SharedSessions:
        if self._shared is None:
            shared = await self._shared_source()
            if not isinstance(shared, SharedSessions):
                raise TypeError(f"Auth needs SharedSessions (see load_shared_sessions), got {shared!r}")
            self._shared = shared
        return self._shared

    async def secret(self) -> bytes:
        return (await self.shared()).secret

    def _sign(self, secret: bytes, text: str) -> str:
        return _b64(hmac.new(secret, text.encode("utf-8"), hashlib.sha256).digest())

    # -- identity -------------------------------------------------------------------------

    async def identify(self, request: IRequest, *, basic: bool) -> Identity | None:
        """Who sent ``request``; None when login is required and nobody valid is logged in."""
        if not self.required:
            return Identity(None, Via.OPEN)
        user = await self.session_user(request)
        if user is not None:
            return Identity(user, Via.SESSION)
        if basic:
            user = await self.basic_user(request)
            if user is not None:
                return Identity(user, Via.BASIC)
        return None

    async def session_user(self, request: IRequest) -> str | None:
        session = await self.session(request)
        if session is None or await self.is_revoked(session):
            return None
        return session.user

    async def session(self, request: IRequest) -> Session | None:
        """The request's session cookie if it is signed, unexpired and names a known user;
        revocation is not checked here (see :meth:`is_revoked`)."""
        raw = request.getCookie(SESSION_COOKIE)
        if not raw:
            return None
        try:
            # Cookies from before session ids (three parts) are refused: they cannot be revoked.
            name_b64, expires, session_id, signature = raw.decode("ascii").split(".")
            name = _unb64(name_b64).decode("utf-8")
            expiry = int(expires)
        except (ValueError, UnicodeDecodeError):
            return None
        expected = self._sign(await self.secret(), f"session.{name_b64}.{expires}.{session_id}")
        if not hmac.compare_digest(expected, signature):
            return None
        if expiry < self.wall() or name not in self.users:
            return None
        return Session(name, expiry, session_id)

    async def is_revoked(self, session: Session) -> bool:
        """Was ``session`` ended by a logout, in this process or any other on the database?"""
        sid = session.session_id
        if sid in self._revoked:
            return True
        now = self.wall()
        if self._live.get(sid, 0) > now:
            return False
        revoked = await (await self.shared()).revocations.is_revoked(sid)
        self._remember(sid, session.expires, revoked, now)
        return revoked

    def _remember(self, sid: str, expires: float, revoked: bool, now: float) -> None:
        cache = self._revoked if revoked else self._live
        if len(cache) >= _CACHE_LIMIT:
            for key in [k for k, until in cache.items() if until <= now]:
                del cache[key]
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
        if revoked:
            self._live.pop(sid, None)
            self._revoked[sid] = expires
        else:
            self._live[sid] = now + REVOCATION_RECHECK

    async def basic_user(self, request: IRequest) -> str | None:
        header = request.getHeader(b"authorization")
        if not header or not header[:6].lower() == b"basic ":
            return None
        try:
            name, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        # An unknown name takes the same path as a known one (a dummy hash, the same
        # throttle): the time of the answer does not tell which names exist.
        hashed = self.users.get(name, self._dummy_hash)
        # Remember a correct password as an HMAC for five minutes: PBKDF2 per call is too slow.
        memo = self._sign(await self.secret(), f"basic.{name}.{hashed}.{password}")
        now = self.wall()
        if self._basic_ok.get(memo, 0) > now:
            return name
        if await self.check_password(name, password, request_address(request)):
            if len(self._basic_ok) > 1000:
                self._basic_ok.clear()
            self._basic_ok[memo] = now + 300
            return name
        return None

    # -- login ----------------------------------------------------------------------------

    async def check_password(self, name: str, password: str, address: str) -> bool:
        """Verify a password; every failure is answered only after a growing delay.

        Every attempt costs the same whatever the name: an unknown name is verified against a
        dummy hash of the same strength. Attempts from one address, and attempts for one
        name, are taken one at a time, each failure holding its turn for the delay (1, 2, 4
        ... 16 s), so parallel guesses queue instead of multiplying the rate; and at most
        ``max_verifying`` hashes are computed at once in the whole process.
        """
        keys = sorted({f"ip:{address}", f"user:{name}"})
        locks = [self._lock(key) for key in keys]
        for lock in locks:  # always in the same order: no deadlock between two attempts
            await lock.acquire()
        try:
            return await self._attempt(name, password, address, keys)
        finally:
            for key, lock in zip(reversed(keys), reversed(locks)):
                lock.release()
                if not lock.locked and not lock.waiting:
                    self._locks.pop(key, None)

    def _lock(self, key: str) -> DeferredLock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = DeferredLock()
        return lock

    async def _attempt(self, name: str, password: str, address: str, keys: list[str]) -> bool:
        hashed = self.users.get(name)
        await self._verifying.acquire()
        try:
            ok = await self._verify(password, hashed or self._dummy_hash) and hashed is not None
        finally:
            self._verifying.release()
        if ok:
            for key in keys:
                self._failures.pop(key, None)
            return True
        count = max(self._failures.get(k, 0) for k in keys) + 1
        if len(self._failures) > 10000:
            self._failures.clear()
        for key in keys:
            self._failures[key] = count
        delay = min(MAX_FAILURE_DELAY, 2.0 ** (count - 1))
        log.info("Failed login for {name!r} from {address}; answering in {delay} s",
                 name=name, address=address, delay=delay)
        await deferLater(self.clock, delay, lambda: None)
        return False

    async def session_cookie(self, name: str) -> bytes:
        name_b64 = _b64(name.encode("utf-8"))
        expires = str(int(self.wall() + SESSION_SECONDS))
        session_id = _b64(os.urandom(16))
        signature = self._sign(await self.secret(), f"session.{name_b64}.{expires}.{session_id}")
        return f"{name_b64}.{expires}.{session_id}.{signature}".encode("ascii")

    def set_cookie(self, request: Request, name: bytes, value: bytes, max_age: int | None) -> None:
        request.addCookie(
            name, value, path=b"/", httpOnly=True, sameSite="lax",
            secure=self.secure_cookies,
            max_age=None if max_age is None else str(max_age).encode("ascii"),
        )

    async def start_session(self, request: Request, name: str) -> None:
        self.set_cookie(request, SESSION_COOKIE, await self.session_cookie(name), SESSION_SECONDS)
        # A new nonce at login: tokens issued before login do not carry over.
        self.set_cookie(request, NONCE_COOKIE, _b64(os.urandom(18)).encode("ascii"), None)

    async def end_session(self, request: Request) -> None:
        """Log out: revoke the request's session for every process, then clear the cookies."""
        session = await self.session(request)
        if session is not None:
            now = self.wall()
            await (await self.shared()).revocations.revoke(session.session_id,
                                                           session.expires, now)
            self._remember(session.session_id, session.expires, True, now)
        self.set_cookie(request, SESSION_COOKIE, b"", 0)
        self.set_cookie(request, NONCE_COOKIE, b"", 0)

    # -- CSRF -----------------------------------------------------------------------------

    def nonce(self, request: Request) -> str:
        """The browser's nonce cookie, set now when it has none yet."""
        raw = request.getCookie(NONCE_COOKIE)
        if raw:
            try:
                return raw.decode("ascii")
            except UnicodeDecodeError:
                pass
        fresh = self._fresh_nonces.get(request)
        if fresh is None:
            fresh = _b64(os.urandom(18))
            self._fresh_nonces[request] = fresh
            self.set_cookie(request, NONCE_COOKIE, fresh.encode("ascii"), None)
        return fresh

    async def _csrf_digest(self, nonce: str, user: str | None) -> bytes:
        return hmac.new(await self.secret(), f"csrf.{nonce}.{user or ''}".encode("utf-8"),
                        hashlib.sha256).digest()

    async def csrf_token(self, request: Request, user: str | None) -> str:
        """The token for this response's forms, masked afresh (BREACH): the secret token
        XORed with a new random pad, sent with the pad. A compressed page that also reflects
        attacker-chosen text then never repeats the token's bytes, so the compressed size
        cannot leak it; :meth:`check_csrf` takes the pad off again."""
        return mask_token(await self._csrf_digest(self.nonce(request), user))

    async def check_csrf(self, request: IRequest, user: str | None, token: str | None) -> bool:
        raw = request.getCookie(NONCE_COOKIE)
        if not token or not raw:
            return False
        try:
            nonce = raw.decode("ascii")
        except UnicodeDecodeError:
            return False
        unmasked = unmask_token(token)
        if unmasked is None:
            return False
        return hmac.compare_digest(await self._csrf_digest(nonce, user), unmasked)


def mask_token(secret: bytes) -> str:
    """``pad + (pad XOR secret)`` in URL-safe base64, with a new random pad each call."""
    pad = os.urandom(len(secret))
    return _b64(pad + bytes(a ^ b for a, b in zip(pad, secret)))


def unmask_token(token: str) -> bytes | None:
    """The secret of a :func:`mask_token` token; None when it is not one (wrong length,
    not base64)."""
    try:
        data = _unb64(token)
    except ValueError:  # binascii.Error too; non-ASCII text
        return None
    half = hashlib.sha256().digest_size
    if len(data) != 2 * half:
        return None
    return bytes(a ^ b for a, b in zip(data[:half], data[half:]))


def request_address(request: IRequest) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", None) or str(peer)


def thread_verifier(reactor: IReactorThreads) -> Callable[[str, str], Awaitable[bool]]:
    """Run :func:`verify_secret` in the reactor's thread pool (PBKDF2 takes ~0.2 s)."""
    from twisted.internet.threads import deferToThreadPool

    async def verify(password: str, hashed: str) -> bool:
        return await deferToThreadPool(reactor, reactor.getThreadPool(), verify_secret,
                                       password, hashed)

    return verify
