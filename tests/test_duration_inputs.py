"""Durations are accepted the same way everywhere, and bad ones are rejected when given.

Every duration-taking config or decision takes a ``Duration``, a ``timedelta`` or a number
of seconds, as ``ctx.wait`` does, and holds a ``Duration`` (callback timeouts: whole
seconds) from construction on; a bad value raises ``ValidationError`` naming the field
then, never an ``AttributeError`` in the middle of an execution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest
from support import sent_updates

from durable_async import (
    CallbackConfig,
    DurableContext,
    Duration,
    JitterStrategy,
    LinearRetryStrategyConfig,
    OperationType,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    ValidationError,
    WaitForCallbackConfig,
    WaitForConditionCheckContext,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_retry_strategy,
    durable_execution,
)
from durable_async._duration import wait_seconds
from durable_async._wire.enums import OperationAction, OperationSubType
from durable_async.testing import LocalRunner

Build = Callable[[Any], Any]


def _poll_forever(_: object) -> bool:
    return True


# (label, build the object from a duration, read the field back, field name in errors)
DURATION_FIELDS: list[tuple[str, Build, Build, str]] = [
    (
        "RetryStrategyConfig.initial_delay",
        lambda v: RetryStrategyConfig(initial_delay=v),
        lambda o: o.initial_delay,
        "RetryStrategyConfig.initial_delay",
    ),
    (
        "RetryStrategyConfig.max_delay",
        lambda v: RetryStrategyConfig(max_delay=v),
        lambda o: o.max_delay,
        "RetryStrategyConfig.max_delay",
    ),
    (
        "LinearRetryStrategyConfig.initial_delay",
        lambda v: LinearRetryStrategyConfig(initial_delay=v),
        lambda o: o.initial_delay,
        "LinearRetryStrategyConfig.initial_delay",
    ),
    (
        "LinearRetryStrategyConfig.increment",
        lambda v: LinearRetryStrategyConfig(increment=v),
        lambda o: o.increment,
        "LinearRetryStrategyConfig.increment",
    ),
    (
        "LinearRetryStrategyConfig.max_delay",
        lambda v: LinearRetryStrategyConfig(max_delay=v),
        lambda o: o.max_delay,
        "LinearRetryStrategyConfig.max_delay",
    ),
    (
        "WaitStrategyConfig.initial_delay",
        lambda v: WaitStrategyConfig(should_continue_polling=_poll_forever, initial_delay=v),
        lambda o: o.initial_delay,
        "WaitStrategyConfig.initial_delay",
    ),
    (
        "WaitStrategyConfig.max_delay",
        lambda v: WaitStrategyConfig(should_continue_polling=_poll_forever, max_delay=v),
        lambda o: o.max_delay,
        "WaitStrategyConfig.max_delay",
    ),
    (
        "RetryDecision.retry",
        RetryDecision.retry,
        lambda o: o.delay,
        "RetryDecision.delay",
    ),
    (
        "RetryDecision()",
        lambda v: RetryDecision(True, v),
        lambda o: o.delay,
        "RetryDecision.delay",
    ),
    (
        "WaitForConditionDecision.continue_waiting",
        WaitForConditionDecision.continue_waiting,
        lambda o: o.delay,
        "WaitForConditionDecision.delay",
    ),
    (
        "WaitForConditionDecision()",
        lambda v: WaitForConditionDecision(True, v),
        lambda o: o.delay,
        "WaitForConditionDecision.delay",
    ),
]

TIMEOUT_FIELDS: list[tuple[str, Build, Build, str]] = [
    (
        "CallbackConfig.timeout",
        lambda v: CallbackConfig(timeout=v),
        lambda o: o.timeout,
        "CallbackConfig.timeout",
    ),
    (
        "CallbackConfig.heartbeat_timeout",
        lambda v: CallbackConfig(heartbeat_timeout=v),
        lambda o: o.heartbeat_timeout,
        "CallbackConfig.heartbeat_timeout",
    ),
    (
        "WaitForCallbackConfig.timeout",
        lambda v: WaitForCallbackConfig(timeout=v),
        lambda o: o.timeout,
        "WaitForCallbackConfig.timeout",
    ),
    (
        "WaitForCallbackConfig.heartbeat_timeout",
        lambda v: WaitForCallbackConfig(heartbeat_timeout=v),
        lambda o: o.heartbeat_timeout,
        "WaitForCallbackConfig.heartbeat_timeout",
    ),
]


def _cases(fields: list[tuple[str, Build, Build, str]]) -> list[Any]:
    return [pytest.param(build, read, name, id=label) for label, build, read, name in fields]


EQUIVALENT_30_SECONDS = [
    pytest.param(30, id="int"),
    pytest.param(30.0, id="float"),
    pytest.param(timedelta(seconds=30), id="timedelta"),
    pytest.param(Duration(30), id="Duration"),
    pytest.param(Duration.from_minutes(0.5), id="Duration.from_minutes"),
]

BAD_DURATIONS = [
    pytest.param(-1, "negative", id="negative-int"),
    pytest.param(-0.5, "negative", id="negative-fraction"),
    pytest.param(timedelta(seconds=-1), "negative", id="negative-timedelta"),
    pytest.param(math.nan, "finite", id="nan"),
    pytest.param(math.inf, "finite", id="inf"),
    pytest.param(10**400, "finite", id="too-large-int"),
    pytest.param(True, "expected a Duration", id="bool"),
    pytest.param("5", "expected a Duration", id="str"),
    pytest.param([5], "expected a Duration", id="list"),
]


# -- every duration field takes the same inputs ----------------------------------------------


@pytest.mark.parametrize("value", EQUIVALENT_30_SECONDS)
@pytest.mark.parametrize(("build", "read", "name"), _cases(DURATION_FIELDS))
def test_duration_fields_hold_the_same_duration_for_numbers_timedeltas_and_durations(
    build: Build, read: Build, name: str, value: Any
) -> None:
    held = read(build(value))
    assert type(held) is Duration
    assert held == Duration(30)
    assert build(value) == build(Duration(30))


@pytest.mark.parametrize("value", EQUIVALENT_30_SECONDS)
@pytest.mark.parametrize(("build", "read", "name"), _cases(TIMEOUT_FIELDS))
def test_callback_timeouts_hold_the_same_whole_seconds_for_every_input_type(
    build: Build, read: Build, name: str, value: Any
) -> None:
    held = read(build(value))
    assert type(held) is int
    assert held == 30


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        pytest.param(1.2, 2, id="float"),
        pytest.param(timedelta(milliseconds=1200), 2, id="timedelta"),
        pytest.param(0.5, 1, id="sub-second"),
        pytest.param(0, 0, id="zero"),
    ],
)
@pytest.mark.parametrize(("build", "read", "name"), _cases(DURATION_FIELDS))
def test_fractional_delays_round_up_to_whole_seconds_like_ctx_wait(
    build: Build, read: Build, name: str, value: Any, seconds: int
) -> None:
    assert read(build(value)) == Duration(seconds)


@pytest.mark.parametrize(("build", "read", "name"), _cases(TIMEOUT_FIELDS))
def test_callback_timeout_none_means_no_timeout(build: Build, read: Build, name: str) -> None:
    assert read(build(None)) == 0


def test_configs_built_from_different_input_types_compare_equal() -> None:
    assert RetryStrategyConfig(initial_delay=1, max_delay=10) == RetryStrategyConfig(
        initial_delay=Duration(1), max_delay=timedelta(seconds=10)
    )
    assert LinearRetryStrategyConfig(initial_delay=2.0, increment=1) == (
        LinearRetryStrategyConfig(initial_delay=timedelta(seconds=2), increment=Duration(1))
    )
    assert WaitForConditionDecision.continue_waiting(3) == WaitForConditionDecision(
        True, Duration(3)
    )
    assert RetryDecision.retry(timedelta(minutes=1)) == RetryDecision.retry(60)


def test_evolving_a_config_converts_the_new_duration_too() -> None:
    config = attrs.evolve(RetryStrategyConfig(), initial_delay=2, max_delay=timedelta(minutes=1))
    assert config.initial_delay == Duration(2)
    assert config.max_delay == Duration(60)


def test_fixed_preset_takes_seconds_and_timedeltas_like_durations() -> None:
    delays = {
        RetryPresets.fixed(interval)(RuntimeError(), 1).delay
        for interval in (7, 7.0, timedelta(seconds=7), Duration(7))
    }
    assert delays == {Duration(7)}
    # Zero is a delay, not "use the default": the service's minimum of 1 s applies.
    assert RetryPresets.fixed(0)(RuntimeError(), 1).delay == Duration(1)
    assert RetryPresets.fixed()(RuntimeError(), 1).delay == Duration(5)


def test_number_delays_drive_the_strategy_without_attribute_errors() -> None:
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5,
            initial_delay=1,
            max_delay=10,
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    assert [strategy(RuntimeError(), a).delay_seconds for a in range(1, 5)] == [1, 3, 9, 10]
    assert WaitForConditionDecision.continue_waiting(1).delay_seconds == 1
    assert RetryDecision.retry(2.5).delay_seconds == 3


# -- bad values are rejected at construction, naming the field --------------------------------


@pytest.mark.parametrize(("value", "reason"), BAD_DURATIONS)
@pytest.mark.parametrize(("build", "read", "name"), _cases(DURATION_FIELDS + TIMEOUT_FIELDS))
def test_bad_durations_are_rejected_at_construction_naming_the_field(
    build: Build, read: Build, name: str, value: Any, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        build(value)
    assert str(caught.value).startswith(f"{name}: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(("build", "read", "name"), _cases(DURATION_FIELDS))
def test_none_is_not_a_delay(build: Build, read: Build, name: str) -> None:
    with pytest.raises(ValidationError, match=f"^{name}: expected a Duration"):
        build(None)


@pytest.mark.parametrize(("value", "reason"), BAD_DURATIONS)
def test_fixed_preset_rejects_bad_intervals_when_built(value: Any, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        RetryPresets.fixed(value)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(1.5, "whole seconds", id="fraction"),
        pytest.param("5", "whole seconds", id="str"),
        pytest.param(True, "whole seconds", id="bool"),
        pytest.param(-1, "negative", id="negative"),
    ],
)
def test_duration_constructor_takes_only_non_negative_whole_seconds(value: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Duration(value)


def test_negative_fractions_are_rejected_instead_of_rounding_to_zero() -> None:
    with pytest.raises(ValidationError, match="negative"):
        Duration.coerce(-0.5)
    with pytest.raises(ValidationError, match="negative"):
        Duration.of(seconds=-0.4)
    with pytest.raises(ValidationError, match="negative"):
        wait_seconds(-0.5)
    with pytest.raises(ValidationError, match="negative"):
        wait_seconds(timedelta(seconds=-5))


def test_ctx_wait_keeps_its_one_second_minimum() -> None:
    assert wait_seconds(1.2) == 2
    assert wait_seconds(Duration(1)) == 1
    for too_short in (0, 0.5, timedelta(milliseconds=10), Duration(0)):
        with pytest.raises(ValidationError, match="at least 1 second"):
            wait_seconds(too_short)


# -- end to end -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_number_delays_run_a_retried_step_and_a_polled_condition_to_completion() -> None:
    step_attempts: list[int] = []
    checks: list[int] = []

    def flaky(step: StepContext) -> str:
        step_attempts.append(step.attempt)
        if step.attempt < 3:
            raise RuntimeError("not yet")
        return "done"

    def check(state: int, context: WaitForConditionCheckContext) -> int:
        checks.append(context.attempt)
        return state + 1

    def poll_each_second(state: int, attempt: int) -> WaitForConditionDecision:
        if state >= 3:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(1)

    retry = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3,
            initial_delay=1,
            max_delay=10,
            backoff_rate=2,
            jitter_strategy=JitterStrategy.NONE,
        )
    )

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        stepped = await ctx.step(flaky, name="flaky", config=StepConfig(retry_strategy=retry))
        polled = await ctx.wait_for_condition(
            check, initial_state=0, strategy=poll_each_second, name="poll"
        )
        return [stepped, polled]

    runner = LocalRunner(handler)
    began = runner.backend.now
    result = await runner.run()

    assert result.status == "SUCCEEDED"
    assert result.result == ["done", 3]
    assert step_attempts == [1, 2, 3]
    assert checks == [1, 2, 3]
    retries = [u for u in sent_updates(runner.backend) if u.action is OperationAction.RETRY]
    step_delays = [
        u.step_options.next_attempt_delay_seconds  # type: ignore[union-attr]
        for u in retries
        if u.name == "flaky"
    ]
    poll_delays = [
        u.step_options.next_attempt_delay_seconds  # type: ignore[union-attr]
        for u in retries
        if u.sub_type is OperationSubType.WAIT_FOR_CONDITION
    ]
    assert step_delays == [1, 2]
    assert poll_delays == [1, 1]
    assert runner.backend.now - began == timedelta(seconds=1 + 2 + 1 + 1)


@pytest.mark.anyio
async def test_custom_strategies_may_return_decisions_with_timedelta_delays() -> None:
    def retry_after_two_seconds(error: Exception, attempts_made: int) -> RetryDecision:
        if attempts_made >= 2:
            return RetryDecision.no_retry()
        return RetryDecision.retry(timedelta(seconds=2))

    def flaky(step: StepContext) -> int:
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return step.attempt

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(flaky, config=StepConfig(retry_strategy=retry_after_two_seconds))

    runner = LocalRunner(handler)
    began = runner.backend.now
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert result.result == 2
    assert runner.backend.now - began == timedelta(seconds=2)


_NOT_FINITE = {
    "wait-nan": lambda ctx: ctx.wait(float("nan")),
    "wait-inf": lambda ctx: ctx.wait(float("inf")),
    "wait-seconds-nan": lambda ctx: ctx.wait(seconds=float("nan")),
    "callback-timeout-inf": lambda ctx: ctx.create_callback(timeout=float("inf")),
}


@pytest.mark.parametrize("call", _NOT_FINITE.values(), ids=_NOT_FINITE.keys())
@pytest.mark.anyio
async def test_non_finite_duration_raises_validation_error(call: Any) -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        try:
            call(ctx)
        except ValidationError:
            return "ValidationError"
        except Exception as error:
            return type(error).__name__
        return "accepted"

    result = await LocalRunner(handler).run()
    assert result.result == "ValidationError"


@pytest.mark.anyio
async def test_wait_duration_is_not_inflated_by_float_noise() -> None:
    """8.3 minutes is 498 seconds, not 499: float noise must not round a whole second up."""
    assert Duration.from_minutes(8.3).seconds == 498
    assert Duration.from_hours(0.07).seconds == 252

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        await ctx.wait(minutes=8.3)

    runner = LocalRunner(handler)
    await runner.run()
    (start_update,) = [u for u in sent_updates(runner.backend) if u.type is OperationType.WAIT]
    assert start_update.wait_options is not None
    assert start_update.wait_options.wait_seconds == 498
