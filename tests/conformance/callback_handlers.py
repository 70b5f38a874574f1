"""Conformance suite ``callback`` (4-x): results delivered by an external system."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from durable_async import (
    CallbackError,
    DurableContext,
    SerDesContext,
    StepContext,
    durable_execution,
)


@durable_execution
async def basic(event: str, ctx: DurableContext) -> Any:
    """4-1: create a callback named after the input and await its result."""
    callback = await ctx.create_callback(name=event)
    return await callback.result()


@durable_execution
async def approval(event: Any, ctx: DurableContext) -> Any:
    """4-2: a callback named ``approval``."""
    callback = await ctx.create_callback(name="approval")
    return await callback.result()


@durable_execution
async def timeout(event: str, ctx: DurableContext) -> Any:
    """4-3: nobody answers within 5 s, so the callback times out and the execution fails."""
    callback = await ctx.create_callback(name=event, timeout=5)
    return await callback.result()


@durable_execution
async def heartbeat_timeout(event: str, ctx: DurableContext) -> Any:
    """4-4: no heartbeat within 5 s."""
    callback = await ctx.create_callback(name=event, heartbeat_timeout=5)
    return await callback.result()


@durable_execution
async def heartbeat_then_success(event: str, ctx: DurableContext) -> Any:
    """4-5: heartbeats keep a 10 s heartbeat timeout from firing."""
    callback = await ctx.create_callback(name=event, heartbeat_timeout=10)
    return await callback.result()


@durable_execution
async def failure(event: str, ctx: DurableContext) -> Any:
    """4-6: the external system reports a failure; not caught."""
    callback = await ctx.create_callback(name=event)
    return await callback.result()


async def _prepare(step: StepContext, callback_id: str) -> str:
    return f"notified {callback_id}"


@durable_execution
async def step_then_failure(event: str, ctx: DurableContext) -> Any:
    """4-7: create, run a step, then await a callback that fails."""
    callback = await ctx.create_callback(name=event)
    await ctx.step(_prepare, callback.callback_id)
    return await callback.result()


@durable_execution
async def step_then_timeout(event: str, ctx: DurableContext) -> Any:
    """4-8: create with a 5 s timeout, run a step, await; nobody answers."""
    callback = await ctx.create_callback(name=event, timeout=5)
    await ctx.step(_prepare, callback.callback_id)
    return await callback.result()


@durable_execution
async def success_during_wait(event: str, ctx: DurableContext) -> Any:
    """4-9: the result arrives while the handler waits; it is there on replay."""
    callback = await ctx.create_callback(name=event)
    await ctx.wait(seconds=5)
    return await callback.result()


@durable_execution
async def failure_during_wait(event: str, ctx: DurableContext) -> Any:
    """4-10: the failure arrives during the wait and surfaces when awaited."""
    callback = await ctx.create_callback(name=event)
    await ctx.wait(seconds=5)
    return await callback.result()


@durable_execution
async def timeout_during_wait(event: str, ctx: DurableContext) -> Any:
    """4-11: a 3 s timeout fires during a 6 s wait."""
    callback = await ctx.create_callback(name=event, timeout=3)
    await ctx.wait(seconds=6)
    return await callback.result()


@durable_execution
async def result_then_wait(event: str, ctx: DurableContext) -> Any:
    """4-12: await the callback, wait 2 s, return the callback's result."""
    callback = await ctx.create_callback(name=event)
    result = await callback.result()
    await ctx.wait(seconds=2)
    return result


@durable_execution
async def failure_caught(event: str, ctx: DurableContext) -> str:
    """4-13: a failed callback is handled; the failure replays identically."""
    callback = await ctx.create_callback(name=event)
    try:
        await callback.result()
        message = "approved"
    except CallbackError as error:
        message = f"callback failed: {error.message}"
    await ctx.wait(seconds=2)
    return message


@durable_execution
async def timeout_caught(event: str, ctx: DurableContext) -> str:
    """4-14: a timed-out callback is handled."""
    callback = await ctx.create_callback(name=event, timeout=3)
    try:
        await callback.result()
        message = "answered"
    except CallbackError as error:
        message = f"callback timed out: {error.error_type}"
    await ctx.wait(seconds=2)
    return message


class EventSerDes:
    """Decodes ``{id, message, timestamp: ISO-8601}`` with the timestamp as epoch seconds."""

    def serialize(self, value: dict[str, Any], context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> dict[str, Any]:
        raw = json.loads(data)
        moment = datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
        return {"id": raw["id"], "message": raw["message"], "timestamp": int(moment.timestamp())}


@durable_execution
async def custom_deserializer(event: str, ctx: DurableContext) -> dict[str, Any]:
    """4-15: a serdes turns the raw payload into a typed object."""
    callback = await ctx.create_callback(name=event, serdes=EventSerDes())
    return {"received": await callback.result()}


class NumberSerDes:
    """Decodes the payload as a number."""

    def serialize(self, value: float, context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> float:
        number = json.loads(data)
        if not isinstance(number, int | float):
            raise TypeError(f"expected a number, got {data!r}")
        return number


@durable_execution
async def number_deserializer(event: str, ctx: DurableContext) -> dict[str, float]:
    """4-16: a serdes turns the payload into a number."""
    callback = await ctx.create_callback(name=event, serdes=NumberSerDes())
    count = await callback.result()
    return {"count": count, "doubled": count * 2}


@durable_execution
async def sequential(event: list[str], ctx: DurableContext) -> list[Any]:
    """4-17: create and await A, then create and await B."""
    first, second = event
    a = await ctx.create_callback(name=first)
    result_a = await a.result()
    b = await ctx.create_callback(name=second)
    return [result_a, await b.result()]


@durable_execution
async def both_then_in_order(event: list[str], ctx: DurableContext) -> list[Any]:
    """4-18: create A and B, await A, then B."""
    first, second = event
    a = await ctx.create_callback(name=first)
    b = await ctx.create_callback(name=second)
    result_a = await a.result()
    return [result_a, await b.result()]


@durable_execution
async def both_then_reversed(event: list[str], ctx: DurableContext) -> list[Any]:
    """4-19: create A and B, await B first, then A."""
    first, second = event
    a = await ctx.create_callback(name=first)
    b = await ctx.create_callback(name=second)
    result_b = await b.result()
    return [await a.result(), result_b]
