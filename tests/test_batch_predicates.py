"""``CompletionConfig.should_complete``: a custom rule decides when a batch ends, as in AWS 3.x."""

from __future__ import annotations

from typing import Any

import pytest

from durable_async import (
    BatchItemStatus,
    CompletionConfig,
    CompletionDecision,
    CompletionOutcome,
    CompletionStatus,
    DurableContext,
    DurableOperationError,
    ParallelConfig,
    ValidationError,
    complete_batch,
    continue_batch,
    durable_execution,
)
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


def branches(outcomes: str, ran: list[int]) -> list[Any]:
    """Branches that succeed (``s``) or fail (``f``), recording that they ran."""

    def make(index: int, outcome: str) -> Any:
        async def branch(c: DurableContext) -> str:
            ran.append(index)
            if outcome == "f":
                raise RuntimeError(f"branch {index} failed")
            return f"r{index}"

        return branch

    return [make(i, o) for i, o in enumerate(outcomes)]


def run_parallel(outcomes: str, rule: Any, seen: list[CompletionStatus], ran: list[int]) -> Any:
    def predicate(status: CompletionStatus) -> CompletionDecision:
        seen.append(status)
        return rule(status)  # type: ignore[no-any-return]

    config = ParallelConfig(
        max_concurrency=1, completion_config=CompletionConfig(should_complete=predicate)
    )

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        batch = await ctx.parallel(branches(outcomes, ran), config=config)
        await ctx.wait(seconds=1, name="after")  # the next invocation replays the record
        try:
            batch.throw_if_error()
            raised = None
        except DurableOperationError as error:
            raised = f"{type(error).__name__}: {error.message}"
        return {
            "reason": batch.completion_reason.value,
            "status": batch.status.value,
            "items": [[item.index, item.status.value] for item in batch.all],
            "raised": raised,
        }

    return handler


async def test_the_predicate_ends_the_batch_once_it_says_complete() -> None:
    seen: list[CompletionStatus] = []
    ran: list[int] = []

    def two_successes(status: CompletionStatus) -> CompletionDecision:
        return complete_batch() if status.success_count >= 2 else continue_batch()

    result = await LocalRunner(run_parallel("fssss", two_successes, seen, ran)).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == {
        "reason": "CUSTOM_COMPLETION_SUCCEEDED",
        "status": "SUCCEEDED",  # even with a failed branch: the predicate decides
        "items": [[0, "FAILED"], [1, "SUCCEEDED"], [2, "SUCCEEDED"]],
        "raised": "ChildContextError: branch 0 failed",  # a failed branch is still raised
    }
    assert ran == [0, 1, 2]  # later branches never started
    # Asked before anything started, then after each branch; never again on replay.
    assert [(s.success_count, s.failure_count, s.completed_count) for s in seen] == [
        (0, 0, 0),
        (0, 1, 1),
        (1, 1, 2),
        (2, 1, 3),
    ]
    assert all(s.total_count == 5 for s in seen)


async def test_a_failed_outcome_fails_the_batch_without_any_failed_branch() -> None:
    ran: list[int] = []

    def give_up_after_two(status: CompletionStatus) -> CompletionDecision:
        if status.completed_count >= 2:
            return complete_batch(CompletionOutcome.FAILED)
        return continue_batch()

    result = await LocalRunner(run_parallel("sss", give_up_after_two, [], ran)).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == {
        "reason": "CUSTOM_COMPLETION_FAILED",
        "status": "FAILED",
        "items": [[0, "SUCCEEDED"], [1, "SUCCEEDED"]],
        "raised": "BatchCompletionError: Batch completed as failed by should_complete "
        "(CUSTOM_COMPLETION_FAILED)",
    }


async def test_the_predicate_sees_each_branch_by_index_for_quorum_rules() -> None:
    views: list[list[str | None]] = []

    def branch_zero_or_one_and_two(status: CompletionStatus) -> CompletionDecision:
        states = [item.status for item in status.items]
        views.append([None if s is None else s.value for s in states])
        ok = BatchItemStatus.SUCCEEDED
        if states[0] is ok or (states[1] is ok and states[2] is ok):
            return complete_batch()
        return continue_batch()

    result = await LocalRunner(run_parallel("fsss", branch_zero_or_one_and_two, [], [])).run()
    assert result.result["reason"] == "CUSTOM_COMPLETION_SUCCEEDED"
    assert [index for index, _ in result.result["items"]] == [0, 1, 2]
    assert views[0] == [None, None, None, None]
    assert views[-1] == ["FAILED", "SUCCEEDED", "SUCCEEDED", None]


async def test_a_predicate_that_completes_at_once_starts_no_branch() -> None:
    ran: list[int] = []
    result = await LocalRunner(run_parallel("ss", lambda s: complete_batch(), [], ran)).run()
    assert result.result["reason"] == "CUSTOM_COMPLETION_SUCCEEDED"
    assert result.result["items"] == []
    assert ran == []


async def test_a_predicate_that_never_completes_runs_every_branch_despite_failures() -> None:
    ran: list[int] = []
    result = await LocalRunner(run_parallel("fff", lambda s: continue_batch(), [], ran)).run()
    assert result.result["reason"] == "ALL_COMPLETED"
    assert result.result["status"] == "FAILED"
    assert ran == [0, 1, 2]  # no fail-fast: the predicate owns every early exit


async def test_a_predicate_returning_something_else_fails_the_batch_clearly() -> None:
    result = await LocalRunner(run_parallel("s", lambda s: True, [], [])).run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert "should_complete must return continue_batch() or complete_batch" in (
        result.error.message or ""
    )


def test_a_predicate_cannot_be_combined_with_thresholds_or_be_malformed() -> None:
    with pytest.raises(ValidationError, match="cannot be combined"):
        CompletionConfig(min_successful=1, should_complete=lambda s: continue_batch())
    with pytest.raises(ValidationError, match="must be callable"):
        CompletionConfig(should_complete="nope")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="outcome exactly when complete"):
        CompletionDecision(complete=True)
    with pytest.raises(ValidationError, match="outcome exactly when complete"):
        CompletionDecision(complete=False, outcome=CompletionOutcome.SUCCEEDED)
