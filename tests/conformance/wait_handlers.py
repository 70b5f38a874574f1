"""Conformance suite ``wait`` (2-x): durable timers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable_async import DurableContext, Duration, durable_execution


@durable_execution
async def basic(event: Any, ctx: DurableContext) -> None:
    """2-1: one unnamed two-second wait."""
    await ctx.wait(seconds=2)


@durable_execution
async def named(event: Any, ctx: DurableContext) -> None:
    """2-2: a named wait."""
    await ctx.wait(seconds=2, name="custom_wait_name")


@durable_execution
async def sequential(event: Any, ctx: DurableContext) -> dict[str, int]:
    """2-3: two waits, each ending one invocation."""
    await ctx.wait(Duration.from_seconds(2), name="wait-1")
    await ctx.wait(timedelta(seconds=2), name="wait-2")
    return {"completedWaits": 2}


@durable_execution
async def minutes(event: Any, ctx: DurableContext) -> None:
    """2-4: a wait given in minutes."""
    await ctx.wait(minutes=1)


@durable_execution
async def hours(event: Any, ctx: DurableContext) -> None:
    """2-5: a wait given in hours."""
    await ctx.wait(hours=1)
