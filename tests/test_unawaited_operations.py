"""An operation called without ``await`` fails the execution, naming the operation."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from durable_async import DurableContext, StepContext, durable_execution
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


async def work(step: StepContext) -> str:
    return "worked"


async def test_an_operation_never_awaited_fails_the_execution_naming_it() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        ctx.step(work, name="forgotten")  # type: ignore[unused-coroutine]  # the bug under test
        return await ctx.step(work, name="kept")

    result = await LocalRunner(handler).run()
    gc.collect()  # a leftover coroutine would warn here (warnings are errors in this suite)
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "durable_async.UnawaitedOperationError"
    assert result.error.message is not None
    assert "'forgotten'" in result.error.message
    assert "never awaited" in result.error.message
    # The forgotten step never ran or was recorded.
    assert [op.name for op in result.operations if op.name] == ["kept"]


async def test_an_operation_forgotten_before_hundreds_of_awaited_ones_is_still_reported() -> None:
    # The SDK forgets the coroutines of operations that started (so a large map does not
    # keep them all); one that never started must survive every such pass.
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        ctx.step(work, name="forgotten")  # type: ignore[unused-coroutine]  # the bug under test
        pending = ctx.step(work, name="called-early")
        for _ in range(300):
            await ctx.step(work, name="kept")
        await pending
        return 300

    result = await LocalRunner(handler).run()
    gc.collect()
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.message is not None
    assert "'forgotten'" in result.error.message
    assert "called-early" not in result.error.message


async def test_an_operation_awaited_after_a_suspension_is_not_reported() -> None:
    """Calling early and awaiting after a durable wait is fine: it is awaited in the end."""

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        pending = ctx.step(work, name="later")
        await ctx.wait(seconds=5)
        return await pending

    result = await LocalRunner(handler).run()
    gc.collect()
    assert result.status == "SUCCEEDED"
    assert result.result == "worked"
    assert result.invocations == 2


async def test_a_handler_that_fails_keeps_its_own_error_and_leaves_no_warning() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        ctx.wait(seconds=5)  # type: ignore[unused-coroutine]  # the bug under test
        raise ValueError("boom")

    result = await LocalRunner(handler).run()
    gc.collect()
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "ValueError"
