"""A FLAT branch that runs again in a later invocation replays its recorded operations."""

from __future__ import annotations

from typing import Any

import pytest

from durable_async import (
    DurableContext,
    NestingType,
    ParallelConfig,
    StepContext,
    durable_execution,
)
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


async def test_a_flat_branch_run_again_is_replaying_until_its_history_runs_out() -> None:
    # A FLAT branch has no operation of its own to say so: its first operation does.
    seen: list[tuple[str, bool]] = []

    async def greet(step: StepContext, name: str) -> str:
        return name

    async def first(ctx: DurableContext) -> str:
        seen.append(("before", ctx.is_replaying))
        value = await ctx.step(greet, "zero", name="zero")
        seen.append(("after", ctx.is_replaying))
        return value

    async def second(ctx: DurableContext) -> str:
        await ctx.wait(1, name="pause")
        return "one"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        config = ParallelConfig(max_concurrency=1, nesting=NestingType.FLAT)
        batch = await ctx.parallel([first, second], name="flat", config=config)
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.result == ["zero", "one"]
    assert result.invocations == 2
    assert seen == [
        ("before", False),
        ("after", False),
        ("before", True),  # the second invocation runs the branch again over its history
        ("after", False),
    ]
