"""Conformance suite ``map`` (9-x): ``ctx.map``, written as a user would write it.

The map function is ``async def fn(ctx, item, index, items)``, run once per item in the
item's own child context (named ``map-item-{index}`` unless an ``item_namer`` says
otherwise). Almost every handler sets ``max_concurrency=1`` so the items, and so the
history, run in index order. Handlers that report on a ``BatchResult`` project it into a
dict of plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable_async import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    JsonSerDes,
    MapConfig,
    NestingType,
    SerDesContext,
    StepContext,
    durable_execution,
)


async def return_value(step: StepContext, value: str) -> str:
    return value


async def identity(ctx: DurableContext, item: Any, index: int, items: Sequence[Any]) -> Any:
    return item


async def upper(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
    return item.upper()


async def fail_on_fail(ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
    """Fails the item ``"fail"``; any other item is its own result."""
    if item == "fail":
        raise RuntimeError("item failed")
    return item


async def fail_unless_never(
    ctx: DurableContext, item: str, index: int, items: Sequence[str]
) -> str:
    """Fails every item but ``"never"``, which the batch is expected never to reach."""
    if item != "never":
        raise RuntimeError("item failed")
    return item


def outcome(result: BatchResult) -> dict[str, Any]:
    """How the batch ended and how many of its items succeeded and failed."""
    return {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }


@durable_execution
async def basic(event: Any, ctx: DurableContext) -> list[Any]:
    """9-1: one step per item, one item at a time."""

    async def greet(step: StepContext, item: str) -> str:
        return f"Hello, {item}!"

    async def map_fn(item_ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return await item_ctx.step(greet, item)

    items = event if isinstance(event, list) else ["World", "Kiro"]
    result = await ctx.map(items, map_fn, name="map", config=MapConfig(max_concurrency=1))
    return result.get_results()


@durable_execution
async def items_only(event: Any, ctx: DurableContext) -> list[Any]:
    """9-2: an unnamed map whose items return directly."""

    async def double(item_ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> int:
        return item * 2

    items = event if isinstance(event, list) else [1, 2]
    result = await ctx.map(items, double, config=MapConfig(max_concurrency=1))
    return result.get_results()


@durable_execution
async def item_index(event: Any, ctx: DurableContext) -> list[Any]:
    """9-3: the map function sees each item's index."""

    async def plus_index(
        item_ctx: DurableContext, item: int, index: int, items: Sequence[int]
    ) -> int:
        return item + index

    items = event if isinstance(event, list) else [10, 20, 30]
    result = await ctx.map(items, plus_index, name="indexed", config=MapConfig(max_concurrency=1))
    return result.get_results()


@durable_execution
async def empty(event: Any, ctx: DurableContext) -> list[Any]:
    """9-4: no items at all; the map is still recorded."""
    items = event if isinstance(event, list) else []
    result = await ctx.map(items, identity, name="empty", config=MapConfig())
    return result.get_results()


@durable_execution
async def fail_fast(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-5: no failure tolerated: the failing item ends the batch, the third never runs."""
    result = await ctx.map(
        ["ok", "fail", "never"],
        fail_on_fail,
        name="failfast",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=0),
        ),
    )
    return outcome(result)


@durable_execution
async def throw_if_error(event: Any, ctx: DurableContext) -> list[Any]:
    """9-6: the first item fails; ``throw_if_error`` fails the execution with it."""
    result = await ctx.map(
        ["fail", "never"],
        fail_on_fail,
        name="throwing",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=0),
        ),
    )
    result.throw_if_error()
    return result.get_results()


@durable_execution
async def min_successful(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-7: two successes are enough; the last two items never run."""
    result = await ctx.map(
        ["s0", "s1", "s2", "s3"],
        identity,
        name="min-successful",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(min_successful=2),
        ),
    )
    return {
        "completionReason": result.completion_reason.value,
        "successCount": result.success_count,
        "totalCount": result.total_count,
    }


@durable_execution
async def tolerated_within(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-8: one failure tolerated, one happens: every item runs."""
    result = await ctx.map(
        ["s0", "fail", "s2"],
        fail_on_fail,
        name="tolerated",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=1),
        ),
    )
    return outcome(result)


@durable_execution
async def tolerated_exceeded(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-9: one failure tolerated, the second ends the batch."""
    result = await ctx.map(
        ["f0", "f1", "never"],
        fail_unless_never,
        name="tolerated-exceeded",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=1),
        ),
    )
    return {
        "completionReason": result.completion_reason.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }


@durable_execution
async def tolerated_pct(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-10: 25 % of four items tolerated; the second failure (50 %) ends the batch."""
    result = await ctx.map(
        ["f0", "f1", "never", "never"],
        fail_unless_never,
        name="tolerated-pct",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_percentage=25),
        ),
    )
    return {
        "completionReason": result.completion_reason.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }


@durable_execution
async def concurrent(event: Any, ctx: DurableContext) -> list[Any]:
    """9-11: two items at a time; the results stay in item order."""
    result = await ctx.map(
        ["r0", "r1", "r2"], identity, name="concurrent", config=MapConfig(max_concurrency=2)
    )
    return result.get_results()


@durable_execution
async def flat(event: Any, ctx: DurableContext) -> list[Any]:
    """9-12: FLAT nesting: the items' steps hang directly under the map."""

    async def map_fn(item_ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        return await item_ctx.step(return_value, item)

    result = await ctx.map(
        ["fa", "fb"],
        map_fn,
        name="flat",
        config=MapConfig(max_concurrency=1, nesting=NestingType.FLAT),
    )
    return result.get_results()


@durable_execution
async def item_namer(event: Any, ctx: DurableContext) -> list[Any]:
    """9-13: each item's context is named ``item-{item}``."""

    async def times_ten(
        item_ctx: DurableContext, item: int, index: int, items: Sequence[int]
    ) -> int:
        return item * 10

    items = event if isinstance(event, list) else [1, 2]
    result = await ctx.map(
        items,
        times_ten,
        name="named-items",
        config=MapConfig(max_concurrency=1, item_namer=lambda item, index: f"item-{item}"),
    )
    return result.get_results()


class WrapSerDes:
    """Stores an item result as ``wrapped:<value>`` and strips the prefix when read back."""

    def serialize(self, value: str | None, context: SerDesContext) -> str | None:
        return None if value is None else f"wrapped:{value}"

    def deserialize(self, data: str | None, context: SerDesContext) -> str | None:
        return None if data is None else data.removeprefix("wrapped:")


@durable_execution
async def custom_serde(event: Any, ctx: DurableContext) -> list[Any]:
    """9-14: each item result goes through the item serdes and back."""
    result = await ctx.map(
        ["x", "y"],
        upper,
        name="serdes",
        config=MapConfig(max_concurrency=1, item_serdes=WrapSerDes()),
    )
    return result.get_results()


@durable_execution
async def suspend_iteration(event: Any, ctx: DurableContext) -> list[Any]:
    """9-15: item 1 waits; on resumption item 0's recorded result is reused."""

    async def map_fn(item_ctx: DurableContext, item: str, index: int, items: Sequence[str]) -> str:
        if index == 1:
            await item_ctx.wait(seconds=1)
        return await item_ctx.step(return_value, item)

    result = await ctx.map(
        ["r0", "r1"], map_fn, name="suspend", config=MapConfig(max_concurrency=1)
    )
    return result.get_results()


@durable_execution
async def large_result(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-16: four 70 KB results: the map's result is too large to store whole."""

    async def large(item_ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> str:
        return "x" * 70_000

    result = await ctx.map([0, 1, 2, 3], large, name="large", config=MapConfig(max_concurrency=1))
    return {"successCount": result.success_count, "totalCount": result.total_count}


@durable_execution
async def then_wait(event: Any, ctx: DurableContext) -> list[Any]:
    """9-17: after the wait, the finished map returns its recorded result."""
    result = await ctx.map(["a", "b"], upper, name="then-wait", config=MapConfig(max_concurrency=1))
    await ctx.wait(seconds=1)
    return result.get_results()


@durable_execution
async def fail_then_wait(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """9-18: a finished map with a tolerated failure is not re-run after the wait."""
    result = await ctx.map(
        ["ok", "fail"],
        fail_on_fail,
        name="fail-then-wait",
        config=MapConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=1),
        ),
    )
    await ctx.wait(seconds=1)
    return outcome(result)


class OpSerDes:
    """Stores a whole ``BatchResult`` as ``OPSERDE:<comma-joined results>``."""

    def serialize(self, value: BatchResult, context: SerDesContext) -> str:
        return "OPSERDE:" + ",".join(value.get_results())

    def deserialize(self, data: str, context: SerDesContext) -> BatchResult:
        values = data.removeprefix("OPSERDE:").split(",")
        items = tuple(
            BatchItem(index=index, status=BatchItemStatus.SUCCEEDED, result=value)
            for index, value in enumerate(values)
        )
        return BatchResult(all=items, completion_reason=CompletionReason.ALL_COMPLETED)


# ``serdes`` alone would also store each item; JSON keeps the items on plain encoding.
OP_SERDE_CONFIG = MapConfig(max_concurrency=1, serdes=OpSerDes(), item_serdes=JsonSerDes())


@durable_execution
async def op_serde(event: Any, ctx: DurableContext) -> list[Any]:
    """9-19: the operation serdes decides what is stored for the whole map."""
    result = await ctx.map(["x", "y"], upper, name="op-serde", config=OP_SERDE_CONFIG)
    return result.get_results()


@durable_execution
async def op_serde_replay(event: Any, ctx: DurableContext) -> list[Any]:
    """9-20: after the wait, the map's result is read back through the operation serdes."""
    result = await ctx.map(["x", "y"], upper, name="op-serde-replay", config=OP_SERDE_CONFIG)
    await ctx.wait(seconds=1)
    return result.get_results()
