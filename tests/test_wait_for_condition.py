"""wait_for_condition: durable polling, checkpointed state, failures, wait strategies."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from support import actions, invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    Duration,
    JitterStrategy,
    SerDesContext,
    ValidationError,
    WaitForConditionCheckContext,
    WaitForConditionDecision,
    WaitForConditionError,
    WaitStrategyConfig,
    create_wait_strategy,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationSubType,
    OperationType,
)
from durable_async.testing import LocalRunner, MemoryBackend


class ProbeFailed(Exception):
    pass


def until(limit: int, **kwargs: Any) -> WaitStrategyConfig[int]:
    """Poll while the state is below ``limit``; no jitter unless asked."""
    kwargs.setdefault("jitter_strategy", JitterStrategy.NONE)
    return WaitStrategyConfig(should_continue_polling=lambda s: s < limit, **kwargs)


# -- the strategy as a pure function --------------------------------------------------------


def test_backoff_without_jitter_is_exact_and_capped() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda _: True,
            max_attempts=10,
            initial_delay=Duration(5),
            max_delay=Duration(30),
            backoff_rate=1.5,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    delays = [strategy(None, attempt).delay_seconds for attempt in range(1, 8)]
    # 5, 7.5, 11.25, 16.875, 25.3125, 37.97 -> capped at 30; fractions round up.
    assert delays == [5, 8, 12, 17, 26, 30, 30]
    assert all(strategy(None, attempt).should_continue for attempt in range(1, 10))


def test_defaults() -> None:
    config = WaitStrategyConfig[Any](should_continue_polling=lambda _: True)
    assert config.max_attempts == 60
    assert config.initial_delay == Duration(5)
    assert config.max_delay == Duration(300)
    assert config.backoff_rate == 1.5
    assert config.jitter_strategy is JitterStrategy.FULL


def test_full_jitter_stays_within_one_second_and_the_cap() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda _: True,
            initial_delay=Duration(10),
            backoff_rate=2,
            max_delay=Duration(60),
        )
    )
    for attempt, cap in [(1, 10), (2, 20), (3, 40), (4, 60), (5, 60)]:
        delays = {strategy(None, attempt).delay_seconds for _ in range(300)}
        assert min(delays) >= 1
        assert max(delays) <= cap
        assert len(delays) > 1  # it is really random


def test_half_jitter_stays_in_the_upper_half() -> None:
    strategy = create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=lambda _: True,
            initial_delay=Duration(20),
            jitter_strategy=JitterStrategy.HALF,
        )
    )
    delays = {strategy(None, 1).delay_seconds for _ in range(300)}
    assert min(delays) >= 10
    assert max(delays) <= 20


def test_stop_decision_and_attempt_limit() -> None:
    strategy = create_wait_strategy(until(3, max_attempts=2))
    stop = strategy(3, 2)
    assert stop == WaitForConditionDecision.stop_polling()
    assert not stop.should_continue
    # Satisfied on the last attempt (or later) still stops without an error.
    assert not strategy(5, 99).should_continue
    assert strategy(0, 1) == WaitForConditionDecision.continue_waiting(Duration(5))
    with pytest.raises(WaitForConditionError, match="2 attempts"):
        strategy(0, 2)


def test_minimum_delay_is_one_second() -> None:
    strategy = create_wait_strategy(until(1, initial_delay=Duration(0)))
    assert strategy(0, 1).delay_seconds == 1


# -- polling in executions ------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_poll_checkpoints_its_state_and_suspends() -> None:
    checks: list[tuple[int, int]] = []
    seen: list[int] = []

    async def check(state: int, context: WaitForConditionCheckContext) -> int:
        checks.append((state, context.attempt))
        return state + 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        value = await ctx.wait_for_condition(
            check,
            initial_state=0,
            strategy=until(3, initial_delay=Duration(2), backoff_rate=2),
            name="poll",
        )
        seen.append(value)
        await ctx.wait(seconds=1)
        return value

    runner = LocalRunner(handler)
    began = runner.backend.now
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == 3
    assert result.invocations == 4  # three checks, then the wait
    assert checks == [(0, 1), (1, 2), (2, 3)]
    assert seen == [3, 3]  # the replay after the wait does not check again
    assert runner.backend.now - began == timedelta(seconds=2 + 4 + 1)

    steps = [u for u in sent_updates(runner.backend) if u.type is OperationType.STEP]
    assert [(u.action, u.payload) for u in steps] == [
        (OperationAction.START, None),
        (OperationAction.RETRY, "1"),
        (OperationAction.START, None),
        (OperationAction.RETRY, "2"),
        (OperationAction.START, None),
        (OperationAction.SUCCEED, "3"),
    ]
    retries = [u for u in steps if u.action is OperationAction.RETRY]
    assert [u.step_options.next_attempt_delay_seconds for u in retries] == [2, 4]  # type: ignore[union-attr]
    assert {u.sub_type for u in steps} == {OperationSubType.WAIT_FOR_CONDITION}
    assert {u.name for u in steps} == {"poll"}
    assert {u.id for u in steps} == {operation_id(None, 1)}
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.SUCCEEDED
    assert op.step_details is not None
    assert op.step_details.result == "3"


@pytest.mark.anyio
async def test_pending_poll_is_not_checked_before_it_is_due() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    checks: list[int] = []

    def check(state: int, context: WaitForConditionCheckContext) -> int:
        checks.append(state)
        return state + 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.wait_for_condition(
            check, initial_state=10, strategy=until(12, initial_delay=Duration(30))
        )

    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert checks == [10]
    calls = len(backend.checkpoint_calls)
    assert await invoke_once(handler, backend, arn) == {"Status": "PENDING"}
    assert checks == [10]
    assert len(backend.checkpoint_calls) == calls
    backend.advance(30)
    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": "12"}
    assert checks == [10, 11]


@pytest.mark.anyio
async def test_satisfied_first_check_does_not_suspend() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.wait_for_condition(
            lambda state, _: state + "!",
            initial_state="ready",
            strategy=WaitStrategyConfig(should_continue_polling=lambda s: not s.endswith("!")),
        )

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '"ready!"'}
    assert actions(backend) == [
        ("STEP", "START", None),
        ("STEP", "SUCCEED", None),
    ]


@pytest.mark.anyio
async def test_custom_strategy_callable_and_zero_delay() -> None:
    decisions: list[tuple[int, int]] = []

    def strategy(state: int, attempt: int) -> WaitForConditionDecision:
        decisions.append((state, attempt))
        if state >= 2:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration(0))

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.wait_for_condition(lambda s, _: s + 1, initial_state=0, strategy=strategy)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == 2
    assert decisions == [(1, 1), (2, 2)]
    retries = [u for u in sent_updates(runner.backend) if u.action is OperationAction.RETRY]
    # The service's minimum delay is one second.
    assert [u.step_options.next_attempt_delay_seconds for u in retries] == [1]  # type: ignore[union-attr]


# -- failures --------------------------------------------------------------------------------


def describe(error: WaitForConditionError) -> tuple[Any, ...]:
    return (type(error), error.error_type, error.message)


@pytest.mark.anyio
async def test_raising_check_fails_the_condition_identically_on_replay() -> None:
    checks: list[int] = []
    seen: list[tuple[Any, ...]] = []

    async def check(state: int, context: WaitForConditionCheckContext) -> int:
        checks.append(context.attempt)
        if context.attempt == 2:
            raise ProbeFailed("probe is down")
        return state + 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait_for_condition(check, initial_state=0, strategy=until(5), name="probe")
        except WaitForConditionError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "handled"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "handled"
    assert checks == [1, 2]
    expected = (WaitForConditionError, f"{__name__}.ProbeFailed", "probe is down")
    assert seen == [expected, expected]
    fail = [u for u in sent_updates(runner.backend) if u.type is OperationType.STEP][-1]
    assert fail.action is OperationAction.FAIL
    assert fail.error is not None
    assert (fail.error.type, fail.error.message) == (f"{__name__}.ProbeFailed", "probe is down")
    op = runner.backend.executions[result.arn].operations[operation_id(None, 1)]
    assert op.status is OperationStatus.FAILED


@pytest.mark.anyio
async def test_exhausted_attempts_fail_the_condition() -> None:
    checks: list[int] = []
    seen: list[tuple[Any, ...]] = []

    def check(state: int, context: WaitForConditionCheckContext) -> int:
        checks.append(context.attempt)
        return state

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.wait_for_condition(check, initial_state=0, strategy=until(1, max_attempts=3))
        except WaitForConditionError as exc:
            seen.append(describe(exc))
        await ctx.wait(seconds=1)
        return "gave up"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.result == "gave up"
    assert checks == [1, 2, 3]
    expected = (
        WaitForConditionError,
        "aws_durable_execution_sdk_python.exceptions.WaitForConditionError",
        "the condition was not met within 3 attempts",
    )
    assert seen == [expected, expected]
    assert [a for t, a, _ in actions(runner.backend) if t == "STEP"][-1] == "FAIL"


@pytest.mark.anyio
async def test_unhandled_condition_failure_fails_the_execution() -> None:
    def check(state: int, context: WaitForConditionCheckContext) -> int:
        raise ProbeFailed("no")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.wait_for_condition(check, initial_state=0, strategy=until(1))

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "aws_durable_execution_sdk_python.exceptions.WaitForConditionError"
    assert result.error.message == "no"


@pytest.mark.anyio
@pytest.mark.parametrize(("check", "strategy"), [(None, until(1)), (lambda s, c: s, None)])
async def test_check_and_strategy_must_be_callable(check: Any, strategy: Any) -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[ValidationError] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.wait_for_condition(check, initial_state=0, strategy=strategy).close()
        except ValidationError as exc:
            caught.append(exc)
        return "ok"

    assert await invoke_once(handler, backend, arn) == {"Status": "SUCCEEDED", "Result": '"ok"'}
    assert len(caught) == 1
    assert [u for u in sent_updates(backend) if u.type is OperationType.STEP] == []


# -- serdes, threads, context ------------------------------------------------------------------


class StateSerDes:
    """Stores a dict as ``k=v;k=v`` with integer values."""

    def __init__(self) -> None:
        self.contexts: list[SerDesContext] = []

    def serialize(self, value: dict[str, int], context: SerDesContext) -> str:
        self.contexts.append(context)
        return ";".join(f"{k}={v}" for k, v in sorted(value.items()))

    async def deserialize(self, data: str, context: SerDesContext) -> dict[str, int]:
        pairs = (item.split("=") for item in data.split(";"))
        return {k: int(v) for k, v in pairs}


@pytest.mark.anyio
async def test_custom_serdes_stores_the_state() -> None:
    serdes = StateSerDes()
    received: list[dict[str, int]] = []

    def check(state: dict[str, int], context: WaitForConditionCheckContext) -> dict[str, int]:
        received.append(state)
        return {**state, "polls": state["polls"] + 1}

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        state = await ctx.wait_for_condition(
            check,
            initial_state={"polls": 0, "job": 9},
            strategy=WaitStrategyConfig(
                should_continue_polling=lambda s: s["polls"] < 2,
                jitter_strategy=JitterStrategy.NONE,
            ),
            serdes=serdes,
        )
        return json.dumps(state, sort_keys=True)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert json.loads(result.result) == {"job": 9, "polls": 2}
    assert received == [{"job": 9, "polls": 0}, {"job": 9, "polls": 1}]
    payloads = [u.payload for u in sent_updates(runner.backend) if u.type is OperationType.STEP]
    assert [p for p in payloads if p is not None] == ["job=9;polls=1", "job=9;polls=2"]
    assert serdes.contexts[0] == SerDesContext(operation_id(None, 1), result.arn)


@pytest.mark.anyio
async def test_sync_check_runs_in_a_worker_thread_and_async_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    threads: dict[str, int] = {}

    def sync_check(state: int, context: WaitForConditionCheckContext) -> int:
        threads["sync"] = threading.get_ident()
        return state + 1

    async def async_check(state: int, context: WaitForConditionCheckContext) -> int:
        threads["async"] = threading.get_ident()
        return state + 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        a = await ctx.wait_for_condition(sync_check, initial_state=0, strategy=until(1))
        b = await ctx.wait_for_condition(async_check, initial_state=0, strategy=until(1))
        return [a, b]

    result = await LocalRunner(handler).run()
    assert result.result == [1, 1]
    assert threads["sync"] != loop_thread
    assert threads["async"] == loop_thread


@pytest.mark.anyio
async def test_check_logger_carries_the_attempt() -> None:
    records: list[tuple[Any, ...]] = []

    def check(state: int, context: WaitForConditionCheckContext) -> int:
        records.append((context.attempt, dict(context.logger.extra)))  # type: ignore[arg-type]
        return state + 1

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.wait_for_condition(check, initial_state=0, strategy=until(2), name="poll")

    result = await LocalRunner(handler).run()
    assert result.result == 2
    assert [attempt for attempt, _ in records] == [1, 2]
    for attempt, fields in records:
        assert fields["attempt"] == attempt
        assert fields["operationName"] == "poll"
        assert fields["operationId"] == operation_id(None, 1)
        assert fields["executionArn"] == result.arn
