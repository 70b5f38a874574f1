"""Conformance suite ``wait_for_condition`` (6-x): durable polling."""

from __future__ import annotations

import json
from typing import Any

from durable_async import (
    DurableContext,
    Duration,
    JitterStrategy,
    SerDesContext,
    StepContext,
    WaitForConditionCheckContext,
    WaitForConditionDecision,
    WaitForConditionError,
    WaitStrategyConfig,
    durable_execution,
)


async def increment(state: int, check: WaitForConditionCheckContext) -> int:
    return state + 1


def until(threshold: int, *, delay: int = 1, max_attempts: int = 60) -> WaitStrategyConfig[int]:
    """Poll every ``delay`` seconds while the state is below ``threshold``."""
    return WaitStrategyConfig(
        should_continue_polling=lambda state: state < threshold,
        max_attempts=max_attempts,
        initial_delay=Duration(delay),
        backoff_rate=1,
        jitter_strategy=JitterStrategy.NONE,
    )


@durable_execution
async def counter(event: int, ctx: DurableContext) -> int:
    """6-1: count up from 0 until the input, one poll per invocation."""
    return await ctx.wait_for_condition(increment, initial_state=0, strategy=until(event))


@durable_execution
async def already_satisfied(event: int, ctx: DurableContext) -> int:
    """6-2: the first check satisfies the strategy: no suspension."""

    async def unchanged(state: int, check: WaitForConditionCheckContext) -> int:
        return state

    return await ctx.wait_for_condition(unchanged, initial_state=5, strategy=until(event))


@durable_execution
async def named(event: int, ctx: DurableContext) -> int:
    """6-3: a named condition."""
    return await ctx.wait_for_condition(
        increment, initial_state=0, strategy=until(event), name="poll-status"
    )


@durable_execution
async def from_five(event: int, ctx: DurableContext) -> int:
    """6-4: start from 5 and count to the input."""
    return await ctx.wait_for_condition(increment, initial_state=5, strategy=until(event))


@durable_execution
async def fixed_delay(event: int, ctx: DurableContext) -> int:
    """6-5: a fixed two-second delay between polls."""
    return await ctx.wait_for_condition(increment, initial_state=0, strategy=until(event, delay=2))


@durable_execution
async def exhausted(event: int, ctx: DurableContext) -> int:
    """6-6: never satisfied; the strategy gives up after 3 attempts."""
    never = WaitStrategyConfig[int](
        should_continue_polling=lambda state: True,
        max_attempts=3,
        initial_delay=Duration(1),
        backoff_rate=1,
        jitter_strategy=JitterStrategy.NONE,
    )
    return await ctx.wait_for_condition(increment, initial_state=event, strategy=never)


async def broken_check(state: int, check: WaitForConditionCheckContext) -> int:
    raise RuntimeError("status endpoint unavailable")


@durable_execution
async def check_raises(event: Any, ctx: DurableContext) -> int:
    """6-7: the check raises on its first call; not caught."""
    return await ctx.wait_for_condition(broken_check, initial_state=0, strategy=until(1))


@durable_execution
async def check_raises_caught(event: Any, ctx: DurableContext) -> str:
    """6-8: the same failure, caught."""
    try:
        await ctx.wait_for_condition(broken_check, initial_state=0, strategy=until(1))
    except WaitForConditionError:
        return "recovered"
    return "unreachable"


@durable_execution
async def object_state(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """6-9: a structured state {status, attempts}."""

    async def poll(state: dict[str, Any], check: WaitForConditionCheckContext) -> dict[str, Any]:
        attempts = state["attempts"] + 1
        return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}

    strategy = WaitStrategyConfig[dict[str, Any]](
        should_continue_polling=lambda state: state["status"] == "PENDING",
        initial_delay=Duration(1),
        backoff_rate=1,
        jitter_strategy=JitterStrategy.NONE,
    )
    return await ctx.wait_for_condition(
        poll, initial_state={"status": "PENDING", "attempts": 0}, strategy=strategy
    )


@durable_execution
async def null_state(event: Any, ctx: DurableContext) -> None:
    """6-10: the check returns None and the strategy stops at once."""

    async def nothing(state: Any, check: WaitForConditionCheckContext) -> None:
        return None

    def stop(state: Any, attempts_made: int) -> WaitForConditionDecision:
        return WaitForConditionDecision.stop_polling()

    return await ctx.wait_for_condition(nothing, initial_state=None, strategy=stop)


class WrappedStringSerDes:
    """Stores the string state inside an object, to show the state goes through serdes."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return json.dumps({"value": value})

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return str(json.loads(data)["value"])


@durable_execution
async def custom_serdes(event: Any, ctx: DurableContext) -> str:
    """6-11: string state through a custom serdes; append "x" until length 2."""

    async def append(state: str, check: WaitForConditionCheckContext) -> str:
        return state + "x"

    strategy = WaitStrategyConfig[str](
        should_continue_polling=lambda state: len(state) < 2,
        initial_delay=Duration(1),
        backoff_rate=1,
        jitter_strategy=JitterStrategy.NONE,
    )
    return await ctx.wait_for_condition(
        append, initial_state="", strategy=strategy, serdes=WrappedStringSerDes()
    )


@durable_execution
async def then_step(event: int, ctx: DurableContext) -> int:
    """6-12: count to the input, then a step multiplies by 10."""
    reached = await ctx.wait_for_condition(increment, initial_state=0, strategy=until(event))

    async def times_ten(step: StepContext, value: int) -> int:
        return value * 10

    return await ctx.step(times_ten, reached)


@durable_execution
async def two_conditions(event: Any, ctx: DurableContext) -> int:
    """6-13: 0 -> 2, then 2 -> 4."""
    halfway = await ctx.wait_for_condition(increment, initial_state=0, strategy=until(2))
    return await ctx.wait_for_condition(increment, initial_state=halfway, strategy=until(4))
