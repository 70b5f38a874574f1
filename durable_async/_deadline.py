"""Lambda's deadline on the event loop's clock, and when to start winding down before it.

Winding down takes time the backend decides: a checkpoint call already in flight must
finish and the queued updates need one more call. A fixed margin is too short when the
backend is slow (a 3 s function timeout keeps 0.3 s; two 0.5 s checkpoints do not fit), so
the margin grows with the slowest checkpoint call seen in this invocation. Past the hard
stop, just before the deadline itself, the SDK stops waiting for the backend and returns,
rather than have Lambda kill the invocation mid-flush.
"""

from __future__ import annotations

import asyncio

#: The margin before the deadline with no latency observed yet: a tenth of the time the
#: invocation had, between these bounds (short timeouts keep most of their time; long ones
#: keep three seconds to flush).
STATIC_MARGIN_SECONDS = (0.25, 3.0)
#: Checkpoint calls a wind-down may wait for: the one in flight and the final flush.
FLUSH_CALLS = 2
#: What is kept past the hard stop for the output to reach Lambda.
HARD_STOP_SECONDS = 0.05


def static_margin(seconds_left: float) -> float:
    """The margin kept before the deadline while no checkpoint latency is known."""
    low, high = STATIC_MARGIN_SECONDS
    return min(high, max(low, seconds_left / 10))


class Deadline:
    """Lambda's deadline for one invocation, as loop time, with an adaptive margin."""

    def __init__(self, seconds_left: float, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.at = loop.time() + seconds_left
        self._static = static_margin(seconds_left)
        #: The slowest checkpoint or state call of this invocation, in seconds.
        self.slowest_call = 0.0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def margin(self) -> float:
        """Seconds before the deadline at which the invocation starts winding down."""
        return max(self._static, FLUSH_CALLS * self.slowest_call + STATIC_MARGIN_SECONDS[0])

    @property
    def wind_down_at(self) -> float:
        return self.at - self.margin

    @property
    def hard_stop(self) -> float:
        """Loop time after which the SDK no longer waits for the backend."""
        return self.at - HARD_STOP_SECONDS

    def until_wind_down(self) -> float:
        """Seconds from now until the wind-down starts (0 once it is due)."""
        return max(0.0, self.wind_down_at - self._loop.time())

    def next_change(self) -> asyncio.Future[None]:
        """A future resolved when the wind-down moves (a slower call was seen)."""
        self._waiter = self._loop.create_future()
        return self._waiter

    def observe_call(self, seconds: float) -> None:
        """Record how long a backend call took; a new slowest moves the wind-down earlier."""
        if seconds > self.slowest_call:
            self.slowest_call = seconds
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
