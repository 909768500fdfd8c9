"""Fixtures shared by the agent tests (the fakes themselves are in ``agent_fakes``)."""
import pytest
from twisted.logger import formatEvent, globalLogPublisher

from agent_fakes import FakeProcessReactor


@pytest.fixture
def reactor():
    """A fake reactor with a clock that also 'spawns' processes: no real process, no real time."""
    return FakeProcessReactor()


@pytest.fixture
def caplog_events():
    """Formatted twisted.logger messages emitted during the test (for assertions on logs)."""
    seen: list[str] = []

    def observer(event):
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)
