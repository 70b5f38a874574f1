"""Clocks for local runs: one object read by ``ctx.now()``, the fake service and the runner.

A ``VirtualClock`` only moves when the runner jumps it to the next timer, so an hour's wait
takes no time; a ``RealClock`` follows the wall clock and makes the runner sleep until the
timer is due (the CLI's ``--real-time``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

#: Where virtual time starts: a fixed instant, so recorded histories are reproducible.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class VirtualClock:
    """Time that stands still until told to move (never backwards)."""

    def __init__(self, start: datetime = EPOCH) -> None:
        if start.tzinfo is None:
            msg = f"VirtualClock needs a timezone-aware start, got {start!r}"
            raise ValueError(msg)
        self._now = start

    def now(self) -> datetime:
        """The virtual time."""
        return self._now

    def advance_to(self, when: datetime) -> None:
        """Jump to ``when`` (a time in the past leaves the clock where it is)."""
        self._now = max(self._now, when)

    def advance(self, seconds: float) -> None:
        """Jump forward by ``seconds``."""
        if seconds < 0:
            msg = f"cannot move a clock backwards ({seconds} s)"
            raise ValueError(msg)
        self._now += timedelta(seconds=seconds)

    async def wait_until(self, when: datetime) -> None:
        """Reach ``when`` at once: that is what makes local runs skip waits."""
        self.advance_to(when)


class RealClock:
    """The wall clock; waiting for a timer really waits."""

    def now(self) -> datetime:
        """The wall-clock time (read directly: ``utc_now`` may be this clock's override)."""
        return datetime.now(UTC)  # noqa: TID251

    def advance_to(self, when: datetime) -> None:
        """Real time cannot be moved; firing timers early would lie to the handler."""
        msg = "a RealClock cannot be moved; use VirtualClock to skip time"
        raise TypeError(msg)

    def advance(self, seconds: float) -> None:
        """See ``advance_to``."""
        self.advance_to(self.now())

    async def wait_until(self, when: datetime) -> None:
        """Sleep until ``when`` has passed."""
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


Clock = VirtualClock | RealClock
