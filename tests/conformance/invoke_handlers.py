"""Conformance suite ``invoke`` (5-x): chained invocations of other durable functions.

The caller learns its target from ``TARGET_FUNCTION_NAME`` (set per requirement in
``mapping.yaml``); the targets themselves are the first three handlers below.
"""

from __future__ import annotations

import json
import os
from typing import Any

from durable_async import (
    DurableContext,
    InvokeConfig,
    InvokeError,
    SerDesContext,
    StepContext,
    durable_execution,
)


def target() -> str:
    """The function this caller invokes."""
    return os.environ["TARGET_FUNCTION_NAME"]


# -- targets ---------------------------------------------------------------------------


@durable_execution
async def echo_target(event: Any, ctx: DurableContext) -> Any:
    """TargetEcho / TargetEchoTenant: wait a second, return the input."""
    await ctx.wait(seconds=1)
    return event


class TargetFailure(Exception):
    """What the failing target raises."""


@durable_execution
async def error_target(event: Any, ctx: DurableContext) -> Any:
    """TargetError: wait a second, then fail."""
    await ctx.wait(seconds=1)
    raise TargetFailure("target function failed on purpose")


# -- callers ---------------------------------------------------------------------------


@durable_execution
async def basic(event: str, ctx: DurableContext) -> Any:
    """5-1: invoke the echo target with the input."""
    return await ctx.invoke(target(), event)


@durable_execution
async def named(event: dict[str, Any], ctx: DurableContext) -> Any:
    """5-2: the invoke operation is named after the input."""
    return await ctx.invoke(target(), event["payload"], name=event["name"])


@durable_execution
async def complex_object(event: dict[str, Any], ctx: DurableContext) -> Any:
    """5-3: a nested object goes to the target and comes back."""
    return await ctx.invoke(target(), event)


@durable_execution
async def null_payload(event: Any, ctx: DurableContext) -> Any:
    """5-4: invoke with None; the target returns None."""
    return await ctx.invoke(target(), None)


@durable_execution
async def target_fails(event: Any, ctx: DurableContext) -> Any:
    """5-5: the target's failure raises InvokeError, which fails the execution."""
    return await ctx.invoke(target(), event)


@durable_execution
async def target_fails_caught(event: Any, ctx: DurableContext) -> Any:
    """5-6: the target's failure is caught; a fallback is returned."""
    try:
        return await ctx.invoke(target(), event)
    except InvokeError as error:
        return {"fallback": True, "error": error.message}


@durable_execution
async def large_payload(event: Any, ctx: DurableContext) -> dict[str, int]:
    """5-7: a ~200 KB payload round-trips through the target."""
    result = await ctx.invoke(target(), {"data": "x" * 200_000})
    return {"receivedLength": len(result["data"])}


@durable_execution
async def with_tenant(event: dict[str, Any], ctx: DurableContext) -> Any:
    """5-8: invoke on behalf of a tenant."""
    return await ctx.invoke(target(), event["payload"], tenant_id=event["tenantId"])


@durable_execution
async def then_wait(event: Any, ctx: DurableContext) -> Any:
    """5-9: after the wait, the recorded invoke result is replayed, not re-invoked."""
    result = await ctx.invoke(target(), event)
    await ctx.wait(seconds=1)
    return result


@durable_execution
async def failure_caught_then_wait(event: Any, ctx: DurableContext) -> str:
    """5-10: the recorded failure is raised again on replay and caught again."""
    try:
        await ctx.invoke(target(), event)
    except InvokeError as error:
        ctx.logger.info("invoke failed: %s", error)
    await ctx.wait(seconds=1)
    return "recovered"


@durable_execution
async def step_then_invoke(event: Any, ctx: DurableContext) -> Any:
    """5-11: a step's result is the invoke's payload."""

    async def prepare(step: StepContext) -> dict[str, str]:
        return {"prepared": "step-result"}

    return await ctx.invoke(target(), await ctx.step(prepare))


@durable_execution
async def invoke_then_step(event: Any, ctx: DurableContext) -> Any:
    """5-12: a step processes the invoke's result."""

    async def process(step: StepContext, echoed: Any) -> dict[str, Any]:
        return {"processed": echoed}

    echoed = await ctx.invoke(target(), {"value": "to-process"})
    return await ctx.step(process, echoed)


@durable_execution
async def inside_child(event: Any, ctx: DurableContext) -> Any:
    """5-13: an invoke inside a child context; the child returns its result."""

    async def invoke_in_child(child: DurableContext) -> Any:
        return await child.invoke(target(), event)

    return await ctx.run_in_child_context(invoke_in_child)


@durable_execution
async def two_sequential(event: Any, ctx: DurableContext) -> list[Any]:
    """5-14: two invokes, each suspending the execution until its target ends."""
    first = await ctx.invoke(target(), "first")
    second = await ctx.invoke(target(), "second")
    return [first, second]


class UpperCasePayloadSerDes:
    """Encodes the outgoing payload as JSON with every string upper-cased."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        return json.dumps(_upper(value))

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        return json.loads(data)


def _upper(value: Any) -> Any:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, dict):
        return {key: _upper(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_upper(item) for item in value]
    return value


@durable_execution
async def custom_payload_serdes(event: dict[str, Any], ctx: DurableContext) -> Any:
    """5-15: the payload serdes transforms what the target receives."""
    config = InvokeConfig(serdes_payload=UpperCasePayloadSerDes())
    return await ctx.invoke(target(), event, config=config)


class RawUpperCaseResultSerDes:
    """Decodes the target's result as its raw JSON text, upper-cased."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return data.upper()


@durable_execution
async def custom_result_serdes(event: str, ctx: DurableContext) -> Any:
    """5-16: the result serdes turns the echoed JSON text into upper case."""
    config = InvokeConfig(serdes_result=RawUpperCaseResultSerDes())
    return await ctx.invoke(target(), event, config=config)
