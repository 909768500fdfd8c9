"""Fixtures shared by the agent tests."""
import pytest
from twisted.logger import formatEvent, globalLogPublisher


@pytest.fixture
def caplog_events():
    """Formatted twisted.logger messages emitted during the test (for assertions on logs)."""
    seen: list[str] = []

    def observer(event):
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)
