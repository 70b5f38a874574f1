"""``ctx.race`` and ``ctx.any``: the winner is decided once, recorded, and replayed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from support import invoke_once, start

from durable_async import (
    ChildContextError,
    DurableContext,
    DurableOperationError,
    OperationType,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async.testing import LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio
NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
STEP_ERROR_TYPE = "aws_durable_execution_sdk_python.exceptions.StepError"


async def echo(step: StepContext, value: Any) -> Any:
    return value


def approval_or_timeout() -> Any:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval", timeout=3600)
        winner = await ctx.race(
            callback.result(), ctx.wait(seconds=60, name="timeout"), name="approval-or-timeout"
        )
        await ctx.wait(seconds=1, name="after")
        return "timed out" if winner is None else f"answered {winner}"

    return handler


async def test_the_recorded_winner_is_replayed_even_when_every_operation_has_finished() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    handler = approval_or_timeout()
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.advance(60)  # the timeout fires first
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    callback_id = backend.open_callbacks(arn)[0]
    backend.complete_callback(callback_id, "yes")  # the answer comes in afterwards
    backend.advance(1)
    # On replay both operations are finished; the race still returns what it recorded.
    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"timed out"'}
    race = next(op for op in backend.executions[arn].operations.values() if op.sub_type == "Race")
    assert race.type is OperationType.CONTEXT


async def test_an_answer_before_the_timeout_wins() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    handler = approval_or_timeout()
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.complete_callback(backend.open_callbacks(arn)[0], "yes")
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.advance(1)
    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"answered yes"'}


async def test_any_skips_failures_and_raises_when_everything_fails() -> None:
    ran: list[str] = []

    async def fails(step: StepContext, label: str) -> str:
        ran.append(label)
        raise RuntimeError(f"{label} failed")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        first_good = await ctx.any(
            ctx.step(fails, "a", name="a", config=NO_RETRY),
            ctx.step(echo, "b", name="b"),
            name="any-good",
        )
        try:
            await ctx.any(
                ctx.step(fails, "c", name="c", config=NO_RETRY),
                ctx.step(fails, "d", name="d", config=NO_RETRY),
                name="all-bad",
            )
        except ChildContextError as error:
            # Caused by the first failure in the order given, on every run.
            cause = error.__cause__
            assert isinstance(cause, DurableOperationError)
            failure = [cause.error_type, cause.message]
        await ctx.wait(seconds=1)
        return [first_good, failure]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == ["b", [STEP_ERROR_TYPE, "c failed"]]
    assert sorted(ran) == ["a", "c", "d"]  # nothing ran again on replay


async def test_a_failed_winner_raises_the_same_error_on_replay() -> None:
    messages: list[str | None] = []

    async def boom(step: StepContext) -> str:
        raise ValueError("first and failing")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            await ctx.race(ctx.step(boom, config=NO_RETRY), ctx.wait(seconds=30), name="r")
        except ChildContextError as error:
            messages.append(f"{error.error_type}: {error.message}")
        await ctx.wait(seconds=1)
        return messages[-1]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    # The step's failure, as recorded (under AWS's name), on the first run and on replay.
    step_error = "aws_durable_execution_sdk_python.exceptions.StepError"
    assert messages == [f"{step_error}: first and failing"] * result.invocations
    assert result.invocations == 2


async def test_a_join_woken_by_a_finished_operation_is_not_mistaken_for_a_parked_one() -> None:
    """asyncio.wait over a replayed operation and a parked one returns, not suspends."""
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="never-answered")
        tasks = [
            asyncio.ensure_future(callback.result()),
            asyncio.ensure_future(ctx.wait(seconds=5, name="five")),
        ]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return [tasks.index(task) for task in done]

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    backend.advance(5)  # on replay the wait is finished at once; the callback still parks
    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"
    assert json.loads(output["Result"]) == [1]


async def test_all_settled_returns_every_outcome_in_the_order_given_and_replays_it() -> None:
    ran: list[str] = []

    async def fails(step: StepContext, label: str) -> str:
        ran.append(label)
        raise RuntimeError(f"{label} failed")

    async def slow_echo(step: StepContext, label: str) -> str:
        ran.append(label)
        await asyncio.sleep(0)
        return label

    seen: list[Any] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        settled = await ctx.all_settled(
            ctx.step(slow_echo, "a", name="a"),
            ctx.step(fails, "b", name="b", config=NO_RETRY),
            ctx.wait(seconds=10, name="ten"),
            name="settle",
        )
        seen.append(
            [(item.index, item.status.value) for item in settled.all]
            + [settled.get_results(), [e.message for e in settled.get_errors() if e]]
        )
        await ctx.wait(seconds=1, name="after")
        return settled.has_failure

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result is True
    expected = [
        (0, "SUCCEEDED"),
        (1, "FAILED"),
        (2, "SUCCEEDED"),
        ["a", None],
        ["b failed"],
    ]
    # The wait parks the first invocation; the outcome is recorded in the second and the
    # third invocation (after the one-second wait) reads the record back.
    assert seen == [expected] * (result.invocations - 1)
    assert result.invocations == 3
    assert sorted(ran) == ["a", "b"]
    settle = next(op for op in result.operations if op.sub_type == "AllSettled")
    assert settle.type is OperationType.CONTEXT


async def test_all_settled_does_not_hand_back_a_suspension_as_a_value() -> None:
    """gather(return_exceptions=True) would return the signal; all_settled suspends."""
    backend = MemoryBackend()
    arn = start(backend)
    after: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        await ctx.all_settled(ctx.step(echo, 1, name="one"), ctx.wait(seconds=30, name="w"))
        after.append("went on")
        return "done"

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert after == []
    backend.advance(30)
    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": '"done"'}
    assert after == ["went on"]


async def test_tasks_running_operations_race_as_the_operations_do() -> None:
    async def fast(step: StepContext) -> str:
        return "fast"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        winner = await ctx.race(
            asyncio.ensure_future(ctx.step(fast, name="fast")),
            asyncio.ensure_future(ctx.wait(seconds=60, name="slow")),
            name="tasks",
        )
        await ctx.wait(seconds=1)  # the next invocation replays the decided race
        return winner

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "fast"
    assert result.invocations == 2
