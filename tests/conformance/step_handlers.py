"""Conformance suite ``step`` (1-x): durable steps, written as a user would write them."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from durable_async import (
    DurableContext,
    Duration,
    JitterStrategy,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    SerDesContext,
    StepConfig,
    StepContext,
    StepError,
    StepSemantics,
    create_retry_strategy,
    durable_execution,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


class TransientError(Exception):
    """An error worth retrying."""


async def greet(step: StepContext, name: str) -> str:
    return f"Hello, {name}!"


@durable_execution
async def basic(event: str, ctx: DurableContext) -> str:
    """1-1: one step."""
    return await ctx.step(greet, event)


@durable_execution
async def named(event: str, ctx: DurableContext) -> str:
    """1-2: one step with a custom name."""
    return await ctx.step(greet, event, name="custom_step_name")


@durable_execution
async def chained(event: Any, ctx: DurableContext) -> str:
    """1-3: the second step consumes the first's result."""

    async def first(step: StepContext) -> str:
        return "first"

    async def second(step: StepContext, previous: str) -> str:
        return f"{previous}_second"

    return await ctx.step(second, await ctx.step(first))


@durable_execution
async def complex_object(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """1-4: a nested object survives the default serdes."""

    async def build_response(step: StepContext) -> dict[str, Any]:
        tags = list(event["tags"])
        return {"user": {"name": event["name"], "tags": tags}, "count": len(tags)}

    return await ctx.step(build_response)


@durable_execution
async def null_result(event: Any, ctx: DurableContext) -> None:
    """1-5: a step returning None."""

    async def nothing(step: StepContext) -> None:
        return None

    return await ctx.step(nothing)


class UpperCaseSerDes:
    """Stores strings upper-cased."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return json.dumps(value.upper())

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return str(json.loads(data))


@durable_execution
async def custom_serdes(event: str, ctx: DurableContext) -> str:
    """1-6: a per-step serdes decides what is stored and returned."""

    async def echo(step: StepContext) -> str:
        return event

    return await ctx.step(echo, config=StepConfig(serdes=UpperCaseSerDes()))


@durable_execution
async def logging_step(event: str, ctx: DurableContext) -> str:
    """1-7: the step logger writes JSON lines tagged with the execution."""

    async def greet_logged(step: StepContext, name: str) -> str:
        step.logger.info("Greeting step started for: %s", name)
        result = f"Hello, {name}!"
        step.logger.info("Greeting step completed with: %s", result)
        return result

    return await ctx.step(greet_logged, event)


@durable_execution
async def step_then_wait(event: Any, ctx: DurableContext) -> str:
    """1-8: the step is not re-run when the handler replays after the wait."""

    async def compute(step: StepContext) -> str:
        return "computed"

    value = await ctx.step(compute)
    await ctx.wait(seconds=2)
    return value


@durable_execution
async def cached_step(event: Any, ctx: DurableContext) -> str:
    """1-9: a replayed step returns its recorded result."""

    async def fetch(step: StepContext) -> str:
        return "cached_value"

    value = await ctx.step(fetch)
    await ctx.wait(seconds=1)
    return value


@durable_execution
async def failure_caught_then_wait(event: Any, ctx: DurableContext) -> str:
    """1-10: a failed step re-raises from history on replay and is caught again."""

    async def fail(step: StepContext) -> str:
        step.logger.info("step executed")
        raise RuntimeError("permanent failure")

    try:
        await ctx.step(fail, config=NO_RETRY)
    except StepError as error:
        ctx.logger.info("caught %s", error)
    await ctx.wait(seconds=1)
    return "completed"


@durable_execution
async def retry_then_succeed(event: Any, ctx: DurableContext) -> str:
    """1-11: the step context's attempt number drives the outcome."""

    async def unreliable(step: StepContext) -> str:
        if step.attempt < 2:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3, initial_delay=Duration(1), jitter_strategy=JitterStrategy.NONE
        )
    )
    return await ctx.step(unreliable, config=StepConfig(retry_strategy=strategy))


@durable_execution
async def retry_exhausted(event: Any, ctx: DurableContext) -> str:
    """1-12: four attempts one second apart, then the execution fails."""

    async def always_fail(step: StepContext) -> str:
        raise RuntimeError(f"attempt {step.attempt} failed")

    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=4,
            initial_delay=Duration(1),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return await ctx.step(always_fail, config=StepConfig(retry_strategy=strategy))


async def _fail_twice(step: StepContext) -> str:
    if step.attempt <= 2:
        raise RuntimeError(f"attempt {step.attempt} failed")
    return "succeeded"


@durable_execution
async def default_retry(event: Any, ctx: DurableContext) -> str:
    """1-13: no strategy given, so the SDK default (full jitter) applies."""
    return await ctx.step(_fail_twice)


@durable_execution
async def custom_backoff(event: Any, ctx: DurableContext) -> str:
    """1-14: 2 s initial delay, x3 backoff, no jitter: delays 2 s then 6 s."""
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration(2),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return await ctx.step(_fail_twice, config=StepConfig(retry_strategy=strategy))


def retry_transient_only(error: Exception, attempts_made: int) -> RetryDecision:
    if isinstance(error, TransientError) and attempts_made < 3:
        return RetryDecision.retry(Duration(1))
    return RetryDecision.no_retry()


@durable_execution
async def retry_specific_error(event: Any, ctx: DurableContext) -> str:
    """1-15: only TransientError is retried."""

    async def flaky(step: StepContext) -> str:
        if step.attempt == 1:
            raise TransientError("temporary glitch")
        return "recovered"

    return await ctx.step(flaky, config=StepConfig(retry_strategy=retry_transient_only))


@durable_execution
async def no_retry_for_error(event: Any, ctx: DurableContext) -> str:
    """1-16: the strategy declines TransientError, so one attempt and FAILED."""

    def never_transient(error: Exception, attempts_made: int) -> RetryDecision:
        if isinstance(error, TransientError):
            return RetryDecision.no_retry()
        return RetryDecision.retry(Duration(1))

    async def flaky(step: StepContext) -> str:
        raise TransientError("not retried")

    return await ctx.step(flaky, config=StepConfig(retry_strategy=never_transient))


def _crash_on_first_attempt(step: StepContext, value: str) -> str:
    """A plain (thread-run) step body that kills the sandbox on attempt 1."""
    step.logger.info(value)
    time.sleep(1)  # let the log line leave the process before the crash
    if step.attempt < 2:
        os._exit(1)
    return "succeeded on second attempt"


@durable_execution
async def at_most_once_no_retry(event: str, ctx: DurableContext) -> str:
    """1-17: the interrupted attempt is not re-run; no retry, so FAILED."""
    return await ctx.step(
        _crash_on_first_attempt,
        event,
        name="at_most_once_flaky_step",
        config=StepConfig(
            retry_strategy=RetryPresets.none(),
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        ),
    )


@durable_execution
async def at_most_once_with_retry(event: str, ctx: DurableContext) -> str:
    """1-18: the interrupted attempt counts; attempt 2 runs and succeeds."""
    strategy = create_retry_strategy(RetryStrategyConfig(max_attempts=3, initial_delay=Duration(1)))
    return await ctx.step(
        _crash_on_first_attempt,
        event,
        config=StepConfig(
            retry_strategy=strategy,
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        ),
    )


@durable_execution
async def always_raises(event: Any, ctx: DurableContext) -> str:
    """1-19: an uncaught step failure fails the execution."""

    async def broken(step: StepContext) -> str:
        raise ValueError("this step always fails")

    return await ctx.step(broken, config=NO_RETRY)


@durable_execution
async def failure_caught_fallback(event: Any, ctx: DurableContext) -> str:
    """1-20: catch the failure and carry on with another step."""

    async def broken(step: StepContext) -> str:
        raise ValueError("primary path failed")

    async def fallback(step: StepContext) -> str:
        return "fallback_result"

    try:
        return await ctx.step(broken, config=NO_RETRY)
    except StepError:
        return await ctx.step(fallback)
