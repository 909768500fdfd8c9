"""Length-prefixed frames over a byte stream: how the server talks to its /metrics process.

Twisted's ``Int32StringReceiver`` joins its whole buffer with every chunk that arrives, which
costs a quadratic copy for one large message (a 7 MB exposition comes in ~100 pipe reads, so
~350 MB copied); :class:`FrameReader` keeps the chunks of the frame it is reading and joins
them once. Pure, so it tests without a transport.
"""
from __future__ import annotations

import struct

_HEADER = struct.Struct("!I")


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front (4 bytes, network order)."""
    return _HEADER.pack(len(payload)) + payload


class FrameReader:
    """Whole frames out of a stream fed in any pieces."""

    def __init__(self, limit: int = 1 << 30) -> None:
        self.limit = limit
        self._chunks: list[bytes] = []
        self._have = 0  # bytes in _chunks
        self._need: int | None = None  # the current frame's length, once its header is in

    def feed(self, data: bytes) -> list[bytes]:
        """Take ``data``; return the frames it completed, in order."""
        self._chunks.append(data)
        self._have += len(data)
        frames: list[bytes] = []
        while True:
            if self._need is None:
                if self._have < _HEADER.size:
                    return frames
                buffered = b"".join(self._chunks)
                (self._need,) = _HEADER.unpack_from(buffered)
                if self._need > self.limit:
                    raise ValueError(f"a frame of {self._need} bytes is over the limit"
                                     f" of {self.limit}")
                self._chunks = [buffered[_HEADER.size:]]
                self._have -= _HEADER.size
            if self._have < self._need:
                return frames
            buffered = b"".join(self._chunks)
            frames.append(buffered[:self._need])
            rest = buffered[self._need:]
            self._chunks, self._have, self._need = [rest], len(rest), None
