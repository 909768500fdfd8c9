"""A refused push costs one key-hash check whether the name is unknown (registration closed)
or known with a wrong key: the time of a 403 does not tell which names exist."""
from __future__ import annotations

import pytest
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from overc.core.passwords import KEY_ITERATIONS, hash_secret, verify_secret
from overc.core.payload import ServerIdentity
from overc.ingest.serverkeys import DUMMY_KEY_HASH, InvalidKey, ServerKeys
from overc.storage.ingest_store import ServerRecord


class Store:
    def __init__(self) -> None:
        self.servers = {"web1": ServerRecord(1, "web1", hash_secret("right", KEY_ITERATIONS))}
        self.lookups = 0

    async def get_server(self, name):
        self.lookups += 1
        return self.servers.get(name)

    async def register_server(self, name, key_hash, ip, now):  # pragma: no cover
        raise AssertionError("registration is closed")


def refuse(keys: ServerKeys, name: str, key: str) -> None:
    result: list = []
    ensureDeferred(keys.authenticate(ServerIdentity(name, key), "10.0.0.1")).addBoth(
        result.append)
    assert len(result) == 1
    with pytest.raises(InvalidKey):
        result[0].raiseException()


def test_an_unknown_name_costs_the_same_hash_check_as_a_wrong_key():
    checks: list[tuple[str, str]] = []

    def counting(secret: str, hashed: str) -> bool:
        checks.append((secret, hashed))
        return verify_secret(secret, hashed)

    store = Store()
    keys = ServerKeys(store, Clock(), registration_open=False, verify=counting)  # type: ignore[arg-type]
    refuse(keys, "web1", "wrong")
    refuse(keys, "nobody", "wrong")
    assert len(checks) == 2 and store.lookups == 2
    (_, known), (_, dummy) = checks
    assert dummy == DUMMY_KEY_HASH
    assert known.split("$")[:2] == dummy.split("$")[:2]  # same algorithm and iterations
    assert verify_secret("", DUMMY_KEY_HASH) is False
