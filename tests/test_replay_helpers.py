"""ctx.now(), ctx.uuid4(), ctx.random(): values recorded once, as steps, and replayed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from support import actions, invoke_once, start

from durable_async import DurableContext, durable_execution
from durable_async._identity import operation_id
from durable_async._wire.enums import OperationStatus, OperationSubType, OperationType
from durable_async.testing import LocalRunner, MemoryBackend


@pytest.mark.anyio
async def test_helpers_return_the_same_values_on_replay() -> None:
    seen: list[tuple[Any, ...]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        values = (await ctx.now(), await ctx.uuid4(), await ctx.random(), await ctx.uuid4())
        seen.append(values)
        await ctx.wait(seconds=1)
        return [str(v) for v in values]

    runner = LocalRunner(handler)
    started = runner.clock.now()
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.invocations == 2
    first, replayed = seen
    assert first == replayed
    when, id_a, number, id_b = first
    assert type(when) is datetime
    assert when.tzinfo is not None
    assert when == started  # the runner's clock, read before the wait moved it
    assert type(id_a) is uuid.UUID
    assert id_a.version == 4
    assert id_a != id_b  # each call draws anew
    assert type(number) is float
    assert 0 <= number < 1
    assert result.result == [str(v) for v in first]

    assert actions(runner.backend)[:8] == [
        ("STEP", "START", "now"),
        ("STEP", "SUCCEED", "now"),
        ("STEP", "START", "uuid4"),
        ("STEP", "SUCCEED", "uuid4"),
        ("STEP", "START", "random"),
        ("STEP", "SUCCEED", "random"),
        ("STEP", "START", "uuid4"),
        ("STEP", "SUCCEED", "uuid4"),
    ]
    ops = runner.backend.executions[result.arn].operations
    for position in range(1, 5):
        op = ops[operation_id(None, position)]
        assert op.type is OperationType.STEP
        assert op.sub_type == OperationSubType.STEP
        assert op.status is OperationStatus.SUCCEEDED


@pytest.mark.anyio
async def test_replay_uses_the_recorded_values_not_new_ones() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[tuple[Any, ...]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        seen.append((await ctx.now(), await ctx.uuid4(), await ctx.random()))
        await ctx.wait(seconds=60)

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    calls = len(backend.checkpoint_calls)
    # Re-invoked before the wait is over: the helpers replay, nothing is checkpointed.
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.advance(60)
    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": "null"}
    assert len(backend.checkpoint_calls) == calls
    assert seen[0] == seen[1] == seen[2]


@pytest.mark.anyio
async def test_helpers_inside_a_child_context_are_recorded_under_it() -> None:
    seen: list[Any] = []

    async def body(child: DurableContext) -> None:
        seen.append(await child.uuid4())
        await child.wait(seconds=1)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.run_in_child_context(body, name="child")

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert len(seen) == 2
    assert seen[0] == seen[1]
    child_id = operation_id(None, 1)
    op = result.operations[[o.id for o in result.operations].index(operation_id(child_id, 1))]
    assert op.name == "uuid4"
    assert op.parent_id == child_id
