"""Cases the random-workflow properties and fault trials found, shrunk and named.

Each was a failing trial of ``tests/test_random_workflows.py`` or ``benchmarks/trials.py``
before its fix; the test keeps the smallest workflow and fault plan that showed it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from random_workflows import Map, Parallel, Poll, Step, Tally, Workflow, run_trial
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

_QUIET = logging.getLogger("tests.crash_regressions")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def _recording(previous: Any, tasks: list[asyncio.Task[Any]]) -> Any:
    """A task factory that keeps every task the invocation creates."""

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        task = (
            previous(loop, coro, **kwargs) if previous else asyncio.Task(coro, loop=loop, **kwargs)
        )
        tasks.append(task)
        return task

    return factory


def _unretrieved(tasks: list[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks asyncio would log "Task exception was never retrieved" for when freed.

    Read from the flag asyncio sets for exactly that, not from the log: when a task is
    freed depends on the garbage collector and on whatever still holds its traceback.
    """
    return [t for t in tasks if t.done() and getattr(t, "_log_traceback", False)]


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
    # raised the first and left the others' for asyncio to log as never retrieved.
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    tasks: list[asyncio.Task[Any]] = []
    loop.set_task_factory(_recording(previous, tasks))
    amo = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)

    async def body(step: StepContext, item: int) -> int:
        return item

    async def branch(item_ctx: DurableContext, item: int, index: int, items: Any) -> int:
        return await item_ctx.step(body, item, name="s", config=amo)

    @durable_execution(logger=_QUIET)
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        batch = await ctx.map([1, 2, 3], branch, name="m")
        return batch.get_results()

    backend = ThrottledOnce(at=2)
    try:
        with pytest.raises(BackendError):
            await invoke_once(handler, backend, start(backend))
    finally:
        loop.set_task_factory(previous)
    assert backend.calls == 2
    assert _unretrieved(tasks) == []


async def test_race_operations_failing_on_one_checkpoint_leave_no_unretrieved_exception() -> None:
    # The batch's bug in ctx.race: both operations' at-most-once STARTs ride in one
    # throttled checkpoint call; the race raised the first one's CheckpointError and left
    # the other's for asyncio to log as never retrieved.
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    tasks: list[asyncio.Task[Any]] = []
    loop.set_task_factory(_recording(previous, tasks))
    amo = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)

    async def body(step: StepContext, item: int) -> int:
        return item

    @durable_execution(logger=_QUIET)
    async def handler(event: Any, ctx: DurableContext) -> Any:
        return await ctx.race(
            ctx.step(body, 1, name="a", config=amo), ctx.step(body, 2, name="b", config=amo)
        )

    backend = ThrottledOnce(at=2)
    try:
        with pytest.raises(BackendError):
            await invoke_once(handler, backend, start(backend))
    finally:
        loop.set_task_factory(previous)
    assert _unretrieved(tasks) == []


def test_a_map_inside_a_parallel_leaves_no_unretrieved_exception_when_a_checkpoint_fails() -> None:
    # Fault trial 462 (seed 7), made deterministic (async bodies only): the throttled
    # checkpoint fails the Poll and the Map's branches together; the parallel cancels the
    # map while the invocation's wind-down cancels it too, so the map's coordinator is
    # cancelled again while it settles its branches and never collected what the
    # finished ones raised. Several of these scheduling seeds showed it.
    def step(key: str, at_most_once: bool, attempts: int) -> Step:
        return Step(key, plain=False, at_most_once=at_most_once, fails=2, attempts=attempts,
                    value=1)  # fmt: skip

    items = (step("i4", True, 7), step("i5", False, 2), step("i6", True, 7))
    workflow = Workflow((Parallel("p0", (Poll("q1", 1), Map("m3", items))),))
    tally = Tally()
    for seed in range(10):
        run_trial(workflow, {2: "throttled"}, tally, seed=seed)
    assert tally.problems == []
    assert tally.faults["throttled"] == 10
