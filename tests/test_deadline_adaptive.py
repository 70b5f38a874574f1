"""Lambda's deadline with a slow backend and a blocked loop, on a virtual clock.

Each test runs on ``VirtualTimeLoop``: its clock stands still while anything is ready to
run and jumps to the next timer when the loop would otherwise sleep, so ``asyncio.sleep``
(a step's work, a backend's latency) costs no real time and every moment is exact. The
Lambda context counts down on that clock. Nothing here depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
from typing import Any

import attrs
import pytest
from support import sent_updates, start

from durable_async import DurableContext, InvocationTimeoutError, StepContext, durable_execution
from durable_async._deadline import FLUSH_CALLS, HARD_STOP_SECONDS, static_margin
from durable_async._wire.enums import OperationAction
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)
from durable_async.testing import LocalRunner, MemoryBackend


class _SkippingSelector(selectors.DefaultSelector):
    """A selector whose waits advance a virtual clock instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only I/O (a thread's result) can wake us
            return super().select(None)
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._clock = _SkippingSelector()
        super().__init__(self._clock)

    def time(self) -> float:
        return self._clock.now

    def block(self, seconds: float) -> None:
        """What a body that holds the loop without yielding for ``seconds`` costs."""
        self._clock.now += seconds


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"loop_factory": VirtualTimeLoop})


def loop() -> VirtualTimeLoop:
    running = asyncio.get_running_loop()
    assert isinstance(running, VirtualTimeLoop)
    return running


@attrs.define
class CountdownContext:
    """A Lambda context whose remaining time runs down on the loop's clock."""

    deadline: float

    @classmethod
    def seconds(cls, seconds: float) -> CountdownContext:
        return cls(loop().time() + seconds)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - asyncio.get_running_loop().time()) * 1000)


class SlowBackend(MemoryBackend):
    """The in-memory backend, answering each checkpoint after ``latencies`` seconds."""

    def __init__(self, *latencies: float) -> None:
        super().__init__()
        self.latencies = list(latencies)
        self.answered_at: list[float] = []

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        latency = self.latencies.pop(0) if len(self.latencies) > 1 else self.latencies[0]
        await asyncio.sleep(latency)  # the backend's latency itself
        response = await super().checkpoint(params, logger)
        self.answered_at.append(asyncio.get_running_loop().time())
        return response


def succeeded(backend: MemoryBackend) -> list[str | None]:
    return [u.name for u in sent_updates(backend) if u.action is OperationAction.SUCCEED]


def endless_steps(finished: list[str], work_seconds: float = 0.1) -> Any:
    async def work(step: StepContext, n: int) -> int:
        await asyncio.sleep(work_seconds)  # the step's own I/O
        finished.append(f"w{n}")
        return n

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        for n in range(10_000):
            await ctx.step(work, n, name=f"w{n}")

    return handler


@pytest.mark.anyio
async def test_a_400ms_checkpoint_does_not_push_the_return_past_the_deadline() -> None:
    # Lambda's default 3 s timeout keeps a 0.3 s margin, too short for the call in flight
    # plus the final flush at 0.4 s each: the margin has to grow with the latency seen.
    assert static_margin(3.0) < FLUSH_CALLS * 0.4
    backend = SlowBackend(0.4)
    finished: list[str] = []
    handler = endless_steps(finished)
    event = LocalRunner(handler, backend).event(start(backend))
    context = CountdownContext.seconds(3.0)

    with pytest.raises(InvocationTimeoutError):
        await handler.invoke_async(event, context, client=backend)

    assert loop().time() <= context.deadline
    assert backend.answered_at[-1] <= context.deadline
    # Everything finished before the wind-down is recorded; the step cut off is not.
    assert finished
    assert succeeded(backend) == finished


@pytest.mark.anyio
async def test_the_margin_follows_the_slowest_checkpoint_seen() -> None:
    """Fast calls first, then slow ones: the wind-down moves earlier as they are seen."""
    backend = SlowBackend(0.01, 0.01, 0.01, 0.9)
    finished: list[str] = []
    handler = endless_steps(finished)
    event = LocalRunner(handler, backend).event(start(backend))
    context = CountdownContext.seconds(6.0)

    with pytest.raises(InvocationTimeoutError):
        await handler.invoke_async(event, context, client=backend)

    assert loop().time() <= context.deadline
    assert succeeded(backend) == finished
    # The first slow call moved the wind-down to 2 x 0.9 + 0.25 s before the deadline.
    assert backend.answered_at[-1] <= context.deadline - 0.25


@pytest.mark.anyio
async def test_a_backend_that_stops_answering_is_abandoned_at_the_hard_stop() -> None:
    backend = SlowBackend(0.01, 0.01, 0.01, 3600.0)
    finished: list[str] = []
    handler = endless_steps(finished)
    event = LocalRunner(handler, backend).event(start(backend))
    context = CountdownContext.seconds(5.0)
    before = asyncio.all_tasks()

    with pytest.raises(InvocationTimeoutError, match="still being sent"):
        await handler.invoke_async(event, context, client=backend)

    returned = loop().time()
    assert context.deadline - HARD_STOP_SECONDS <= returned <= context.deadline
    # The three answered calls recorded what they carried; the hung one recorded nothing.
    assert len(backend.answered_at) == 3
    assert set(succeeded(backend)) <= set(finished)
    assert len(finished) - len(succeeded(backend)) == 1  # its SUCCEED was in the hung call
    assert asyncio.all_tasks() - before == set()  # no task outlives the invocation


@pytest.mark.anyio
async def test_a_body_blocking_the_loop_is_wound_down_as_soon_as_it_yields() -> None:
    """The SDK cannot interrupt code that holds the loop; it acts the moment it gets it back.

    Here the body holds the loop from 0.1 s to 9.6 s of a 10 s invocation, past the 1 s
    margin: when it returns, the invocation winds down at once (no further step starts) and
    still returns before the deadline, with the blocked step's result recorded.
    """
    backend = SlowBackend(0.001)
    ran: list[str] = []

    async def quick(step: StepContext) -> str:
        ran.append("quick")
        return "q"

    async def hog(step: StepContext) -> str:
        ran.append("hog")
        loop().block(9.5)  # CPU-bound work that never awaits
        return "h"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.step(quick)
        await asyncio.sleep(0.1)
        await ctx.step(hog)
        await ctx.step(quick, name="after")
        return "done"

    event = LocalRunner(handler, backend).event(start(backend))
    context = CountdownContext.seconds(10.0)
    with pytest.raises(InvocationTimeoutError):
        await handler.invoke_async(event, context, client=backend)
    assert loop().time() <= context.deadline
    assert ran == ["quick", "hog"]
    assert succeeded(backend) == ["quick", "hog"]


class HungStateBackend(MemoryBackend):
    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        await asyncio.sleep(3600)  # a state read that never returns
        raise AssertionError("unreachable")


@pytest.mark.anyio
async def test_a_state_read_that_never_returns_is_abandoned_at_the_hard_stop() -> None:
    backend = HungStateBackend()
    ran: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        ran.append("handler")
        return "unreachable"

    event = LocalRunner(handler, backend).event(start(backend))
    event["InitialExecutionState"]["NextMarker"] = "page-2"
    context = CountdownContext.seconds(2.0)
    with pytest.raises(InvocationTimeoutError, match="state was being read"):
        await handler.invoke_async(event, context, client=backend)
    assert context.deadline - HARD_STOP_SECONDS <= loop().time() <= context.deadline
    assert ran == []
    assert backend.checkpoint_calls == []
