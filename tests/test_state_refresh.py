"""Parked operations resume in the same invocation when a checkpoint response shows them done.

The service answers every checkpoint with the operations that changed, including ones
changed from outside (a callback answered, a timer fired). A branch parked on such an
operation carries on at once instead of waiting for the next invocation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import SignallingBackend, start

from durable_async import DurableContext, OperationType, StepContext, durable_execution
from durable_async.testing import LocalRunner, MemoryBackend


@pytest.mark.anyio
async def test_a_callback_answered_while_a_sibling_step_runs_resolves_in_this_invocation() -> None:
    backend = MemoryBackend()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        callback = await ctx.create_callback(name="approval")

        async def notify_and_work(step: StepContext) -> str:
            # The external system answers while this step is still working.
            backend.complete_callback(callback.callback_id, '"yes"')
            await asyncio.sleep(0)
            return "worked"

        return list(await asyncio.gather(ctx.step(notify_and_work), callback.result()))

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert result.result == ["worked", '"yes"']
    assert result.invocations == 1


@pytest.mark.anyio
async def test_a_wait_that_elapsed_during_a_sibling_step_ends_in_this_invocation() -> None:
    backend = SignallingBackend()
    after_wait: list[str] = []

    def wait_recorded() -> bool:
        return any(
            op.type is OperationType.WAIT
            for execution in backend.executions.values()
            for op in execution.operations.values()
        )

    async def slow(step: StepContext) -> str:
        while not wait_recorded():  # the sibling's wait reaches the service first
            backend.checkpointed.clear()
            await backend.checkpointed.wait()
        backend.advance(10)  # then ten (virtual) seconds of work pass
        return "slow done"

    async def short_wait_then_step(ctx: DurableContext) -> str:
        await ctx.wait(seconds=5)
        after_wait.append("resumed")
        return "waited"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return list(
            await asyncio.gather(
                ctx.step(slow), ctx.run_in_child_context(short_wait_then_step, name="timer")
            )
        )

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert result.result == ["slow done", "waited"]
    assert result.invocations == 1
    assert after_wait == ["resumed"]


@pytest.mark.anyio
async def test_without_news_from_the_service_the_parked_branch_suspends() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval")

        async def work(step: StepContext) -> str:
            return "worked"

        return list(await asyncio.gather(ctx.step(work), callback.result()))

    runner = LocalRunner(handler, backend, pause_on_callbacks=True)
    first = await runner.resume(arn)
    assert first.status == "PENDING"
    assert first.invocations == 1
