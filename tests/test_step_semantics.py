"""Step semantics: retry strategies, durable retry delays, attempts, at-most-once, threads."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from support import actions, invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    DurableOperationError,
    Duration,
    JitterStrategy,
    LinearRetryStrategyConfig,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    StepError,
    StepInterruptedError,
    StepSemantics,
    create_linear_retry_strategy,
    create_retry_strategy,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)
from durable_async._wire.models import CheckpointRequest, OperationUpdate
from durable_async.testing import LocalRunner, MemoryBackend


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


# -- strategies as pure functions ------------------------------------------------------


def test_default_preset_six_attempts_full_jitter_within_bounds() -> None:
    strategy = RetryPresets.default()
    error = RuntimeError("x")
    for attempt in range(1, 6):
        cap = min(5 * 2 ** (attempt - 1), 60)
        delays = {strategy(error, attempt).delay_seconds for _ in range(200)}
        assert all(strategy(error, attempt).should_retry for _ in range(3))
        assert min(delays) >= 1
        assert max(delays) <= cap
    assert not strategy(error, 6).should_retry
    assert not strategy(error, 7).should_retry


def test_default_preset_caps_at_sixty_seconds() -> None:
    config = RetryStrategyConfig(
        max_attempts=20,
        initial_delay=Duration(5),
        max_delay=Duration(60),
        backoff_rate=2,
        jitter_strategy=JitterStrategy.NONE,
    )
    strategy = create_retry_strategy(config)
    assert [strategy(RuntimeError(), a).delay_seconds for a in range(1, 8)] == [
        5,
        10,
        20,
        40,
        60,
        60,
        60,
    ]


def test_exponential_without_jitter_exact_delays() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=Duration(2),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    decisions = [strategy(RuntimeError(), a) for a in (1, 2, 3)]
    assert [d.should_retry for d in decisions] == [True, True, False]
    assert [d.delay_seconds for d in decisions[:2]] == [2, 6]


def test_half_jitter_bounds() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5, initial_delay=Duration(10), jitter_strategy=JitterStrategy.HALF
        )
    )
    delays = {strategy(RuntimeError(), 1).delay_seconds for _ in range(200)}
    assert min(delays) >= 5
    assert max(delays) <= 10


def test_linear_and_fixed_presets() -> None:
    linear = RetryPresets.linear()
    assert [linear(RuntimeError(), a).delay_seconds for a in range(1, 6)] == [1, 2, 3, 4, 5]
    assert not linear(RuntimeError(), 6).should_retry
    fixed = RetryPresets.fixed(Duration(7))
    assert [fixed(RuntimeError(), a).delay_seconds for a in range(1, 5)] == [7, 7, 7, 7]
    assert not fixed(RuntimeError(), 5).should_retry
    assert RetryPresets.fixed()(RuntimeError(), 1).delay_seconds == 5
    assert not RetryPresets.none()(RuntimeError(), 1).should_retry


def test_linear_strategy_cap() -> None:
    strategy = create_linear_retry_strategy(
        LinearRetryStrategyConfig(
            max_attempts=10,
            initial_delay=Duration(3),
            increment=Duration(4),
            max_delay=Duration(12),
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    assert [strategy(RuntimeError(), a).delay_seconds for a in range(1, 6)] == [3, 7, 11, 12, 12]


def test_error_filters() -> None:
    by_type = create_retry_strategy(RetryStrategyConfig(retryable_error_types=[Transient]))
    assert by_type(Transient("boom"), 1).should_retry
    assert not by_type(Permanent("boom"), 1).should_retry
    by_message = create_retry_strategy(
        RetryStrategyConfig(retryable_errors=["throttl", re.compile(r"^5\d\d$")])
    )
    assert by_message(Permanent("request throttled"), 1).should_retry
    assert by_message(Permanent("503"), 1).should_retry
    assert not by_message(Permanent("404"), 1).should_retry
    assert not by_message(Permanent("1503"), 1).should_retry


# -- strategies in executions ----------------------------------------------------------


def always_failing(attempts: list[int], error: Exception) -> Any:
    def body(step: StepContext) -> None:
        attempts.append(step.attempt)
        raise error

    return body


@pytest.mark.anyio
async def test_retry_delays_are_checkpointed_and_each_retry_suspends() -> None:
    attempts: list[int] = []
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=Duration(2),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(
            always_failing(attempts, Transient("nope")),
            name="flaky",
            config=StepConfig(retry_strategy=strategy),
        )

    runner = LocalRunner(handler)
    start_time = runner.backend.now
    result = await runner.run()
    assert result.status == "FAILED"
    assert result.invocations == 3
    assert [o.status for o in result.outputs] == ["PENDING", "PENDING", "FAILED"]
    assert attempts == [1, 2, 3]
    retries = [u for u in sent_updates(runner.backend) if u.action is OperationAction.RETRY]
    assert [u.step_options.next_attempt_delay_seconds for u in retries] == [2, 6]  # type: ignore[union-attr]
    assert retries[0].error is not None
    assert retries[0].error.type == f"{__name__}.Transient"
    assert retries[0].error.message == "nope"
    assert runner.backend.now - start_time == timedelta(seconds=8)
    # The execution fails with the StepError the handler let escape.
    assert result.error is not None
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.StepError"
    assert result.error.message == "nope"
    (op,) = [o for o in result.operations if o.type is OperationType.STEP]
    assert op.status is OperationStatus.FAILED
    assert op.step_details is not None
    assert op.step_details.attempt == 3


@pytest.mark.anyio
async def test_a_retry_ends_the_invocation_pending_with_the_timer_set() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(
            always_failing([], Transient("x")),
            name="flaky",
            config=StepConfig(retry_strategy=RetryPresets.linear()),
        )

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert actions(backend) == [("STEP", "START", "flaky"), ("STEP", "RETRY", "flaky")]
    op = backend.executions[arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.PENDING
    assert op.step_details is not None
    assert op.step_details.next_attempt_timestamp == backend.now + timedelta(seconds=1)
    # Not due yet: a re-invocation now parks again without running the body.
    calls = len(backend.checkpoint_calls)
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert len(backend.checkpoint_calls) == calls


@pytest.mark.anyio
async def test_step_succeeds_after_retries_and_sees_attempt_numbers() -> None:
    attempts: list[int] = []

    def body(step: StepContext) -> str:
        attempts.append(step.attempt)
        if step.attempt < 3:
            raise Transient(f"attempt {step.attempt}")
        return f"ok on {step.attempt}"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(body, config=StepConfig(retry_strategy=RetryPresets.linear()))

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert result.result == "ok on 3"
    assert attempts == [1, 2, 3]


@pytest.mark.anyio
async def test_non_retryable_error_type_fails_at_once() -> None:
    attempts: list[int] = []
    config = StepConfig(
        retry_strategy=create_retry_strategy(RetryStrategyConfig(retryable_error_types=[Transient]))
    )
    caught: list[StepError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(always_failing(attempts, Permanent("bad input")), config=config)
        except StepError as exc:
            caught.append(exc)
            return "handled"
        return "unreachable"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "handled"
    assert result.invocations == 1
    assert attempts == [1]
    assert [a for _, a, _ in actions(runner.backend)] == ["START", "FAIL"]
    (error,) = caught
    assert type(error) is StepError
    assert error.error_type == f"{__name__}.Permanent"
    assert error.message == "bad input"


@pytest.mark.anyio
async def test_default_strategy_makes_six_attempts() -> None:
    attempts: list[int] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(always_failing(attempts, RuntimeError("down")))

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "FAILED"
    assert attempts == [1, 2, 3, 4, 5, 6]
    retries = [u for u in sent_updates(runner.backend) if u.action is OperationAction.RETRY]
    delays = [u.step_options.next_attempt_delay_seconds for u in retries]  # type: ignore[union-attr]
    assert len(delays) == 5
    for attempt, delay in enumerate(delays, start=1):
        assert 1 <= delay <= min(5 * 2 ** (attempt - 1), 60)


@pytest.mark.anyio
async def test_failed_step_raises_the_same_error_on_replay() -> None:
    seen: list[tuple[type[BaseException], str]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(
                always_failing([], ValueError("broken")),
                name="once",
                config=StepConfig(retry_strategy=RetryPresets.none()),
            )
        except StepError as exc:
            seen.append((type(exc), str(exc)))
        await ctx.wait(seconds=1)
        return "ok"

    result = await LocalRunner(handler).run()
    assert result.result == "ok"
    assert seen == [(StepError, "ValueError: broken")] * 2


# -- at-most-once and interrupted attempts --------------------------------------------


@pytest.mark.anyio
async def test_at_most_once_start_is_committed_before_the_body_runs() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    seen: list[tuple[OperationStatus, int]] = []

    async def charge(step: StepContext) -> str:
        op = backend.executions[arn].operations[step.operation_id]
        seen.append((op.status, len(backend.checkpoint_calls)))
        return "charged"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(
            charge,
            config=StepConfig(step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY),
        )

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"charged"'}
    assert seen == [(OperationStatus.STARTED, 1)]
    assert [[u.action for u in c.updates] for c in backend.checkpoint_calls] == [
        [OperationAction.START],
        [OperationAction.SUCCEED],
    ]


async def record_started_step(backend: MemoryBackend, arn: str, name: str) -> None:
    """Put the backend in the state a crash mid-attempt leaves: step 1 STARTED."""
    execution = backend.executions[arn]
    await backend.checkpoint(
        CheckpointRequest(
            durable_execution_arn=arn,
            checkpoint_token=execution.token,
            updates=(
                OperationUpdate(
                    id=operation_id(None, 1),
                    type=OperationType.STEP,
                    action=OperationAction.START,
                    name=name,
                    sub_type=OperationSubType.STEP,
                ),
            ),
        ),
        logger=logging.getLogger("test"),
    )
    backend.checkpoint_calls.clear()


@pytest.mark.anyio
async def test_interrupted_at_most_once_attempt_is_not_rerun() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    await record_started_step(backend, arn, "charge")
    runs: list[int] = []
    caught: list[StepError] = []

    def charge(step: StepContext) -> str:
        runs.append(step.attempt)
        return "charged"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            return await ctx.step(
                charge,
                config=StepConfig(
                    retry_strategy=RetryPresets.none(),
                    step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
                ),
            )
        except StepInterruptedError as exc:
            caught.append(exc)
            return "interrupted"

    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "interrupted"
    assert runs == []
    (error,) = caught
    assert error.error_type == "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
    assert "charge" in str(error)
    assert actions(backend) == [("STEP", "FAIL", "charge")]


@pytest.mark.anyio
async def test_interrupted_at_most_once_attempt_retries_per_strategy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    await record_started_step(backend, arn, "charge")
    runs: list[int] = []

    def charge(step: StepContext) -> str:
        runs.append(step.attempt)
        return "charged"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(
            charge,
            config=StepConfig(
                retry_strategy=RetryPresets.linear(),
                step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
            ),
        )

    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == "charged"
    assert runs == [2]  # attempt 1 was the interrupted one
    assert actions(backend) == [
        ("STEP", "RETRY", "charge"),
        ("STEP", "START", "charge"),
        ("STEP", "SUCCEED", "charge"),
    ]
    retry = sent_updates(backend)[0]
    assert retry.error is not None
    assert retry.error.type == "aws_durable_execution_sdk_python.exceptions.StepInterruptedError"
    # The retry's warning names the type the step records.
    [warning] = [r for r in caplog.records if r.name == "durable_async.failures"]
    assert retry.error.type in warning.getMessage()


@pytest.mark.anyio
async def test_interrupted_at_least_once_attempt_is_rerun_without_a_new_start() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    await record_started_step(backend, arn, "charge")
    runs: list[int] = []

    async def charge(step: StepContext) -> str:
        runs.append(step.attempt)
        return "charged"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(charge)

    result = await LocalRunner(handler, backend).resume(arn)
    assert result.result == "charged"
    assert runs == [1]
    assert actions(backend) == [("STEP", "SUCCEED", "charge")]


# -- where bodies run -----------------------------------------------------------------

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


@pytest.mark.anyio
async def test_sync_bodies_run_in_threads_and_async_bodies_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def sync_body(_: StepContext) -> None:
        seen["sync"] = threading.get_ident()

    async def async_body(_: StepContext) -> None:
        seen["async"] = threading.get_ident()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.step(sync_body)
        await ctx.step(async_body)

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert seen["async"] == loop_thread
    assert seen["sync"] != loop_thread


@pytest.mark.anyio
async def test_sync_bodies_see_context_variables() -> None:
    seen: list[str] = []

    def sync_body(_: StepContext) -> str:
        seen.append(request_id.get())
        return request_id.get()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        request_id.set(event["rid"])
        return await ctx.step(sync_body)

    result = await LocalRunner(handler).run({"rid": "req-42"})
    assert result.result == "req-42"
    assert seen == ["req-42"]
    assert request_id.get() == "unset"  # the handler's context did not leak out


@pytest.mark.anyio
async def test_sync_body_returning_an_awaitable_is_awaited_on_the_loop() -> None:
    async def later() -> str:
        return "awaited"

    def factory(_: StepContext) -> Any:
        return later()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(factory)

    assert (await LocalRunner(handler).run()).result == "awaited"


@pytest.mark.anyio
async def test_callable_object_with_async_call_runs_on_the_loop() -> None:
    loop_thread = threading.get_ident()

    class Fetch:
        async def __call__(self, step: StepContext, x: int) -> tuple[int, int]:
            await asyncio.sleep(0)
            return x * 2, threading.get_ident()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        value, thread = await ctx.step(Fetch(), 21, name="fetch")
        return [value, int(thread == loop_thread)]

    assert (await LocalRunner(handler).run()).result == [42, 1]


@pytest.mark.anyio
async def test_a_failed_step_raises_the_same_error_and_cause_on_replay() -> None:
    """First run and replay raise a StepError whose cause is rebuilt from the record."""
    seen: list[tuple[str | None, str | None, str | None, str | None]] = []

    async def broken(step: StepContext) -> None:
        raise KeyError("missing sku")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(broken, config=StepConfig(retry_strategy=RetryPresets.none()))
        except StepError as failure:
            cause = failure.__cause__
            assert isinstance(cause, DurableOperationError)
            seen.append((failure.error_type, failure.message, cause.error_type, cause.message))
        await ctx.wait(seconds=1)
        return "done"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert len(seen) == 2
    assert seen[0] == seen[1] == ("KeyError", "'missing sku'", "KeyError", "'missing sku'")


def test_retryable_errors_given_one_string_is_not_split_into_characters() -> None:
    strategy = create_retry_strategy(RetryStrategyConfig(retryable_errors="Timeout"))
    decision = strategy(ValueError("invalid input"), 1)
    assert not decision.should_retry
