"""Checkpoint batching: few calls, service limits respected, nothing left unsent."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from support import SignallingBackend, actions, invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    RetryPresets,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    durable_execution,
)
from durable_async._batcher import MAX_BATCH_BYTES, MAX_BATCH_UPDATES
from durable_async._wire.converter import to_wire
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async.testing import LocalRunner, MemoryBackend


async def echo(_: StepContext, value: Any) -> Any:
    return value


@pytest.mark.anyio
async def test_sequential_async_step_costs_one_call() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(echo, 7, name="only")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 7
    assert len(runner.backend.checkpoint_calls) == 1
    assert actions(runner.backend) == [("STEP", "START", "only"), ("STEP", "SUCCEED", "only")]


@pytest.mark.anyio
async def test_three_sequential_async_steps_cost_three_calls() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        return [await ctx.step(echo, i) for i in range(3)]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == [0, 1, 2]
    assert len(runner.backend.checkpoint_calls) == 3


@pytest.mark.anyio
async def test_hundred_gathered_steps_share_a_handful_of_calls() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        return list(await asyncio.gather(*(ctx.step(echo, i) for i in range(100))))

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == list(range(100))
    assert len(runner.backend.checkpoint_calls) <= 3
    updates = sent_updates(runner.backend)
    assert len(updates) == 200
    assert sum(u.action is OperationAction.SUCCEED for u in updates) == 100
    assert len({u.id for u in updates}) == 100


@pytest.mark.anyio
async def test_batches_hold_at_most_250_updates() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        results = await asyncio.gather(*(ctx.step(echo, i) for i in range(300)))
        return sum(results)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == sum(range(300))
    sizes = [len(call.updates) for call in runner.backend.checkpoint_calls]
    assert max(sizes) <= MAX_BATCH_UPDATES == 250
    assert sum(sizes) == 600
    assert len(sizes) >= 3  # 600 updates cannot fit in two calls


@pytest.mark.anyio
async def test_batches_stay_under_the_byte_limit() -> None:
    big = "x" * (200 * 1024)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        results = await asyncio.gather(*(ctx.step(echo, big) for _ in range(8)))
        return sum(len(r) for r in results)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 8 * len(big)
    calls = runner.backend.checkpoint_calls
    assert len(calls) >= 3  # 8 * 200 KiB cannot fit in two 750 KiB calls
    for call in calls:
        body = json.dumps(to_wire(call))
        assert len(body.encode()) <= MAX_BATCH_BYTES
    assert sum(u.action is OperationAction.SUCCEED for u in sent_updates(runner.backend)) == 8


@pytest.mark.anyio
async def test_wait_start_is_flushed_before_pending() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.wait(minutes=2, name="nap")

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert actions(backend) == [("WAIT", "START", "nap")]
    assert backend.checkpoint_calls[-1].updates[0].wait_options is not None
    assert backend.checkpoint_calls[-1].updates[0].wait_options.wait_seconds == 120
    waits = [
        op for op in backend.executions[arn].operations.values() if op.type is OperationType.WAIT
    ]
    assert [op.status for op in waits] == [OperationStatus.STARTED]
    assert backend.next_due(arn) == backend.now + timedelta(seconds=120)


@pytest.mark.anyio
async def test_start_of_long_running_step_is_sent_before_it_finishes() -> None:
    backend = SignallingBackend()
    arn = start(backend)
    entered = asyncio.Event()
    release = asyncio.Event()

    async def long_step(_: StepContext) -> str:
        entered.set()
        await release.wait()
        return "finished"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(long_step, name="long")

    invocation = asyncio.create_task(invoke_once(handler, backend, arn))
    await entered.wait()
    await backend.checkpointed.wait()  # the body is still blocked on ``release``
    assert actions(backend) == [("STEP", "START", "long")]
    assert not invocation.done()
    release.set()
    output = await invocation
    assert output == {"Status": "SUCCEEDED", "Result": '"finished"'}
    assert actions(backend) == [("STEP", "START", "long"), ("STEP", "SUCCEED", "long")]


@pytest.mark.anyio
async def test_gathered_steps_beside_a_wait_are_checkpointed_before_pending() -> None:
    """A parked wait does not cut short siblings: their results land in this invocation."""
    backend = MemoryBackend()
    arn = start(backend)
    runs: list[int] = []

    async def work(_: StepContext, i: int) -> int:
        for _turn in range(5):
            await asyncio.sleep(0)
        runs.append(i)
        return i

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return list(
            await asyncio.gather(ctx.wait(seconds=60), *(ctx.step(work, i) for i in range(3)))
        )

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert sorted(runs) == [0, 1, 2]
    succeeded = [u for u in sent_updates(backend) if u.action is OperationAction.SUCCEED]
    assert len(succeeded) == 3
    assert ("WAIT", "START", None) in actions(backend)


@pytest.mark.anyio
async def test_a_checkpoint_response_with_a_next_marker_is_paged_in() -> None:
    backend = MemoryBackend(page_size=2)

    async def double(step: StepContext, i: int) -> int:
        return 2 * i

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        return list(await asyncio.gather(*(ctx.step(double, i) for i in range(5))))

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert result.result == [0, 2, 4, 6, 8]
    # Responses carried more changed operations than a page: the rest was read with the
    # token the response returned, page after page.
    assert backend.state_calls
    assert all(call.checkpoint_token for call in backend.state_calls)


@pytest.mark.anyio
async def test_batches_stay_under_the_byte_limit_with_non_ascii_errors() -> None:
    """Batches are measured as botocore sends them: each non-ASCII character is a six-byte
    escape (``\\u00e9``), not the two bytes of its UTF-8 form; errors count too."""
    config = StepConfig(
        retry_strategy=RetryPresets.none(),
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    )

    async def validate(step: StepContext, i: int) -> None:
        raise ValueError("é" * 500)  # e.g. a localized validation message

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        results = await asyncio.gather(
            *(ctx.step(validate, i, name=f"v{i}", config=config) for i in range(250)),
            return_exceptions=True,
        )
        return sum(isinstance(r, StepError) for r in results)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == 250
    for call in runner.backend.checkpoint_calls:
        # What botocore sends for Updates alone (json.dumps, ASCII-escaped).
        body = json.dumps([to_wire(u) for u in call.updates]).encode()
        assert len(body) <= MAX_BATCH_BYTES, (len(call.updates), len(body))


@pytest.mark.anyio
async def test_an_update_that_cannot_be_sized_fails_alone_and_later_ones_are_recorded() -> None:
    # A summary that is not a string cannot be sized (or sent). It fails the child that
    # made it; the queue must stay as it was, so the next step's result reaches its step.
    from durable_async import ChildConfig
    from durable_async.testing import LocalRunner, MemoryBackend

    async def big(c: DurableContext) -> str:
        return "x" * (300 * 1024)

    async def echo(sc: StepContext, v: str) -> str:
        return v

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = ChildConfig(summary_generator=lambda result: {1, 2})  # type: ignore[arg-type,return-value]
        with pytest.raises(TypeError):
            await ctx.run_in_child_context(big, name="big", config=config)
        return await ctx.step(echo, "after", name="after")

    runner = LocalRunner(handler, MemoryBackend(), max_invocations=2)
    result = await asyncio.wait_for(runner.run(None), 30)
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "after"
