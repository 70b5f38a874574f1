"""The event sequences of AWS's newer reference plugin handlers (10-11 to 10-16), ported.

Each test runs the reference handler's program (same operations, names and retry
settings) and checks what its plugin would print. 10-8, 10-9, 10-10 and 10-18 (changes
and externally ended waits) are in ``test_plugin_changes.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from durable_async import (
    DurableContext,
    Duration,
    NestingType,
    ParallelConfig,
    RetryPresets,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    WaitForConditionDecision,
    create_retry_strategy,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


class Records:
    """What the reference plugins print, as tuples, per hook."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []
        self.first = False

    def on_invocation_start(self, info: Any) -> None:
        self.first = info.is_first_invocation
        self.records.append(("invocation-start", info.is_first_invocation))

    def on_invocation_end(self, info: Any) -> None:
        terminal = info.status in ("SUCCEEDED", "FAILED")
        self.records.append(("invocation-end", info.is_first_invocation, terminal, info.status))

    def on_operation_start(self, info: Any) -> None:
        self.records.append(("operation-start", info.operation_id, info.is_replayed))

    def on_operation_end(self, info: Any) -> None:
        error = info.error.message if info.error and info.error.message else "NONE"
        self.records.append(
            (
                "operation-end",
                info.operation_id,
                info.parent_id or "NONE",
                info.status,
                info.result if info.result is not None else "NONE",
                error,
            )
        )

    def on_user_function_start(self, info: Any) -> None:
        self.records.append(("fn-start", info.operation_id, info.parent_id or "NONE", info.attempt))

    def on_user_function_end(self, info: Any) -> None:
        self.records.append(
            ("fn-end", info.operation_id, info.parent_id or "NONE", info.attempt, info.outcome)
        )

    def hooks(self, *names: str) -> list[tuple[Any, ...]]:
        return [r for r in self.records if r[0] in names]


def ids(result: Any) -> dict[str | None, str]:
    return {op.name: op.id for op in result.operations}


async def greet(step: StepContext, name: str) -> str:
    return f"Hello, {name}!"


async def test_10_11_nested_operations_name_their_parent_context() -> None:
    records = Records()

    async def child_operation(ctx: DurableContext, name: str) -> str:
        return await ctx.step(greet, name, name="greet")

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.run_in_child_context(child_operation, str(event), name="child")

    result = await LocalRunner(handler).run("Ada")
    by_name = ids(result)
    child, step = by_name["child"], by_name["greet"]
    assert [r[:4] for r in records.hooks("operation-end")] == [
        ("operation-end", step, child, "SUCCEEDED"),
        ("operation-end", child, "NONE", "SUCCEEDED"),
    ]


async def test_10_12_parallel_branches_report_their_function_s_start_and_end() -> None:
    records = Records()

    async def branch0(ctx: DurableContext) -> str:
        return "task-1"

    async def branch1(ctx: DurableContext) -> str:
        return "task-2"

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        batch = await ctx.parallel(
            [branch0, branch1], name="parallel", config=ParallelConfig(max_concurrency=1)
        )
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.result == ["task-1", "task-2"]
    by_name = ids(result)
    parallel = by_name["parallel"]
    b0, b1 = by_name["parallel-branch-0"], by_name["parallel-branch-1"]
    branch_events = [r for r in records.hooks("fn-start", "fn-end") if r[1] in (b0, b1)]
    assert branch_events == [
        ("fn-start", b0, parallel, 1),
        ("fn-end", b0, parallel, 1, "SUCCEEDED"),
        ("fn-start", b1, parallel, 1),
        ("fn-end", b1, parallel, 1, "SUCCEEDED"),
    ]


async def test_flat_branches_report_their_function_s_start_and_end_too() -> None:
    # A FLAT branch has no CONTEXT operation of its own, but its body is user code all the
    # same (AWS's SDK wraps it like a nested one): first run attempt 1, then None.
    records = Records()

    async def branch0(ctx: DurableContext) -> str:
        return await ctx.step(greet, "zero", name="zero")

    async def branch1(ctx: DurableContext) -> str:
        await ctx.wait(1, name="pause")
        return "one"

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        config = ParallelConfig(max_concurrency=1, nesting=NestingType.FLAT)
        batch = await ctx.parallel([branch0, branch1], name="flat", config=config)
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.result == ["Hello, zero!", "one"]
    flat = ids(result)["flat"]
    b0, b1 = operation_id(flat, 0), operation_id(flat, 1)
    assert b0 not in {op.id for op in result.operations}  # virtual: never recorded
    branch_events = [r for r in records.hooks("fn-start", "fn-end") if r[1] in (b0, b1)]
    assert branch_events == [
        ("fn-start", b0, flat, 1),
        ("fn-end", b0, flat, 1, "SUCCEEDED"),
        ("fn-start", b1, flat, 1),
        ("fn-end", b1, flat, 1, "INCOMPLETE"),  # suspended on its wait
        ("fn-start", b0, flat, None),  # the next invocation runs both again
        ("fn-end", b0, flat, None, "SUCCEEDED"),
        ("fn-start", b1, flat, None),
        ("fn-end", b1, flat, None, "SUCCEEDED"),
    ]


async def test_a_child_body_cut_short_by_suspension_ends_incomplete_and_runs_again() -> None:
    records = Records()

    async def pause(ctx: DurableContext) -> str:
        await ctx.wait(1, name="pause")
        return "done"

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.run_in_child_context(pause, name="child")

    result = await LocalRunner(handler).run()
    assert result.result == "done"
    child = ids(result)["child"]
    assert [r for r in records.hooks("fn-start", "fn-end") if r[1] == child] == [
        ("fn-start", child, "NONE", 1),
        ("fn-end", child, "NONE", 1, "INCOMPLETE"),
        ("fn-start", child, "NONE", None),  # the body runs again: not a numbered attempt
        ("fn-end", child, "NONE", None, "SUCCEEDED"),
    ]


async def test_each_condition_check_reports_its_function_s_start_and_end() -> None:
    records = Records()

    def poll(state: int, check: Any) -> int:
        return state + 1

    def until_two(state: int, attempt: int) -> WaitForConditionDecision:
        if state >= 2:
            return WaitForConditionDecision.stop_polling()
        return WaitForConditionDecision.continue_waiting(Duration.from_seconds(1))

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> int:
        state: int = await ctx.wait_for_condition(
            poll, initial_state=0, strategy=until_two, name="cond"
        )
        return state

    result = await LocalRunner(handler).run()
    assert result.result == 2
    cond = ids(result)["cond"]
    assert [r for r in records.hooks("fn-start", "fn-end") if r[1] == cond] == [
        ("fn-start", cond, "NONE", 1),
        ("fn-end", cond, "NONE", 1, "SUCCEEDED"),
        ("fn-start", cond, "NONE", 2),
        ("fn-end", cond, "NONE", 2, "SUCCEEDED"),
    ]


async def test_10_13_a_retried_step_starts_replayed_and_a_finished_one_is_not_repeated() -> None:
    records = Records()
    retry = StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=3,
                initial_delay=Duration.from_seconds(1),
                retryable_error_types=[RuntimeError],
            )
        )
    )

    async def step_a(step: StepContext) -> str:
        return "a"

    async def step_b(step: StepContext) -> str:
        if step.attempt < 2:
            raise RuntimeError(f"Attempt {step.attempt} failed")
        return "Operation succeeded"

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.step(step_a, name="step_a")
        return await ctx.step(step_b, name="step_b", config=retry)

    result = await LocalRunner(handler).run()
    assert result.result == "Operation succeeded"
    a, b = ids(result)["step_a"], ids(result)["step_b"]
    steps = [r[:3] for r in records.hooks("operation-start", "operation-end")]
    assert steps == [
        ("operation-start", a, False),
        ("operation-end", a, "NONE"),
        ("operation-start", b, False),
        ("operation-start", b, True),  # the retry invocation: b resumes, replayed
        ("operation-end", b, "NONE"),
    ]


async def test_10_14_and_10_15_ends_carry_the_recorded_result_or_error() -> None:
    records = Records()
    twice = StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=2,
                initial_delay=Duration.from_seconds(1),
                retryable_error_types=[RuntimeError],
            )
        )
    )

    async def step_a(step: StepContext) -> str:
        return "task-a"

    async def always_fail(step: StepContext) -> str:
        raise RuntimeError("boom")

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.step(step_a, name="step_a")
        await ctx.step(
            always_fail, name="once", config=StepConfig(retry_strategy=RetryPresets.none())
        )
        return "unreachable"

    @durable_execution(plugins=[records])
    async def exhausts(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(always_fail, name="always_fail", config=twice)

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    a, once = ids(result)["step_a"], ids(result)["once"]
    assert [r for r in records.hooks("operation-end")] == [
        ("operation-end", a, "NONE", "SUCCEEDED", '"task-a"', "NONE"),
        ("operation-end", once, "NONE", "FAILED", "NONE", "boom"),
    ]

    records.records.clear()
    result = await LocalRunner(exhausts).run()
    assert result.status == "FAILED"
    op = ids(result)["always_fail"]
    step_hooks = [
        r[:2] + r[3:] for r in records.hooks("fn-start", "fn-end", "operation-end") if r[1] == op
    ]
    assert step_hooks == [
        ("fn-start", op, 1),
        ("fn-end", op, 1, "FAILED"),
        ("fn-start", op, 2),
        ("fn-end", op, 2, "FAILED"),
        ("operation-end", op, "FAILED", "NONE", "boom"),
    ]


async def test_10_16_a_suspending_invocation_ends_pending_and_the_replay_succeeds() -> None:
    records = Records()

    @durable_execution(plugins=[records])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(Duration.from_seconds(2))
        return "Wait completed"

    result = await LocalRunner(handler).run()
    assert result.result == "Wait completed"
    assert records.hooks("invocation-start", "invocation-end") == [
        ("invocation-start", True),
        ("invocation-end", True, False, "PENDING"),
        ("invocation-start", False),
        ("invocation-end", False, True, "SUCCEEDED"),
    ]
    # The wait's end (it elapsed while suspended) is told once, by the second invocation.
    second = records.records.index(("invocation-start", False))
    ends = [i for i, r in enumerate(records.records) if r[0] == "operation-end"]
    assert len(ends) == 1
    assert ends[0] > second
