"""Conformance suite ``wait_for_callback`` (7-x): callback + submitter in one operation."""

from __future__ import annotations

import json
from typing import Any

from durable_async import (
    CallbackError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    JsonSerDes,
    RetryStrategyConfig,
    StepContext,
    WaitForCallbackConfig,
    create_retry_strategy,
    durable_execution,
)


async def notify(callback_id: str, step: StepContext) -> None:
    """Hand the callback ID to the outside world (here: a log line)."""
    step.logger.info("waiting for callback %s", callback_id)


@durable_execution
async def basic(event: str, ctx: DurableContext) -> Any:
    """7-1: named after the input."""
    return await ctx.wait_for_callback(notify, name=event)


@durable_execution
async def approval(event: Any, ctx: DurableContext) -> Any:
    """7-2: named ``approval``."""
    return await ctx.wait_for_callback(notify, name="approval")


@durable_execution
async def inline_submitter(event: Any, ctx: DurableContext) -> Any:
    """7-3: no name, only an inline submitter."""
    return await ctx.wait_for_callback(lambda callback_id, step: None)


@durable_execution
async def failure(event: str, ctx: DurableContext) -> Any:
    """7-4: the external system reports a failure; not caught."""
    return await ctx.wait_for_callback(notify, name=event)


@durable_execution
async def timeout(event: str, ctx: DurableContext) -> Any:
    """7-5: a 3 s timeout with no answer."""
    return await ctx.wait_for_callback(notify, name=event, config=WaitForCallbackConfig(timeout=3))


@durable_execution
async def failure_caught(event: str, ctx: DurableContext) -> str:
    """7-6: the failure is caught."""
    try:
        await ctx.wait_for_callback(notify, name=event)
    except CallbackError:
        return "recovered"
    return "approved"


@durable_execution
async def submitter_fails(event: str, ctx: DurableContext) -> Any:
    """7-7: the submitter always raises; two attempts 1 s apart, then FAILED."""

    async def broken(callback_id: str, step: StepContext) -> None:
        raise ConnectionError("could not reach the approval service")

    retry = create_retry_strategy(RetryStrategyConfig(max_attempts=2, initial_delay=Duration(1)))
    return await ctx.wait_for_callback(
        broken, name=event, config=WaitForCallbackConfig(retry_strategy=retry)
    )


@durable_execution
async def inside_child(event: str, ctx: DurableContext) -> Any:
    """7-8: inside a child context named ``wrapper``."""

    async def wrapper(child: DurableContext) -> Any:
        return await child.wait_for_callback(notify, name=event)

    return await ctx.run_in_child_context(wrapper, name="wrapper")


@durable_execution
async def two_in_a_row(event: Any, ctx: DurableContext) -> Any:
    """7-9: ``first`` then ``second``; return the second result."""
    await ctx.wait_for_callback(notify, name="first")
    return await ctx.wait_for_callback(notify, name="second")


@durable_execution
async def after_wait_and_step(event: str, ctx: DurableContext) -> Any:
    """7-10: a wait, a step, then wait_for_callback."""
    await ctx.wait(seconds=1)

    async def fixed(step: StepContext) -> dict[str, str]:
        return {"order": "A-1"}

    await ctx.step(fixed)
    return await ctx.wait_for_callback(notify, name=event)


@durable_execution
async def json_result(event: str, ctx: DurableContext) -> Any:
    """7-11: the payload is decoded as a JSON object."""
    result = await ctx.wait_for_callback(
        notify, name=event, config=WaitForCallbackConfig(serdes=JsonSerDes())
    )
    return result["status"]


@durable_execution
async def heartbeat_timeout(event: str, ctx: DurableContext) -> Any:
    """7-12: no heartbeat within 5 s."""
    return await ctx.wait_for_callback(
        notify, name=event, config=WaitForCallbackConfig(heartbeat_timeout=5)
    )


@durable_execution
async def heartbeat_then_success(event: str, ctx: DurableContext) -> Any:
    """7-13: a heartbeat, then success, within a 10 s heartbeat timeout."""
    return await ctx.wait_for_callback(
        notify, name=event, config=WaitForCallbackConfig(heartbeat_timeout=10)
    )


@durable_execution
async def timeout_caught(event: str, ctx: DurableContext) -> str:
    """7-14: a 3 s timeout, caught."""
    try:
        await ctx.wait_for_callback(notify, name=event, config=WaitForCallbackConfig(timeout=3))
    except CallbackTimeoutError:
        return "timed-out-handled"
    return "answered"


@durable_execution
async def empty_success(event: str, ctx: DurableContext) -> Any:
    """7-15: success without a payload gives None."""
    result = await ctx.wait_for_callback(notify, name=event)
    return None if result is None else json.loads(result)
