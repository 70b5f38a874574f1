"""Suspension: ending an invocation once every live branch waits on the service.

An operation that cannot finish in this invocation (a durable wait, a retry scheduled for
later, a callback nobody has answered yet) *parks*. A park may name the state it waits
for: when a checkpoint response shows that state (a sibling's checkpoint came back with
the callback answered or the timer fired), the park ends and the branch carries on in this
invocation instead of the next. Parking does not end the invocation at once: sibling branches of a
``gather`` or ``TaskGroup`` keep running, so their steps finish and are checkpointed in this
invocation instead of being redone in the next. When no step body is running, no
checkpoint is awaited and the event loop has run out of SDK activity for a few turns,
every parked operation raises ``Suspended`` into user code and the invocation ends
``PENDING``. Releasing parks by raising keeps suspension out of ``except Exception``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

#: Loop turns without SDK activity before the invocation counts as quiescent. A branch
#: resuming from a finished step reaches its next operation within a few turns (task
#: wake-up, ``gather`` callback, parent wake-up); nested groups add a few more.
SETTLE_TURNS = 8


class Suspended(BaseException):
    """The invocation ends ``PENDING``; the service re-invokes it when work is due."""


class SuspensionMonitor:
    """Counts running work and parked operations of one invocation."""

    __slots__ = ("_activity", "_busy", "_changed", "_parked", "_released")

    def __init__(self) -> None:
        self._parked: dict[asyncio.Future[None], Callable[[], bool] | None] = {}
        self._busy = 0
        self._activity = 0
        self._changed = asyncio.Event()
        self._released = False

    @property
    def released(self) -> bool:
        """Whether the invocation has started to suspend."""
        return self._released

    @property
    def parked(self) -> int:
        """How many operations wait for the service right now."""
        return len(self._parked)

    def touch(self) -> None:
        """Record SDK activity (an operation was issued or progressed)."""
        self._activity += 1
        self._changed.set()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark work in progress (a step body, an awaited checkpoint)."""
        self._busy += 1
        self.touch()
        try:
            yield
        finally:
            self._busy -= 1
            self.touch()

    async def park(self) -> NoReturn:
        """Wait until the invocation suspends, then raise ``Suspended``."""
        await self._wait(None)
        raise Suspended  # pragma: no cover - only ``park_until`` parks can end normally

    async def park_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds after a state refresh; or raise ``Suspended``."""
        if not ready():
            await self._wait(ready)

    async def _wait(self, ready: Callable[[], bool] | None) -> None:
        if self._released:
            raise Suspended
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked[future] = ready
        self.touch()
        try:
            await future
        finally:
            del self._parked[future]

    def state_refreshed(self) -> None:
        """Wake the parks whose awaited state has arrived (after a checkpoint response)."""
        for future, ready in self._parked.items():
            if ready is not None and not future.done() and ready():
                future.set_result(None)

    async def wait_quiescent(self) -> None:
        """Return once something is parked and nothing else has moved for a while."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if not self._parked or self._busy:
                continue
            for _ in range(SETTLE_TURNS):
                seen = self._activity
                await asyncio.sleep(0)
                if self._busy or self._activity != seen or not self._parked:
                    break
            else:
                return

    def release(self) -> None:
        """Make every parked operation, now and later, raise ``Suspended``."""
        self._released = True
        for future in self._parked:
            if not future.done():
                future.set_exception(Suspended())
