"""Pipelined checkpointing, and a step's START riding with its result.

A pipelined step goes on before its SUCCEED is recorded; these tests pin down what that
may cost (only unrecorded steps re-run after a crash, always a suffix of the steps), what it
must never cost (a completion lost silently, an at-most-once body or a callback ID ahead of
earlier results), and that it saves round trips. The backends here model a round trip as
loop turns the call stays in flight, so counts do not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import Counter
from typing import Any

import pytest
from support import actions, invoke_once, sent_updates, start

from durable_async import (
    CheckpointError,
    DurableContext,
    StepConfig,
    StepContext,
    StepSemantics,
    ValidationError,
    durable_execution,
)
from durable_async import _batcher as batcher_module
from durable_async._batcher import MAX_BATCH_UPDATES
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async._wire.models import CheckpointRequest, CheckpointResponse
from durable_async.testing import LocalRunner, MemoryBackend

PIPELINED = StepConfig(pipelined=True)


class LatentBackend(MemoryBackend):
    """A ``MemoryBackend`` whose calls stay in flight for ``turns`` loop turns."""

    def __init__(self, turns: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.turns = turns

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        for _ in range(self.turns):
            await asyncio.sleep(0)
        return await super().checkpoint(params, logger)


class HangingBackend(LatentBackend):
    """Holds call number ``hang_at`` (1-based) in flight until ``release`` is set."""

    def __init__(self, hang_at: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hang_at = hang_at
        self.hung = asyncio.Event()
        self.release = asyncio.Event()
        self.held: CheckpointRequest | None = None

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        if len(self.checkpoint_calls) + 1 == self.hang_at:
            self.held = params
            self.hung.set()
            await self.release.wait()  # in flight (or abandoned with the invocation)
        return await super().checkpoint(params, logger)


def succeeded_steps(backend: MemoryBackend, arn: str) -> set[str]:
    """Names of the steps the backend has recorded as SUCCEEDED."""
    return {
        op.name or ""
        for op in backend.executions[arn].operations.values()
        if op.type is OperationType.STEP and op.status is OperationStatus.SUCCEEDED
    }


def counting_handler(
    n: int, runs: Counter[int], *, last_ran: asyncio.Event | None = None, **options: Any
) -> Any:
    """``n`` sequential steps whose bodies yield once (as I/O would); ``runs`` counts them."""

    async def add_one(_: StepContext, i: int) -> int:
        await asyncio.sleep(0)
        runs[i] += 1
        if last_ran is not None and i == n - 1:
            last_ran.set()
        return i + 1

    @durable_execution(**options)
    async def handler(event: Any, ctx: DurableContext) -> int:
        total = 0
        for i in range(n):
            total += await ctx.step(add_one, i, name=f"s{i}")
        return total

    return handler


@pytest.mark.anyio
async def test_pipelined_sequential_steps_take_far_fewer_calls_than_steps() -> None:
    runs: Counter[int] = Counter()
    pipelined = LocalRunner(counting_handler(100, runs, pipelined=True), LatentBackend())
    awaited = LocalRunner(counting_handler(100, Counter()), LatentBackend())

    fast = await pipelined.run()
    slow = await awaited.run()

    assert fast.result == slow.result == sum(range(1, 101))
    assert len(awaited.backend.checkpoint_calls) == 100
    assert len(pipelined.backend.checkpoint_calls) <= 20
    # The same history, in the same order: only the grouping into calls differs.
    assert actions(pipelined.backend) == actions(awaited.backend)
    assert set(runs.values()) == {1}


@pytest.mark.anyio
async def test_step_config_pipelines_one_step_of_an_unpipelined_handler() -> None:
    backend = LatentBackend()
    arn = start(backend)
    seen_before_second: set[str] = set()

    async def first(_: StepContext) -> int:
        return 1

    async def second(_: StepContext) -> int:
        seen_before_second.update(succeeded_steps(backend, arn))
        return 2

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(first, config=PIPELINED) + await ctx.step(second)

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": "3"}
    assert "first" not in seen_before_second  # the second body ran before it was recorded
    assert len(backend.checkpoint_calls) == 1
    assert succeeded_steps(backend, arn) == {"first", "second"}


@pytest.mark.anyio
async def test_step_config_false_waits_inside_a_pipelined_handler() -> None:
    backend = LatentBackend()
    arn = start(backend)
    seen_before_second: set[str] = set()

    async def first(_: StepContext) -> int:
        return 1

    async def second(_: StepContext) -> int:
        seen_before_second.update(succeeded_steps(backend, arn))
        return 2

    @durable_execution(pipelined=True)
    async def handler(event: Any, ctx: DurableContext) -> int:
        waited = await ctx.step(first, config=StepConfig(pipelined=False))
        return waited + await ctx.step(second)

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": "3"}
    assert seen_before_second == {"first"}


@pytest.mark.anyio
async def test_crash_with_unacknowledged_updates_reruns_only_those_steps() -> None:
    """Abandon an invocation while a call is in flight: what it carried, and what was queued
    behind it, is lost; the next invocation re-runs exactly the steps not recorded."""
    n = 24
    runs: Counter[int] = Counter()
    last_ran = asyncio.Event()
    handler = counting_handler(n, runs, last_ran=last_ran, pipelined=True)
    backend = HangingBackend(hang_at=2, turns=4)
    arn = start(backend)

    crashed = asyncio.create_task(invoke_once(handler, backend, arn))
    await backend.hung.wait()
    await last_ran.wait()  # every body has run while the second call is in flight
    crashed.cancel()  # the process dies: the call in flight and the queue are gone
    with pytest.raises(asyncio.CancelledError):
        await crashed

    recorded = succeeded_steps(backend, arn)
    prefix = {f"s{i}" for i in range(len(recorded))}
    assert recorded == prefix  # updates are sent in order: recorded steps are a prefix
    assert 0 < len(recorded) < n, recorded

    backend.hang_at = 0
    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": str(sum(range(1, n + 1)))}
    assert succeeded_steps(backend, arn) == {f"s{i}" for i in range(n)}
    assert {i for i, count in runs.items() if count == 2} == set(range(len(recorded), n))
    assert {i for i, count in runs.items() if count == 1} == set(range(len(recorded)))


@pytest.mark.anyio
async def test_pipelined_steps_wait_once_a_full_batch_is_queued() -> None:
    """What a crash can cost is bounded: the call in flight and one full batch behind it."""
    n = 400
    runs: Counter[int] = Counter()
    handler = counting_handler(n, runs, pipelined=True)
    backend = HangingBackend(hang_at=1, turns=0)
    arn = start(backend)

    invocation = asyncio.create_task(invoke_once(handler, backend, arn))
    await backend.hung.wait()
    for _ in range(10 * n):  # loop turns enough for every step to run, were none held back
        await asyncio.sleep(0)
    ran = sum(runs.values())
    assert ran < n
    assert backend.held is not None
    queued = 2 * ran - len(backend.held.updates)
    # The step that found a full batch queued waits with its START and SUCCEED queued too.
    assert MAX_BATCH_UPDATES <= queued <= MAX_BATCH_UPDATES + 2

    backend.release.set()
    output = await invocation
    assert output == {"Status": "SUCCEEDED", "Result": str(sum(range(1, n + 1)))}
    assert set(runs.values()) == {1}


@pytest.mark.anyio
async def test_a_pipelined_result_that_fails_to_checkpoint_fails_the_invocation() -> None:
    backend = LatentBackend()
    arn = start(backend)
    backend.fail_next_checkpoint(CheckpointError("service said no", retryable=False))

    async def one(_: StepContext) -> int:
        await asyncio.sleep(0)
        return 1

    @durable_execution(pipelined=True)
    async def handler(event: Any, ctx: DurableContext) -> str:
        for _ in range(3):
            # A handler that swallows every error still cannot lose a completion.
            with contextlib.suppress(Exception):
                await ctx.step(one)
        return "done"

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "FAILED"
    assert "service said no" in output["Error"]["ErrorMessage"]
    assert succeeded_steps(backend, arn) == set()


@pytest.mark.anyio
async def test_a_retryable_checkpoint_failure_of_a_pipelined_result_reruns_the_step() -> None:
    runs: Counter[int] = Counter()
    handler = counting_handler(2, runs, pipelined=True)
    backend = LatentBackend()
    arn = start(backend)
    backend.fail_next_checkpoint(CheckpointError("throttled", retryable=True))

    with pytest.raises(CheckpointError, match="throttled"):
        await invoke_once(handler, backend, arn)  # Lambda retries the invocation
    assert succeeded_steps(backend, arn) == set()

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": "3"}
    assert runs[0] == 2


@pytest.mark.anyio
async def test_an_at_most_once_body_runs_only_after_earlier_pipelined_results_are_recorded() -> (
    None
):
    backend = LatentBackend()
    arn = start(backend)
    seen: set[str] = set()

    async def quick(_: StepContext, i: int) -> int:
        return i

    async def once(_: StepContext) -> str:
        seen.update(succeeded_steps(backend, arn))
        return "charged"

    @durable_execution(pipelined=True)
    async def handler(event: Any, ctx: DurableContext) -> str:
        for i in range(5):
            await ctx.step(quick, i, name=f"q{i}")
        config = StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return await ctx.step(once, config=config)

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"charged"'}
    assert seen == {f"q{i}" for i in range(5)}


@pytest.mark.anyio
async def test_a_callback_id_leaves_only_after_earlier_pipelined_results_are_recorded() -> None:
    backend = LatentBackend()
    arn = start(backend)
    seen: set[str] = set()

    async def quick(_: StepContext, i: int) -> int:
        return i

    @durable_execution(pipelined=True)
    async def handler(event: Any, ctx: DurableContext) -> str:
        for i in range(5):
            await ctx.step(quick, i, name=f"q{i}")
        callback = await ctx.create_callback(name="approval")
        seen.update(succeeded_steps(backend, arn))
        return str(await callback.result())

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert seen == {f"q{i}" for i in range(5)}


@pytest.mark.anyio
async def test_pipelined_steps_in_child_contexts_keep_parents_before_children() -> None:
    backend = LatentBackend(turns=8)

    async def double(_: StepContext, i: int) -> int:
        return 2 * i

    async def branch(child: DurableContext, i: int) -> int:
        first = await child.step(double, i, name="a")
        return first + await child.step(double, first, name="b")

    @durable_execution(pipelined=True)
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        return list(await asyncio.gather(*(ctx.run_in_child_context(branch, i) for i in range(20))))

    # MemoryBackend rejects a batch whose child comes before its parent's START.
    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED", result
    assert result.result == [6 * i for i in range(20)]
    succeeded = [u for u in sent_updates(backend) if u.action is OperationAction.SUCCEED]
    assert len(succeeded) == 60  # 40 steps and 20 contexts


@pytest.mark.anyio
async def test_a_wait_after_pipelined_steps_suspends_with_their_results_recorded() -> None:
    backend = LatentBackend()
    arn = start(backend)

    async def quick(_: StepContext, i: int) -> int:
        return i

    @durable_execution(pipelined=True)
    async def handler(event: Any, ctx: DurableContext) -> int:
        total = sum([await ctx.step(quick, i, name=f"q{i}") for i in range(5)])
        await ctx.wait(seconds=30)
        return total

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    assert succeeded_steps(backend, arn) == {f"q{i}" for i in range(5)}


def test_pipelined_must_be_a_bool() -> None:
    with pytest.raises(ValidationError, match="pipelined must be"):
        StepConfig(pipelined="yes")  # type: ignore[arg-type]

    async def handler(event: Any, ctx: DurableContext) -> None:
        return None

    with pytest.raises(ValidationError, match="pipelined must be"):
        durable_execution(pipelined=1)(handler)  # type: ignore[call-overload]


def test_at_most_once_steps_cannot_be_pipelined() -> None:
    with pytest.raises(ValidationError, match="at-least-once"):
        StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, pipelined=True)


# -- a step's START rides with its result ---------------------------------------------


def plain_echo(_: StepContext, value: int) -> int:
    return value


@pytest.mark.anyio
async def test_a_plain_step_costs_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # A generous hold, so a slow machine's thread hop cannot split START from SUCCEED.
    monkeypatch.setattr(batcher_module, "HOLD_INITIAL", 60.0)
    monkeypatch.setattr(batcher_module, "HOLD_BOUNDS", (60.0, 60.0))

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        return [await ctx.step(plain_echo, i, name=f"p{i}") for i in range(3)]

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == [0, 1, 2]
    assert [len(call.updates) for call in runner.backend.checkpoint_calls] == [2, 2, 2]
    assert actions(runner.backend)[:2] == [("STEP", "START", "p0"), ("STEP", "SUCCEED", "p0")]


class StartWatchingBackend(MemoryBackend):
    """Sets ``start_recorded`` (a thread-safe event) once it has recorded a START."""

    def __init__(self) -> None:
        super().__init__()
        self.start_recorded = threading.Event()

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        response = await super().checkpoint(params, logger)
        if any(u.action is OperationAction.START for u in params.updates):
            self.start_recorded.set()
        return response


@pytest.mark.anyio
async def test_the_start_of_a_long_plain_step_is_recorded_while_it_runs() -> None:
    """The START waits for the result at most about one round trip, never for the body."""
    backend = StartWatchingBackend()
    arn = start(backend)

    def long_body(_: StepContext) -> bool:
        return backend.start_recorded.wait(timeout=30)  # blocks the worker thread, not the loop

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> bool:
        return await ctx.step(long_body, name="long")

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": "true"}
    assert actions(backend) == [("STEP", "START", "long"), ("STEP", "SUCCEED", "long")]
    assert len(backend.checkpoint_calls) == 2


@pytest.mark.anyio
async def test_a_deferred_start_goes_out_with_any_urgent_update() -> None:
    """A START waiting for company never delays anyone: a sibling's update takes it along."""
    backend = MemoryBackend()
    arn = start(backend)
    release = threading.Event()

    def blocked(_: StepContext) -> str:
        release.wait(timeout=30)
        return "late"

    async def quick(_: StepContext) -> str:
        return "early"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        slow = asyncio.ensure_future(ctx.step(blocked, name="blocked"))
        early = await ctx.step(quick, name="quick")
        release.set()
        return [early, await slow]

    output = await invoke_once(handler, backend, arn)
    assert json.loads(output["Result"]) == ["early", "late"]
    first = [(u.action.value, u.name) for u in backend.checkpoint_calls[0].updates]
    assert ("START", "blocked") in first
    assert ("SUCCEED", "quick") in first
