"""Cases the random-workflow properties and fault trials found, shrunk and named.

Each was a failing trial of ``tests/test_random_workflows.py`` or ``benchmarks/trials.py``
before its fix; the test keeps the smallest workflow and fault plan that showed it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest
from support import invoke_once, start

from durable_async import (
    BackendError,
    CheckpointError,
    DurableContext,
    StepConfig,
    StepContext,
    StepSemantics,
    durable_execution,
)
from durable_async._wire.models import CheckpointRequest, CheckpointResponse
from durable_async.testing import MemoryBackend

pytestmark = pytest.mark.anyio


class ThrottledOnce(MemoryBackend):
    """Throttles checkpoint call ``at`` (1-based): the invocation fails, Lambda retries."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.calls = 0

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        self.calls += 1
        if self.calls == self.at:
            raise CheckpointError("ThrottlingException", retryable=True, code="Throttling")
        return await super().checkpoint(params, logger)


async def test_map_branches_failing_on_one_checkpoint_leave_no_unretrieved_exception() -> None:
    # Trial 117 (seed 0): both branches' at-most-once STARTs ride in one checkpoint call;
    # it is throttled, both branch tasks end with the same CheckpointError, the batch
    # raised the first and asyncio logged "Task exception was never retrieved" for the
    # other, once per branch beyond the first.
    reports: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reports.append(context))
    amo = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)

    def body(step: StepContext, item: int) -> int:
        return item

    async def branch(item_ctx: DurableContext, item: int, index: int, items: Any) -> int:
        return await item_ctx.step(body, item, name="s", config=amo)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        batch = await ctx.map([1, 2, 3], branch, name="m")
        return batch.get_results()

    backend = ThrottledOnce(at=2)
    failed = False
    try:
        try:
            await invoke_once(handler, backend, start(backend))
        except BackendError:  # kept by no name: its traceback would keep the tasks alive
            failed = True
        gc.collect()  # asyncio reports an unretrieved exception when the task is freed
    finally:
        loop.set_exception_handler(previous)
    assert failed
    assert backend.calls == 2
    assert reports == []
