"""Winding down before Lambda's timeout: queued checkpoints are sent, nothing is lost."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from support import actions, start

from durable_async import (
    DurableContext,
    InvocationTimeoutError,
    StepContext,
    durable_execution,
)
from durable_async._deadline import static_margin
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

#: Remaining time within the SDK's safety margin: the deadline is already due.
AT_DEADLINE = FakeLambdaContext(remaining_ms=100)


@pytest.mark.anyio
async def test_a_step_running_at_the_deadline_is_cancelled_and_its_start_kept() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(step: StepContext) -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # never finishes on its own
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "unreachable"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        done = await ctx.step(slow)
        return str(done)

    event = LocalRunner(handler, backend).event(arn)
    # Nothing is pending on the service, so PENDING would be refused: the invocation
    # fails as a timeout would, after sending what was queued.
    with pytest.raises(InvocationTimeoutError):
        await handler.invoke_async(event, AT_DEADLINE, client=backend)
    assert started.is_set()
    assert cancelled.is_set()
    # The fire-and-forget START was sent before the invocation ended.
    assert actions(backend) == [("STEP", "START", "slow")]


@pytest.mark.anyio
async def test_with_a_wait_pending_the_deadline_ends_the_invocation_pending() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    async def slow(step: StepContext) -> str:
        await asyncio.Event().wait()
        return "unreachable"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return list(await asyncio.gather(ctx.step(slow), ctx.wait(seconds=60)))

    event = LocalRunner(handler, backend).event(arn)
    output = await handler.invoke_async(event, AT_DEADLINE, client=backend)
    assert output == {"Status": "PENDING"}
    assert sorted(actions(backend)) == [("STEP", "START", "slow"), ("WAIT", "START", None)]


@pytest.mark.anyio
async def test_a_plain_step_blocked_in_its_thread_does_not_hold_the_invocation() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    release = threading.Event()

    def blocking(step: StepContext) -> str:
        release.wait()
        return "late"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return str(await ctx.step(blocking))

    event = LocalRunner(handler, backend).event(arn)
    try:
        with pytest.raises(InvocationTimeoutError):
            await handler.invoke_async(event, AT_DEADLINE, client=backend)
    finally:
        release.set()
    assert actions(backend) == [("STEP", "START", "blocking")]


@pytest.mark.anyio
async def test_the_next_invocation_runs_the_interrupted_step_again() -> None:
    backend = MemoryBackend()
    runs: list[int] = []

    async def flaky_latency(step: StepContext) -> int:
        runs.append(step.attempt)
        if len(runs) == 1:
            await asyncio.Event().wait()
        return len(runs)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return int(await ctx.step(flaky_latency))

    arn = start(backend)
    runner = LocalRunner(handler, backend)
    with pytest.raises(InvocationTimeoutError):
        await handler.invoke_async(runner.event(arn), AT_DEADLINE, client=backend)
    second = await handler.invoke_async(runner.event(arn), FakeLambdaContext(), client=backend)
    assert second == {"Status": "SUCCEEDED", "Result": "2"}
    # At least once per retry: the interrupted attempt is the same attempt, run again.
    assert runs == [1, 1]


def test_the_safety_margin_scales_with_the_time_left() -> None:
    assert static_margin(900.0) == 3.0  # long timeouts keep three seconds to flush
    assert static_margin(10.0) == 1.0  # a tenth of the time left
    assert static_margin(2.9) == pytest.approx(0.29)  # Lambda's default 3 s timeout still runs
    assert static_margin(1.0) == 0.25  # never less than a quarter second of margin
    assert static_margin(0.1) == 0.25  # already due
