"""The budget of request-body bytes held at once, shared fairly: a stalled upload gives way to new work.

Bodies are held while they are read, parsed and queued. When a new body does not fit, uploads that
have stalled (under ``MIN_UPLOAD_RATE`` bytes in the last ``STALL_WINDOW_S``) are cut, the largest
first, so a few connections that send all but the last byte cannot lock everyone else out. What is
still refused gets a ``Retry-After`` from the uploads in progress and the queue's backlog.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["MIN_UPLOAD_RATE", "STALL_WINDOW_S", "BodyBudget", "Upload"]

STALL_WINDOW_S = 1.0
"""An upload is judged on the bytes it sent in this many seconds (and never in its first such span)."""
MIN_UPLOAD_RATE = 64 * 1024
"""Bytes per second an upload must keep up to count as moving; a slower one may be cut for new work."""


@dataclass(eq=False)
class Upload:
    """One request's body: the bytes it holds, whether it is still being read, and its recent progress."""

    declared: int
    """``Content-Length``, or 0 for a chunked body."""
    started: float
    deadline: float
    held: int = 0
    reading: bool = True
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    cut: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, size: int, now: float) -> None:
        self.held += size
        self.recent.append((now, size))
        self._forget_before(now - STALL_WINDOW_S)

    def _forget_before(self, since: float) -> None:
        while self.recent and self.recent[0][0] < since:
            self.recent.popleft()

    def stalled(self, now: float) -> bool:
        """Reading for over ``STALL_WINDOW_S`` and under ``MIN_UPLOAD_RATE`` in the last window."""
        if not self.reading or now - self.started < STALL_WINDOW_S:
            return False
        self._forget_before(now - STALL_WINDOW_S)
        return sum(size for _, size in self.recent) < MIN_UPLOAD_RATE * STALL_WINDOW_S

    @property
    def charge(self) -> int:
        """Bytes this body counts against the budget: all it declared from the start, or all it sent."""
        return max(self.declared, self.held)

    def bound(self, now: float) -> float:
        """Seconds at most until this upload ends or can be cut: it keeps the minimum rate or it stalls."""
        if self.stalled(now):
            return 0.0
        left = self.deadline - now
        if self.declared:
            left = min(left, (self.declared - self.held) / MIN_UPLOAD_RATE)
        return max(left, 0.0)


class BodyBudget:
    """At most ``limit`` body bytes held at once over all requests (see the module doc)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.uploads: set[Upload] = set()
        self.cuts = 0

    @property
    def held(self) -> int:
        return sum(upload.charge for upload in self.uploads)

    def _room(self, need: int, now: float) -> bool:
        """Whether ``need`` more bytes fit, after cutting stalled uploads (largest first) if that is enough."""
        over = self.held + need - self.limit
        if over <= 0:
            return True
        stalled = sorted((u for u in self.uploads if u.stalled(now)), key=lambda u: u.charge, reverse=True)
        chosen, freed = [], 0
        for upload in stalled:
            if freed >= over:
                break
            chosen.append(upload)
            freed += upload.charge
        if freed < over:
            return False
        for upload in chosen:
            self.uploads.discard(upload)
            upload.cut.set()
        self.cuts += len(chosen)
        return True

    def open(self, declared: int, now: float, timeout: float) -> Upload | None:
        """A new upload of ``declared`` bytes (0: chunked), or ``None`` when it cannot fit."""
        if not self._room(declared, now):
            return None
        upload = Upload(declared, now, now + timeout)
        self.uploads.add(upload)
        return upload

    def grow(self, upload: Upload, size: int, now: float) -> bool:
        """Count ``size`` bytes that arrived for ``upload``; ``False`` when they do not fit."""
        upload.arrived(size, now)
        return upload.held <= upload.declared or self._room(0, now)  # within what it declared: admitted

    def done_reading(self, upload: Upload) -> None:
        upload.reading = False

    def close(self, upload: Upload) -> None:
        self.uploads.discard(upload)

    def retry_after(self, now: float, backlog: int) -> int:
        """Whole seconds until room is likely: the soonest an upload in progress ends or can be cut, or the
        queue's ``backlog`` estimate when that is sooner (bodies past reading leave with their answers)."""
        bounds = [upload.bound(now) for upload in self.uploads if upload.reading]
        soonest = min([*bounds, float(backlog)])
        return max(1, math.ceil(soonest))
