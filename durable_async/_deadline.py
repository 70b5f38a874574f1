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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from durable_async._errors import InvocationTimeoutError

if TYPE_CHECKING:
    from durable_async._batcher import CheckpointBatcher

T = TypeVar("T")

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
        #: Called when the wind-down moves (a slower call was seen).
        self.on_change: Callable[[], None] | None = None

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

    def observe_call(self, seconds: float) -> None:
        """Record how long a backend call took; a new slowest moves the wind-down earlier."""
        if seconds > self.slowest_call:
            self.slowest_call = seconds
            if self.on_change is not None:
                self.on_change()


async def wait_until_wind_down(
    handler_task: asyncio.Task[Any], quiet: asyncio.Future[None], deadline: Deadline | None
) -> None:
    """Until the handler ends, all is parked, or it is time to wind down.

    The wind-down moves earlier whenever a slower checkpoint call is seen, so the timer is
    re-armed each time that happens. One future and one timer, rather than
    ``asyncio.wait``: this runs once per invocation and its cost is all fixed cost.
    """
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not woken.done():
            woken.set_result(None)

    handler_task.add_done_callback(wake)
    quiet.add_done_callback(wake)
    if deadline is not None:
        deadline.on_change = wake
    timer: asyncio.TimerHandle | None = None
    try:
        while True:
            # Armed even when the wind-down is already due, as ``asyncio.wait(timeout=0)``
            # would be: the handler gets one turn of the loop before winding down.
            if deadline is not None:
                timer = loop.call_at(deadline.wind_down_at, wake)
            await woken
            woken = loop.create_future()
            if timer is not None:
                timer.cancel()
                timer = None
            if handler_task.done() or quiet.done():
                return
            if deadline is not None and deadline.until_wind_down() <= 0:
                return
    finally:
        handler_task.remove_done_callback(wake)
        quiet.remove_done_callback(wake)
        if timer is not None:
            timer.cancel()
        if deadline is not None:
            deadline.on_change = None


async def close_before(batcher: CheckpointBatcher, deadline: Deadline | None) -> None:
    """Send what is queued, giving up at the deadline's hard stop.

    A backend slower than the margin foresaw (or a loop blocked past the wind-down) must not
    keep the invocation past Lambda's deadline: the flush is cancelled, and the invocation
    fails as a timeout would, so Lambda invokes again and replay finds what was recorded.
    """
    if deadline is None or batcher.flusher is None:
        await batcher.close()  # with nothing ever queued, this returns at once
        return
    try:
        async with asyncio.timeout_at(deadline.hard_stop):
            await batcher.close()
    except TimeoutError:
        flusher = batcher.flusher
        if flusher is not None:
            await asyncio.wait((flusher,))
        msg = (
            "Lambda's timeout came while checkpoints were still being sent; what the service "
            "recorded is kept and the rest runs again in the next invocation"
        )
        raise InvocationTimeoutError(msg) from None


async def before_hard_stop(coro: Coroutine[Any, Any, T], deadline: Deadline | None) -> T:
    """``coro``'s result, unless Lambda's deadline comes first (then a timeout error)."""
    if deadline is None:
        return await coro
    try:
        async with asyncio.timeout_at(deadline.hard_stop):
            return await coro
    except TimeoutError:
        msg = "Lambda's timeout came while the execution's state was being read; nothing was run"
        raise InvocationTimeoutError(msg) from None
