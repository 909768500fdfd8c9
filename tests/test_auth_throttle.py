"""Password checks cost the same for every name, and guesses are throttled (task.Clock).

The verifier is injected, so the tests count hash verifications instead of timing them.
"""
from __future__ import annotations

import base64

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from overc.core.passwords import hash_secret
from overc.web.auth import MAX_FAILURE_DELAY, Auth, SharedSessions, dummy_hash_like

KNOWN = hash_secret("right", 1000)


class Verifier:
    """Counts calls; answers at once (``hold=False``) or when the test fires it."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.hold = hold
        self.pending: list[tuple[Deferred, bool]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self, password: str, hashed: str) -> bool:
        self.calls.append((password, hashed))
        answer = password == "right" and hashed == KNOWN
        if not self.hold:
            return answer
        waiting: Deferred[bool] = Deferred()
        self.pending.append((waiting, answer))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await waiting
        finally:
            self.in_flight -= 1

    def release_all(self) -> None:
        pending, self.pending = self.pending, []
        for waiting, answer in pending:
            waiting.callback(answer)


class BasicRequest:
    def __init__(self, name: str, password: str, address: str = "10.0.0.1") -> None:
        token = base64.b64encode(f"{name}:{password}".encode()).decode()
        self.headers = {b"authorization": f"Basic {token}".encode()}
        self.address = address

    def getHeader(self, name: bytes) -> bytes | None:
        return self.headers.get(name.lower())

    def getClientAddress(self) -> IPv4Address:
        return IPv4Address("TCP", self.address, 4321)


def make_auth(verifier: Verifier, clock: Clock, max_verifying: int = 4) -> Auth:
    async def shared() -> SharedSessions:
        return SharedSessions(b"s" * 32, None)  # type: ignore[arg-type]

    return Auth({"admin": KNOWN}, True, shared, clock, verifier, wall=clock.seconds,
                max_verifying=max_verifying)


def outcome(deferred: Deferred) -> list:
    results: list = []
    deferred.addBoth(results.append)
    return results


def test_an_unknown_name_takes_the_same_path_as_a_known_one():
    for name in ("admin", "nobody"):
        clock, verifier = Clock(), Verifier()
        auth = make_auth(verifier, clock)
        result = outcome(Deferred.fromCoroutine(auth.basic_user(BasicRequest(name, "wrong"))))
        assert len(verifier.calls) == 1, name  # one hash verification, known or not
        hashed = verifier.calls[0][1]
        # Same strength: the dummy has the iterations of the configured hashes.
        assert hashed.split("$")[1] == KNOWN.split("$")[1]
        clock.advance(0.999)
        assert result == [], name  # the same delay for both
        clock.advance(0.001)
        assert result == [None], name
    assert dummy_hash_like([KNOWN]) != KNOWN


def test_the_right_password_passes_and_is_remembered():
    clock, verifier = Clock(), Verifier()
    auth = make_auth(verifier, clock)
    for _ in range(3):
        result = outcome(Deferred.fromCoroutine(auth.basic_user(BasicRequest("admin", "right"))))
        assert result == ["admin"]
    assert len(verifier.calls) == 1


def run_guesses(auth: Auth, clock: Clock, requests: list[BasicRequest], seconds: int) -> list:
    results = [outcome(Deferred.fromCoroutine(auth.basic_user(r))) for r in requests]
    for _ in range(seconds):
        clock.advance(1)
    return results


def test_parallel_guesses_from_one_address_are_throttled():
    clock, verifier = Clock(), Verifier()
    auth = make_auth(verifier, clock)
    # 100 guesses at once, for 100 names, from one address: they queue behind each other.
    guesses = [BasicRequest(f"user{i}", f"guess{i}") for i in range(100)]
    results = run_guesses(auth, clock, guesses, 60)
    # Turns start at 0, 1, 3, 7, 15, 31, 47 s (each failure holds its turn 1, 2, 4 ... 16 s).
    assert len(verifier.calls) == 7
    assert sum(1 for r in results if r) == 6
    # The rate stays at one guess per 16 s for as long as the guessing goes on.
    for _ in range(int(MAX_FAILURE_DELAY) * 10):
        clock.advance(1)
    assert len(verifier.calls) == 17


def test_parallel_guesses_for_one_name_from_many_addresses_are_throttled():
    clock, verifier = Clock(), Verifier()
    auth = make_auth(verifier, clock)
    guesses = [BasicRequest("admin", f"guess{i}", f"10.1.{i // 250}.{i % 250}")
               for i in range(100)]
    run_guesses(auth, clock, guesses, 60)
    assert len(verifier.calls) == 7
    # Meanwhile another name from another address is not held up by them.
    result = outcome(Deferred.fromCoroutine(
        auth.basic_user(BasicRequest("other", "x", "192.168.0.9"))))
    assert len(verifier.calls) == 8 and result == []
    clock.advance(1)
    assert result == [None]


def test_hash_verifications_in_flight_are_bounded():
    clock, verifier = Clock(), Verifier(hold=True)
    auth = make_auth(verifier, clock, max_verifying=3)
    guesses = [BasicRequest(f"user{i}", "x", f"10.2.0.{i}") for i in range(20)]
    results = [outcome(Deferred.fromCoroutine(auth.basic_user(r))) for r in guesses]
    assert verifier.in_flight == 3
    while verifier.pending:
        verifier.release_all()
    assert verifier.most_in_flight == 3 and len(verifier.calls) == 20
    clock.advance(1)
    assert all(r == [None] for r in results)
