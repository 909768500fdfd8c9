"""The user actions with their validation, shared by the HTML forms and the JSON API.

One place decides what a valid silence or comment is, so the browser and scripts cannot drift.
"""
from __future__ import annotations

import secrets
from typing import Awaitable, Callable

from twisted.internet.interfaces import IReactorTime

from overc.storage.actions import Actions
from overc.web import numbers
from overc.web.numbers import BadRequest

MAX_TEXT = 4096
MAX_SILENCE = 366 * 86400.0


def numbers_blank(value: object) -> bool:
    """Absent: not given, ``null``, or an empty form field."""
    return value is None or value == ""


class NotFound(Exception):
    """The server or service does not exist (any more)."""


class Control:
    def __init__(self, actions: Actions, clock: IReactorTime,
                 hash_key: Callable[[str], Awaitable[str]],
                 forget_keys: Callable[[], None] = lambda: None) -> None:
        self.actions = actions
        self.clock = clock
        self.hash_key = hash_key
        self.forget_keys = forget_keys

    @staticmethod
    def _text(value: object, field: str, required: bool = False) -> str:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadRequest(f"{field} must be a string", field)
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise BadRequest(f"{field} is longer than {MAX_TEXT} characters", field)
        if required and not value:
            raise BadRequest(f"{field} is required", field)
        return value

    def silence_end(self, until: object = None, duration: object = None,
                    offset_minutes: object = None) -> float:
        """When a silence ends: an absolute ``until`` or a ``duration`` in seconds from now.

        Both are checked by :mod:`overc.web.numbers` (finite, in range, no booleans), so
        ``duration=nan`` is a 400, never a silence that ends at once.
        """
        now = self.clock.seconds()
        if not numbers_blank(until):
            end = numbers.time_value(until, "until", numbers.tz_offset(offset_minutes))
        elif not numbers_blank(duration):
            end = now + numbers.duration(duration, "duration", high=MAX_SILENCE)
        else:
            raise BadRequest("give until (a time) or duration (seconds)", "until")
        if end <= now:
            raise BadRequest("until must be in the future", "until")
        if end - now > MAX_SILENCE:
            raise BadRequest("a silence lasts at most a year", "until")
        return end

    def ack_expiry(self, expires: object, offset_minutes: object = None) -> float | None:
        """When an acknowledgement ends by itself (SPEC 10.5): Unix seconds or ISO 8601, as
        a silence's ``until``; absent: it ends with the problem (or its next state change)."""
        if numbers_blank(expires) or (isinstance(expires, str) and not expires.strip()):
            return None
        end = numbers.time_value(expires, "expires", numbers.tz_offset(offset_minutes))
        now = self.clock.seconds()
        if end <= now:
            raise BadRequest("expires must be in the future", "expires")
        if end - now > MAX_SILENCE:
            raise BadRequest("an acknowledgement expires within a year", "expires")
        return end

    async def acknowledge(self, service_id: int, comment: object, sticky: object = None,
                          expires: object = None, offset_minutes: object = None) -> None:
        """Validate everything before writing: a bad field is a 400 naming it, not half an ack."""
        text = self._text(comment, "comment")
        is_sticky = numbers.flag(sticky, "sticky")
        end = self.ack_expiry(expires, offset_minutes)
        if not await self.actions.acknowledge(service_id, text, is_sticky, end):
            raise NotFound()

    async def unacknowledge(self, service_id: int) -> None:
        if not await self.actions.unacknowledge(service_id, self.clock.seconds()):
            raise NotFound()

    async def silence(self, kind: str, target_id: int, end: float, reason: object) -> None:
        if not await self.actions.silence(kind, target_id, end, self._text(reason, "reason"),
                                          self.clock.seconds()):
            raise NotFound()

    async def unsilence(self, kind: str, target_id: int) -> None:
        if not await self.actions.unsilence(kind, target_id, self.clock.seconds()):
            raise NotFound()

    async def delete(self, kind: str, target_id: int) -> None:
        found = await self.actions.delete(kind, target_id)
        self.forget_keys()  # a cached verdict must not name a deleted server
        if not found:
            raise NotFound()

    async def reset_key(self, server_id: int, key: object = None) -> str:
        """Give the server a new key (a random one unless given) and return it, once."""
        if key in (None, ""):
            key = secrets.token_urlsafe(18)
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            raise BadRequest("key must be a string of 1 to 128 characters", "key")
        if not await self.actions.set_key_hash(server_id, await self.hash_key(key)):
            raise NotFound()
        self.forget_keys()
        return key
