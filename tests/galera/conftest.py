"""The ``galera`` fixture: one real three-node cluster per test session (per xdist worker: every
cluster test is in test_galera.py, which ``--dist loadfile`` gives to one worker).

Without the Debian packages (mariadb-server, galera-4, rsync) the tests skip, except with
``CI=true``, where a missing cluster is a failure (.ci/run installs the packages).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest

from galera_cluster import GaleraCluster, missing_parts

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def galera():
    missing = missing_parts()
    if missing:
        message = f"a Galera cluster needs {', '.join(missing)} (apt-get install galera-4 rsync)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's 0700 tmp tree: the nodes run as the mysql user (see galera_cluster).
    base = tempfile.mkdtemp(prefix="overc-galera-")
    os.chmod(base, 0o755)
    cluster = GaleraCluster(base)
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def galera_database(galera):
    """A fresh database name on the cluster (created by OverC's migrate), dropped after."""
    name = f"overc_g_{uuid.uuid4().hex[:10]}"
    yield name
    for node in galera.nodes:
        try:
            node.query(f"DROP DATABASE IF EXISTS `{name}`")
            return
        except Exception:
            continue
