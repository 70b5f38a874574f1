"""Conformance suite ``child`` (3-x): child contexts, written as a user would write them.

``run_in_child_context`` names a child after its function unless told otherwise;
``name=""`` records an unnamed child.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from durable_async import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    Duration,
    JitterStrategy,
    RetryPresets,
    RetryStrategyConfig,
    SerDesContext,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


def _retry(max_attempts: int) -> StepConfig:
    """``max_attempts`` attempts one second apart, no jitter."""
    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=max_attempts,
            initial_delay=Duration(1),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return StepConfig(retry_strategy=strategy)


async def echo(step: StepContext, value: Any) -> Any:
    return value


async def step_echo_body(child: DurableContext, value: Any) -> Any:
    """A child body with one step returning ``value``."""
    return await child.step(echo, value)


@durable_execution
async def basic(event: str, ctx: DurableContext) -> str:
    """3-1: an unnamed child context with one step."""
    return await ctx.run_in_child_context(step_echo_body, event, name="")


@durable_execution
async def named(event: dict[str, str], ctx: DurableContext) -> str:
    """3-2: the child context is named after the input."""
    return await ctx.run_in_child_context(step_echo_body, event["value"], name=event["name"])


@durable_execution
async def sequential_steps(event: str, ctx: DurableContext) -> str:
    """3-3: two steps in one child, the second fed by the first."""

    async def pipeline(child: DurableContext) -> str:
        first = await child.step(echo, event, name="first")
        return await child.step(echo, first, name="second")

    return await ctx.run_in_child_context(pipeline)


@durable_execution
async def step_fails(event: Any, ctx: DurableContext) -> None:
    """3-4: the child's step fails without retry, so the child and the execution fail."""

    async def broken(step: StepContext) -> None:
        raise RuntimeError("step inside child failed")

    async def failing_child(child: DurableContext) -> None:
        await child.step(broken, config=NO_RETRY)

    await ctx.run_in_child_context(failing_child)


@durable_execution
async def failure_caught(event: str, ctx: DurableContext) -> str:
    """3-5: a failed unnamed child is caught; a recovery step follows."""

    async def broken(step: StepContext) -> None:
        raise RuntimeError("step inside child failed")

    async def failing_child(child: DurableContext) -> None:
        await child.step(broken, config=NO_RETRY)

    try:
        await ctx.run_in_child_context(failing_child, name="")
    except ChildContextError as error:
        ctx.logger.info("child failed: %s", error)
    return await ctx.step(echo, event, name="recover")


@durable_execution
async def nested(event: str, ctx: DurableContext) -> str:
    """3-6: a named child holding a step and a named inner child with its own step."""

    async def outer(child: DurableContext) -> str:
        await child.step(echo, event, name="outer_step")
        return await child.run_in_child_context(inner)

    async def inner(child: DurableContext) -> str:
        return await child.step(echo, event, name="inner_step")

    return await ctx.run_in_child_context(outer)


@durable_execution
async def step_retry(event: str, ctx: DurableContext) -> str:
    """3-7: the child's step fails once and succeeds on its second attempt."""

    async def flaky(step: StepContext) -> str:
        if step.attempt < 2:
            raise RuntimeError("first attempt fails")
        return event

    async def retrying_child(child: DurableContext) -> str:
        return await child.step(flaky, config=_retry(2))

    return await ctx.run_in_child_context(retrying_child)


@durable_execution
async def step_retry_exhausted(event: Any, ctx: DurableContext) -> None:
    """3-8: two failed attempts exhaust the retries; the child fails."""

    async def always_fail(step: StepContext) -> None:
        raise RuntimeError(f"attempt {step.attempt} failed")

    async def retrying_child(child: DurableContext) -> None:
        await child.step(always_fail, config=_retry(2))

    await ctx.run_in_child_context(retrying_child)


@durable_execution
async def replay_cached(event: str, ctx: DurableContext) -> Any:
    """3-9: after the wait, the finished unnamed child returns its recorded result."""
    result = await ctx.run_in_child_context(step_echo_body, event, name="")
    await ctx.wait(seconds=1)
    return result


@durable_execution
async def step_and_wait_inside(event: str, ctx: DurableContext) -> str:
    """3-10: a named child with a step and then a wait."""

    async def step_then_wait(child: DurableContext) -> Any:
        value = await child.step(echo, event)
        await child.wait(seconds=1)
        return value

    return await ctx.run_in_child_context(step_then_wait)


@durable_execution
async def large_result(event: str, ctx: DurableContext) -> dict[str, int]:
    """3-11: a > 256 KB child result is not stored, so the child body re-runs on replay."""

    async def small(step: StepContext) -> str:
        return "x"

    async def build_large(child: DurableContext) -> str:
        child.logger.with_replay_logging().info("building large result for %s", event)
        unit = await child.step(small)
        return unit * 300_000

    large = await ctx.run_in_child_context(build_large)
    await ctx.wait(seconds=1)
    return {"length": len(large)}


def _crash_marker(execution_arn: str) -> Path:
    """A file outside the process recording that this execution already crashed once."""
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:32]
    return Path(tempfile.gettempdir()) / f"durable-async-conformance-3-12-{digest}"


@durable_execution
async def interrupted(event: str, ctx: DurableContext) -> str:
    """3-12: the process dies mid-step; the next invocation re-runs the step."""
    marker = _crash_marker(ctx.execution_arn)

    def crash_once(step: StepContext, value: str) -> str:
        # A plain step body runs in a worker thread, so START leaves before the crash.
        if not marker.exists():
            marker.write_text("crashed once\n")
            time.sleep(1)
            os._exit(1)
        return value

    async def crashing_child(child: DurableContext) -> str:
        return await child.step(crash_once, event)

    return await ctx.run_in_child_context(crashing_child, name="")


@durable_execution
async def wait_only_inside(event: str, ctx: DurableContext) -> str:
    """3-13: a named child holding only a wait; a top-level step after it."""

    async def just_wait(child: DurableContext) -> str:
        await child.wait(seconds=1)
        return event

    value = await ctx.run_in_child_context(just_wait)
    return await ctx.step(echo, value)


class UpperCaseSerDes:
    """Stores a string upper-cased, as raw text."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return data


@durable_execution
async def custom_serdes(event: str, ctx: DurableContext) -> str:
    """3-14: the child's serdes decides what is stored and returned."""
    return await ctx.run_in_child_context(
        step_echo_body, event, name="shout", config=ChildConfig(serdes=UpperCaseSerDes())
    )


@durable_execution
async def raises_directly(event: Any, ctx: DurableContext) -> None:
    """3-15: the child body raises before any durable operation."""

    async def broken_child(child: DurableContext) -> None:
        raise ValueError("child body failed")

    await ctx.run_in_child_context(broken_child)


@durable_execution
async def returns_null(event: Any, ctx: DurableContext) -> None:
    """3-16: a named child returning None."""

    async def nothing(child: DurableContext) -> None:
        return None

    return await ctx.run_in_child_context(nothing)


@durable_execution
async def logger_only(event: str, ctx: DurableContext) -> str:
    """3-17: a finished child is not re-run on replay: its log line appears once."""

    async def log_input(child: DurableContext) -> str:
        child.logger.with_replay_logging().info("child received %s", event)
        return event

    value = await ctx.run_in_child_context(log_input)
    await ctx.wait(seconds=1)
    return value


@durable_execution
async def mixed_inside_and_after(event: str, ctx: DurableContext) -> Any:
    """3-18: step + wait inside a named child, then step + wait at the top level."""

    async def step_then_wait(child: DurableContext) -> Any:
        value = await child.step(echo, event, name="inner_step")
        await child.wait(seconds=1)
        return value

    value = await ctx.run_in_child_context(step_then_wait)
    value = await ctx.step(echo, value, name="outer_step")
    await ctx.wait(seconds=1)
    return value
