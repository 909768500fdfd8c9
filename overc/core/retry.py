"""The timing contract between the agent and the server, shared by both sides.

The agent retries a push it could not deliver after 1 s, doubling up to
:data:`AGENT_BACKOFF_MAX`; a server whose database is unreachable answers ``503`` with
``Retry-After: PUSH_RETRY_AFTER``. The watchdog derives from both how long an agent may take to
reach the server again after a gap, so that no service is declared offline before its agent
could have come back (:func:`overc.core.watchdog_rules.fresh_deadline`).
"""
from __future__ import annotations

#: The longest an agent waits between two attempts of its own accord (seconds).
AGENT_BACKOFF_MAX = 60.0
#: The ``Retry-After`` of the push API's ``503`` answers (seconds).
PUSH_RETRY_AFTER = 5
#: The longest an agent that was turned away may take to try again.
AGENT_RETURN_WITHIN = AGENT_BACKOFF_MAX + PUSH_RETRY_AFTER
