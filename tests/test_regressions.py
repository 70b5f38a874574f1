"""Regression tests for bugs found in review (each failed before its fix).

Only the in-memory backend is used; nothing sleeps on a timer (``asyncio.sleep(0)`` loops
stand in for a serdes or an await that takes a few loop turns, as real I/O does).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from support import sent_updates

from durable_async import (
    DurableContext,
    SerDesError,
    StepContext,
    durable_execution,
)
from durable_async._wire.enums import OperationAction, OperationType
from durable_async.testing import LocalRunner

# -- 3. a child whose result cannot be serialized is never closed ------------------------


@pytest.mark.anyio
async def test_child_result_serdes_failure_is_checkpointed() -> None:
    runs: Counter[str] = Counter()
    caught: list[type[BaseException]] = []

    async def one(step: StepContext) -> int:
        return 1

    async def body(child: DurableContext) -> set[int]:
        runs["body"] += 1
        await child.step(one, name="one")
        return {1, 2}  # not storable by the default serdes

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.run_in_child_context(body, name="child")
        except SerDesError as exc:
            caught.append(type(exc))
        await ctx.wait(seconds=1)
        return "handled"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert caught == [SerDesError, SerDesError]  # same error on first run and replay
    context_actions = [
        u.action for u in sent_updates(runner.backend) if u.type is OperationType.CONTEXT
    ]
    assert context_actions == [OperationAction.START, OperationAction.FAIL]
    assert runs["body"] == 1
