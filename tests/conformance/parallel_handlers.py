"""Conformance suite ``parallel`` (8-x): ``ctx.parallel``, written as a user would write it.

Branches are plain ``async def branch(ctx)`` functions, or ``ParallelBranch`` to name one;
they are named ``parallel-branch-{i}`` otherwise. Almost every handler sets
``max_concurrency=1`` so the branches, and so the history, run in index order. Handlers
that report on a ``BatchResult`` project it into a dict of plain values.
"""

from __future__ import annotations

import json
from typing import Any

from durable_async import (
    BatchResult,
    CompletionConfig,
    DurableContext,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    SerDesContext,
    StepContext,
    durable_execution,
)


async def return_value(step: StepContext, value: str) -> str:
    return value


async def branch_fail(ctx: DurableContext) -> str:
    raise RuntimeError("branch failed")


def outcome(result: BatchResult) -> dict[str, Any]:
    """How the batch ended and how many of its branches succeeded and failed."""
    return {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }


@durable_execution
async def basic(event: Any, ctx: DurableContext) -> list[Any]:
    """8-1: two branches of one step each, one at a time."""

    async def branch0(branch: DurableContext) -> str:
        return await branch.step(return_value, "task-1")

    async def branch1(branch: DurableContext) -> str:
        return await branch.step(return_value, "task-2")

    result = await ctx.parallel(
        [branch0, branch1], name="parallel", config=ParallelConfig(max_concurrency=1)
    )
    return result.get_results()


@durable_execution
async def branches_only(event: Any, ctx: DurableContext) -> list[Any]:
    """8-2: an unnamed parallel whose branches return directly."""

    async def branch0(branch: DurableContext) -> str:
        return "alpha"

    async def branch1(branch: DurableContext) -> str:
        return "beta"

    result = await ctx.parallel([branch0, branch1], config=ParallelConfig(max_concurrency=1))
    return result.get_results()


@durable_execution
async def named_branches(event: Any, ctx: DurableContext) -> list[Any]:
    """8-3: branches named through ``ParallelBranch``."""

    async def first_branch(branch: DurableContext) -> str:
        return "one"

    async def second_branch(branch: DurableContext) -> str:
        return "two"

    result = await ctx.parallel(
        [
            ParallelBranch(first_branch, name="first"),
            ParallelBranch(second_branch, name="second"),
        ],
        name="named",
        config=ParallelConfig(max_concurrency=1),
    )
    return result.get_results()


@durable_execution
async def heterogeneous(event: Any, ctx: DurableContext) -> list[Any]:
    """8-4: branches returning a string, a number and an object."""

    async def branch_string(branch: DurableContext) -> Any:
        return "hello"

    async def branch_number(branch: DurableContext) -> Any:
        return 42

    async def branch_object(branch: DurableContext) -> Any:
        return {"k": "v"}

    result = await ctx.parallel(
        [branch_string, branch_number, branch_object],
        name="hetero",
        config=ParallelConfig(max_concurrency=1),
    )
    return result.get_results()


@durable_execution
async def empty(event: Any, ctx: DurableContext) -> list[Any]:
    """8-5: no branches at all; the parallel is still recorded."""
    result = await ctx.parallel([], name="empty")
    return result.get_results()


@durable_execution
async def fail_fast(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-6: no failure tolerated: the failing branch ends the batch, the third never runs."""

    async def branch_ok(branch: DurableContext) -> str:
        return "ok"

    async def branch_never(branch: DurableContext) -> str:
        return "never"

    result = await ctx.parallel(
        [branch_ok, branch_fail, branch_never],
        name="failfast",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=0),
        ),
    )
    return outcome(result)


@durable_execution
async def throw_if_error(event: Any, ctx: DurableContext) -> list[Any]:
    """8-7: the first branch fails; ``throw_if_error`` fails the execution with it."""

    async def branch_never(branch: DurableContext) -> str:
        return "never"

    result = await ctx.parallel(
        [branch_fail, branch_never],
        name="throwing",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=0),
        ),
    )
    result.throw_if_error()
    return result.get_results()


@durable_execution
async def min_successful(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-8: two successes are enough; the last two branches never run."""

    async def branch0(branch: DurableContext) -> str:
        return "s0"

    async def branch1(branch: DurableContext) -> str:
        return "s1"

    async def branch2(branch: DurableContext) -> str:
        return "s2"

    async def branch3(branch: DurableContext) -> str:
        return "s3"

    result = await ctx.parallel(
        [branch0, branch1, branch2, branch3],
        name="min-successful",
        config=ParallelConfig(
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
    """8-9: one failure tolerated, one happens: every branch runs."""

    async def branch0(branch: DurableContext) -> str:
        return "s0"

    async def branch2(branch: DurableContext) -> str:
        return "s2"

    result = await ctx.parallel(
        [branch0, branch_fail, branch2],
        name="tolerated",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=1),
        ),
    )
    return outcome(result)


@durable_execution
async def tolerated_exceeded(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-10: one failure tolerated, the second ends the batch."""

    async def branch2(branch: DurableContext) -> str:
        return "never"

    result = await ctx.parallel(
        [branch_fail, branch_fail, branch2],
        name="tolerated-exceeded",
        config=ParallelConfig(
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
async def concurrent(event: Any, ctx: DurableContext) -> list[Any]:
    """8-11: two branches at a time; the results stay in branch order."""

    async def branch0(branch: DurableContext) -> str:
        return "r0"

    async def branch1(branch: DurableContext) -> str:
        return "r1"

    async def branch2(branch: DurableContext) -> str:
        return "r2"

    result = await ctx.parallel(
        [branch0, branch1, branch2],
        name="concurrent",
        config=ParallelConfig(max_concurrency=2),
    )
    return result.get_results()


@durable_execution
async def flat(event: Any, ctx: DurableContext) -> list[Any]:
    """8-12: FLAT nesting: the branches' steps hang directly under the parallel."""

    async def branch0(branch: DurableContext) -> str:
        return await branch.step(return_value, "fa")

    async def branch1(branch: DurableContext) -> str:
        return await branch.step(return_value, "fb")

    result = await ctx.parallel(
        [branch0, branch1],
        name="flat",
        config=ParallelConfig(max_concurrency=1, nesting=NestingType.FLAT),
    )
    return result.get_results()


@durable_execution
async def tolerated_pct(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-13: 25 % of four branches tolerated; the second failure (50 %) ends the batch."""

    async def branch2(branch: DurableContext) -> str:
        return "never"

    async def branch3(branch: DurableContext) -> str:
        return "never"

    result = await ctx.parallel(
        [branch_fail, branch_fail, branch2, branch3],
        name="tolerated-pct",
        config=ParallelConfig(
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
async def replay_skips_succeeded(event: Any, ctx: DurableContext) -> list[Any]:
    """8-14: branch 1 waits; on resumption branch 0's recorded result is reused."""

    async def ret_b0(step: StepContext, value: str) -> str:
        return value

    async def branch0(branch: DurableContext) -> str:
        return await branch.step(ret_b0, "b0")

    async def branch1(branch: DurableContext) -> str:
        await branch.wait(seconds=2)
        return "b1"

    result = await ctx.parallel(
        [branch0, branch1], name="replay", config=ParallelConfig(max_concurrency=1)
    )
    return result.get_results()


class WrapSerDes:
    """Stores a branch result as ``{"wrapped": value}`` and unwraps it when read back."""

    def serialize(self, value: str, context: SerDesContext) -> str:
        return json.dumps({"wrapped": value})

    def deserialize(self, data: str, context: SerDesContext) -> str:
        return str(json.loads(data)["wrapped"])


@durable_execution
async def custom_serde(event: Any, ctx: DurableContext) -> list[Any]:
    """8-15: each branch result goes through the item serdes and back."""

    async def branch0(branch: DurableContext) -> str:
        return "x"

    async def branch1(branch: DurableContext) -> str:
        return "y"

    result = await ctx.parallel(
        [branch0, branch1],
        name="serde",
        config=ParallelConfig(max_concurrency=1, item_serdes=WrapSerDes()),
    )
    return result.get_results()


@durable_execution
async def all_fail(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-16: three failures, all tolerated: the batch completes, FAILED."""
    result = await ctx.parallel(
        [branch_fail, branch_fail, branch_fail],
        name="all-fail",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=3),
        ),
    )
    return outcome(result)


@durable_execution
async def min_not_reached(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-17: three successes wanted, only two possible: every branch runs."""

    async def ok0(branch: DurableContext) -> str:
        return "ok0"

    async def ok2(branch: DurableContext) -> str:
        return "ok2"

    result = await ctx.parallel(
        [ok0, branch_fail, ok2],
        name="min-not-reached",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(min_successful=3),
        ),
    )
    return outcome(result)


@durable_execution
async def combined_config(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-18: min_successful and a failure tolerance; the tolerance is exceeded first."""

    async def ok2(branch: DurableContext) -> str:
        return "ok2"

    async def ok3(branch: DurableContext) -> str:
        return "ok3"

    result = await ctx.parallel(
        [branch_fail, branch_fail, ok2, ok3],
        name="combined",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(min_successful=3, tolerated_failure_count=1),
        ),
    )
    return {
        "completionReason": result.completion_reason.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }


@durable_execution
async def bad_concurrency(event: Any, ctx: DurableContext) -> list[Any]:
    """8-19: ``max_concurrency=0`` is rejected before anything is recorded."""

    async def branch_a(branch: DurableContext) -> str:
        return "a"

    async def branch_b(branch: DurableContext) -> str:
        return "b"

    result = await ctx.parallel(
        [branch_a, branch_b],
        name="bad-concurrency",
        config=ParallelConfig(max_concurrency=0),
    )
    return result.get_results()


@durable_execution
async def accessors(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-20: the ``BatchResult`` accessor methods rather than its counts."""

    async def ok0(branch: DurableContext) -> str:
        return "ok0"

    async def ok2(branch: DurableContext) -> str:
        return "ok2"

    result = await ctx.parallel(
        [ok0, branch_fail, ok2],
        name="accessors",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_count=1),
        ),
    )
    return {
        "hasFailure": result.has_failure,
        "successCount": len(result.succeeded()),
        "failureCount": len(result.failed()),
        "errorCount": len(result.get_errors()),
    }


@durable_execution
async def nested(event: Any, ctx: DurableContext) -> list[Any]:
    """8-21: a parallel inside the one branch of another parallel."""

    async def ret(step: StepContext, value: str) -> str:
        return value

    async def inner0(branch: DurableContext) -> str:
        return await branch.step(ret, "i1")

    async def inner1(branch: DurableContext) -> str:
        return await branch.step(ret, "i2")

    async def branch_a(branch: DurableContext) -> list[Any]:
        inner = await branch.parallel(
            [inner0, inner1], name="inner", config=ParallelConfig(max_concurrency=1)
        )
        return inner.get_results()

    result = await ctx.parallel([branch_a], name="outer", config=ParallelConfig(max_concurrency=1))
    return result.get_results()


@durable_execution
async def pct_boundary(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """8-22: one failure in four is exactly the 25 % tolerated: every branch runs."""

    async def ok1(branch: DurableContext) -> str:
        return "ok1"

    async def ok2(branch: DurableContext) -> str:
        return "ok2"

    async def ok3(branch: DurableContext) -> str:
        return "ok3"

    result = await ctx.parallel(
        [branch_fail, ok1, ok2, ok3],
        name="pct-boundary",
        config=ParallelConfig(
            max_concurrency=1,
            completion_config=CompletionConfig(tolerated_failure_percentage=25),
        ),
    )
    return outcome(result)
