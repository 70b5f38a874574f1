"""``ctx.map`` and ``ctx.parallel``: identity, completion policies, suspension and replay."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import warnings
from typing import Any

import pytest
from support import SignallingBackend, invoke_once, start

from durable_async import (
    BatchItemStatus,
    BatchResult,
    ChildContextError,
    CompletionConfig,
    CompletionReason,
    DurableContext,
    MapConfig,
    NestingType,
    OperationStatus,
    OperationType,
    ParallelBranch,
    ParallelConfig,
    StepContext,
    ValidationError,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._serdes import EXTENDED, SerDesContext
from durable_async._wire.models import ErrorObject, Operation
from durable_async.testing import ExecutionResult, LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio


async def echo(step: StepContext, value: Any) -> Any:
    return value


def contexts(result: ExecutionResult) -> list[Operation]:
    return [op for op in result.operations if op.type is OperationType.CONTEXT]


def projection(batch: BatchResult) -> dict[str, Any]:
    return {
        "reason": batch.completion_reason,
        "status": batch.status,
        "succeeded": [item.index for item in batch.succeeded()],
        "failed": [item.index for item in batch.failed()],
        "started": [item.index for item in batch.started()],
    }


# -- identity and wire -------------------------------------------------------------------


async def test_branch_ids_names_and_subtypes_are_aws_s() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        async def item(c: DurableContext, value: int, index: int, items: Any) -> int:
            return await c.step(echo, value * 10 + index, name="times")

        mapped = await ctx.map([1, 2], item, name="m", config=MapConfig(max_concurrency=1))

        async def first(c: DurableContext) -> str:
            return "a"

        async def second(c: DurableContext) -> str:
            return "b"

        branches: list[Any] = [first, ParallelBranch(second, name="named")]
        run = await ctx.parallel(branches, name="p")
        return [mapped.get_results(), run.get_results()]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == [[10, 21], ["a", "b"]]
    ops = contexts(result)
    map_id, par_id = operation_id(None, 1), operation_id(None, 2)
    assert [(op.id, op.sub_type, op.name, op.parent_id) for op in ops] == [
        (map_id, "Map", "m", None),
        (operation_id(map_id, 0), "MapIteration", "map-item-0", map_id),
        (operation_id(map_id, 1), "MapIteration", "map-item-1", map_id),
        (par_id, "Parallel", "p", None),
        (operation_id(par_id, 0), "ParallelBranch", "parallel-branch-0", par_id),
        (operation_id(par_id, 1), "ParallelBranch", "named", par_id),
    ]
    # AWS's own value for branch 0 of the first operation (from a recorded history).
    assert operation_id(map_id, 0).startswith("1712f93e")
    step = next(op for op in result.operations if op.type is OperationType.STEP)
    assert step.parent_id == operation_id(map_id, 0)
    assert step.id == operation_id(operation_id(map_id, 0), 1)


def test_the_batch_result_is_stored_in_aws_s_envelope() -> None:
    batch = BatchResult(
        (
            BatchItemFactory.ok(0, "ok"),
            BatchItemFactory.failed(1, "branch failed", "RuntimeError"),
        ),
        CompletionReason.FAILURE_TOLERANCE_EXCEEDED,
    )
    stored = EXTENDED.serialize(batch, SerDesContext())
    assert stored == (
        '{"t":"br","v":{"all":{"t":"l","v":['
        '{"t":"m","v":{"index":{"t":"i","v":0},"status":{"t":"s","v":"SUCCEEDED"},'
        '"result":{"t":"s","v":"ok"},"error":{"t":"n","v":null}}},'
        '{"t":"m","v":{"index":{"t":"i","v":1},"status":{"t":"s","v":"FAILED"},'
        '"result":{"t":"n","v":null},"error":{"t":"m","v":{"ErrorMessage":'
        '{"t":"s","v":"branch failed"},"ErrorType":{"t":"s","v":"RuntimeError"}}}}}]},'
        '"completionReason":{"t":"s","v":"FAILURE_TOLERANCE_EXCEEDED"}}}'
    )
    assert EXTENDED.deserialize(stored, SerDesContext()) == batch


class BatchItemFactory:
    @staticmethod
    def ok(index: int, result: Any) -> Any:
        from durable_async import BatchItem

        return BatchItem(index, BatchItemStatus.SUCCEEDED, result)

    @staticmethod
    def failed(index: int, message: str, type_: str) -> Any:
        from durable_async import BatchItem

        return BatchItem(index, BatchItemStatus.FAILED, error=ErrorObject(message, type_))


# -- completion policies ---------------------------------------------------------------


ALL, EXCEEDED = "ALL_COMPLETED", "FAILURE_TOLERANCE_EXCEEDED"


def outcome_branches(outcomes: str, ran: list[int]) -> list[Any]:
    """Branches that succeed (``s``) or fail (``f``), recording that they ran."""

    def make(index: int, outcome: str) -> Any:
        async def branch(c: DurableContext) -> str:
            ran.append(index)
            if outcome == "f":
                raise RuntimeError(f"branch {index} failed")
            return f"r{index}"

        return branch

    return [make(i, o) for i, o in enumerate(outcomes)]


@pytest.mark.parametrize(
    ("outcomes", "completion", "expected", "ran_count"),
    [
        # The default (all successful): the first failure ends the batch.
        ("sfs", None, ("FAILURE_TOLERANCE_EXCEEDED", [0], [1], []), 2),
        ("sfs", CompletionConfig(tolerated_failure_count=1), ("ALL_COMPLETED", [0, 2], [1], []), 3),
        ("ffs", CompletionConfig(tolerated_failure_count=1), (EXCEEDED, [], [0, 1], []), 2),
        # Strictly greater: one failure in four is 25 %, which 25 % tolerates.
        ("fsss", CompletionConfig(tolerated_failure_percentage=25), (ALL, [1, 2, 3], [0], []), 4),
        ("ffss", CompletionConfig(tolerated_failure_percentage=25), (EXCEEDED, [], [0, 1], []), 2),
        ("ssss", CompletionConfig(min_successful=2), ("MIN_SUCCESSFUL_REACHED", [0, 1], [], []), 2),
        # min_successful alone never stops on failures.
        ("sfs", CompletionConfig(min_successful=3), ("ALL_COMPLETED", [0, 2], [1], []), 3),
        ("ffss", CompletionConfig(min_successful=3, tolerated_failure_count=1),
         (EXCEEDED, [], [0, 1], []), 2),
        ("fff", CompletionConfig.all_completed(), ("ALL_COMPLETED", [], [0, 1, 2], []), 3),
        ("fsf", CompletionConfig.first_successful(), ("MIN_SUCCESSFUL_REACHED", [1], [0], []), 2),
        ("", None, ("ALL_COMPLETED", [], [], []), 0),
    ],
)  # fmt: skip
async def test_completion_policies_end_the_batch_as_aws_s_do(
    outcomes: str,
    completion: CompletionConfig | None,
    expected: tuple[str, list[int], list[int], list[int]],
    ran_count: int,
) -> None:
    ran: list[int] = []
    config = ParallelConfig(max_concurrency=1)
    if completion is not None:
        config = ParallelConfig(max_concurrency=1, completion_config=completion)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        batch = await ctx.parallel(outcome_branches(outcomes, ran), config=config)
        return projection(batch)

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    reason, succeeded, failed, started = expected
    assert result.result["reason"] == reason
    assert result.result["succeeded"] == succeeded
    assert result.result["failed"] == failed
    assert result.result["started"] == started
    assert result.result["status"] == ("FAILED" if failed else "SUCCEEDED")
    assert len(ran) == ran_count  # branches after the end never started


async def test_a_policy_met_while_branches_are_parked_cancels_them_without_failing_them() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def slow(c: DurableContext) -> str:
            await c.wait(seconds=3600, name="long")
            return "slow"

        async def quick(c: DurableContext) -> str:
            return await c.step(echo, "quick", name="quick")

        config = ParallelConfig(completion_config=CompletionConfig.first_successful())
        batch = await ctx.parallel([slow, quick, slow], config=config)
        return projection(batch)

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"  # in this invocation: nothing waits for the hour
    import json

    assert json.loads(output["Result"]) == {
        "reason": "MIN_SUCCESSFUL_REACHED",
        "status": "SUCCEEDED",
        "succeeded": [1],
        "failed": [],
        "started": [0, 2],
    }
    ops = backend.executions[arn].operations.values()
    branches = [op for op in ops if op.sub_type == "ParallelBranch"]
    # The cut-off branches are left started: their cancellation recorded no failure.
    assert [op.status for op in branches] == [
        OperationStatus.STARTED,
        OperationStatus.SUCCEEDED,
        OperationStatus.STARTED,
    ]


def test_bad_configs_are_refused_before_any_branch_starts() -> None:
    with pytest.raises(ValidationError, match="max_concurrency must be at least 1"):
        ParallelConfig(max_concurrency=0)
    with pytest.raises(ValidationError, match="max_concurrency"):
        MapConfig(max_concurrency=-1)
    with pytest.raises(ValidationError, match="min_successful"):
        CompletionConfig(min_successful=0)
    with pytest.raises(ValidationError, match="tolerated_failure_percentage"):
        CompletionConfig(tolerated_failure_percentage=101)
    with pytest.raises(ValidationError, match="tolerated_failure_count"):
        CompletionConfig(tolerated_failure_count=-1)


async def test_min_successful_over_the_item_count_records_nothing() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(completion_config=CompletionConfig(min_successful=3))
        return await ctx.map([1, 2], lambda c, x, i, xs: c.step(echo, x), config=config)

    result = await LocalRunner(handler).run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert "min_successful cannot be greater than total items: 3 > 2" in (
        result.error.message or ""
    )
    assert contexts(result) == []


async def test_throw_if_error_raises_the_first_failure_as_child_context_error() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = ParallelConfig(completion_config=CompletionConfig.all_completed())
        batch = await ctx.parallel(outcome_branches("sff", []), config=config)
        assert batch.has_failure
        assert [e.message for e in batch.get_errors() if e] == [
            "branch 1 failed",
            "branch 2 failed",
        ]
        try:
            batch.throw_if_error()
        except ChildContextError as error:
            return [error.message, error.error_type]
        return None

    result = await LocalRunner(handler).run()
    assert result.result == ["branch 1 failed", "RuntimeError"]


# -- concurrency, suspension and replay ---------------------------------------------------


async def test_a_parked_branch_keeps_its_slot_and_the_batch_resumes_after_the_wait() -> None:
    ran: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def item(c: DurableContext, value: str, index: int, items: Any) -> str:
            ran.append(value)
            if index == 0:
                await c.wait(seconds=5, name="pause")
            return await c.step(echo, value.upper(), name="upper")

        batch = await ctx.map(["a", "b"], item, config=MapConfig(max_concurrency=1))
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == ["A", "B"]
    assert result.invocations == 2
    # Branch b never started in the first invocation: a's wait kept the only slot.
    assert ran == ["a", "a", "b"]


async def test_a_finished_batch_replays_from_its_record_without_running_branches() -> None:
    ran: list[int] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def item(c: DurableContext, value: int, index: int, items: Any) -> int:
            ran.append(value)
            return value * 2

        batch = await ctx.map([1, 2, 3], item)
        await ctx.wait(seconds=1)
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.result == [2, 4, 6]
    assert result.invocations == 2
    assert sorted(ran) == [1, 2, 3]


@pytest.mark.parametrize("nesting", [NestingType.NESTED, NestingType.FLAT])
async def test_a_result_too_large_to_store_is_rebuilt_from_its_branches(
    nesting: NestingType,
) -> None:
    ran: list[int] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def item(c: DurableContext, value: int, index: int, items: Any) -> str:
            ran.append(index)
            return await c.step(echo, str(index) * 70_000, name="big")

        config = MapConfig(nesting=nesting)
        batch = await ctx.map([0, 1, 2, 3], item, config=config)
        await ctx.wait(seconds=1)
        return [batch.success_count, batch.total_count, [len(r) for r in batch.get_results()]]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == [4, 4, [70_000] * 4]  # rebuilt whole, not empty
    batch_op = contexts(result)[0]
    assert batch_op.context_details is not None
    assert batch_op.context_details.replay_children is True
    assert '"type": "MapResult"' in (batch_op.context_details.result or "")
    if nesting is NestingType.FLAT:
        assert len(contexts(result)) == 1  # no operation per branch
        assert sorted(ran) == [0, 0, 1, 1, 2, 2, 3, 3]  # FLAT bodies replay their steps
    else:
        assert sorted(ran) == [0, 1, 2, 3]  # NESTED branches return their records


async def test_flat_branches_record_no_context_of_their_own() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def first(c: DurableContext) -> str:
            return await c.step(echo, "fa", name="fa")

        async def second(c: DurableContext) -> str:
            return await c.step(echo, "fb", name="fb")

        config = ParallelConfig(nesting=NestingType.FLAT, max_concurrency=1)
        batch = await ctx.parallel([first, second], config=config)
        await ctx.wait(seconds=1)
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == ["fa", "fb"]
    batch_id = operation_id(None, 1)
    steps = [op for op in result.operations if op.type is OperationType.STEP]
    assert [(op.name, op.parent_id, op.id) for op in steps] == [
        ("fa", batch_id, operation_id(operation_id(batch_id, 0), 1)),
        ("fb", batch_id, operation_id(operation_id(batch_id, 1), 1)),
    ]
    assert len(contexts(result)) == 1


@pytest.mark.parametrize("seed", range(40))
async def test_results_stay_in_index_order_whatever_order_branches_finish(seed: int) -> None:
    rng = random.Random(seed)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def item(c: DurableContext, value: int, index: int, items: Any) -> int:
            first: int = await c.step(echo, value, name="first")
            for _ in range(rng.randrange(5)):
                await asyncio.sleep(0)
            await c.wait(seconds=1 + rng.randrange(3))
            second: int = await c.step(echo, value, name="second")
            return first + second

        batch = await ctx.map(list(range(6)), item, config=MapConfig(max_concurrency=3))
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == [2 * v for v in range(6)]


async def test_a_thousand_item_map_runs_on_one_thread() -> None:
    threads: set[int] = set()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def item(c: DurableContext, value: int, index: int, items: Any) -> int:
            threads.add(threading.get_ident())
            return await c.step(echo, value, name="v")

        batch = await ctx.map(list(range(1000)), item)
        return [batch.success_count, sum(batch.get_results())]

    result = await LocalRunner(handler).run()
    assert result.result == [1000, sum(range(1000))]
    assert len(threads) == 1


async def test_a_branch_whose_wait_falls_due_while_another_runs_resumes_in_process() -> None:
    backend = SignallingBackend()
    arn = start(backend)

    def wait_recorded() -> bool:
        ops = backend.executions[arn].operations.values()
        return any(op.type is OperationType.WAIT for op in ops)

    async def slow(step: StepContext) -> str:
        while not wait_recorded():  # the sibling's wait reaches the service first
            backend.checkpointed.clear()
            await backend.checkpointed.wait()
        backend.advance(2)  # two (virtual) seconds of work: the sibling's wait falls due
        return "slow"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        async def waits(c: DurableContext) -> str:
            await c.wait(seconds=1, name="one-second")
            return await c.step(echo, "waited", name="after")

        async def works(c: DurableContext) -> str:
            return await c.step(slow, name="slow")

        batch = await ctx.parallel([waits, works], config=ParallelConfig(max_concurrency=2))
        return batch.get_results()

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "SUCCEEDED", "Result": '["waited", "slow"]'}


async def test_a_finished_branch_context_is_freed_without_the_cyclic_gc() -> None:
    # A 10,000-item map over a slow backend finishes branches one batch at a time; a
    # finished branch that only the cyclic GC can free stays resident until a full
    # collection, which is what the peak RSS of a large map was made of.
    import gc

    def contexts() -> int:
        return sum(isinstance(o, DurableContext) for o in gc.get_objects())

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        before = contexts()
        batch = await ctx.map(list(range(20)), lambda c, v, i, items: c.step(echo, v))
        return [before, contexts(), len(batch.get_results())]

    gc.collect()
    gc.disable()
    try:
        result = await LocalRunner(handler, MemoryBackend()).run(None)
    finally:
        gc.enable()
    assert result.status == "SUCCEEDED", result.error
    before, after, items = result.result
    assert items == 20
    assert after == before


async def test_a_map_branch_waiting_for_its_result_holds_only_its_own_frames() -> None:
    # With no concurrency bound, every branch of a large map waits for its step's result
    # to be recorded at the same time; each frame it holds is walked by every full
    # collection. A waiting branch is its child context, the item function and the step.
    import inspect

    stacks: list[list[str]] = []

    async def item_step(sc: StepContext, v: int) -> int:
        if v == 4:  # the last branch to start: the others are all waiting by now
            for task in asyncio.all_tasks():
                names: list[str] = []
                awaited: Any = task.get_coro()
                while inspect.iscoroutine(awaited):
                    names.append(awaited.cr_code.co_name)
                    awaited = awaited.cr_await
                if names[:1] == ["run_child"] and "item" in names:
                    stacks.append(names)
        return v

    async def item(c: DurableContext, v: int, i: int, items: Any) -> int:
        return await c.step(item_step, v)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[int]:
        batch = await ctx.map(list(range(5)), item)
        return batch.get_results()

    result = await LocalRunner(handler, MemoryBackend()).run(None)
    assert result.status == "SUCCEEDED", result.error
    assert result.result == [0, 1, 2, 3, 4]
    waiting = [names for names in stacks if names[-1] == "run_step"]
    assert len(waiting) == 4
    assert all(names == ["run_child", "item", "run_step"] for names in waiting), stacks


@pytest.mark.parametrize("nesting", [NestingType.FLAT, NestingType.NESTED])
async def test_a_branch_ending_as_its_sibling_parks_completes_the_batch_in_this_invocation(
    nesting: NestingType,
) -> None:
    async def quick(sc: StepContext) -> str:
        return "worked"

    # Both branches' steps are acknowledged by one call, so in the same turn of the loop
    # the first branch parks on its wait and the second ends. The ended branch's done
    # callback still waits to run when the park asks whether anything can move; it must
    # count, or the invocation suspends with the policy already met.
    async def waits(c: DurableContext) -> str:
        await c.step(quick)
        await c.wait(seconds=60, name="long")
        return "waited"

    async def works(c: DurableContext) -> str:
        return await c.step(quick)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = ParallelConfig(
            nesting=nesting, completion_config=CompletionConfig(min_successful=1)
        )
        batch = await ctx.parallel([waits, works], config=config)
        return [batch.completion_reason.value, batch.get_results()]

    result = await LocalRunner(handler, MemoryBackend()).run(None)
    assert result.status == "SUCCEEDED", result.error
    assert result.result == ["MIN_SUCCESSFUL_REACHED", ["worked"]]
    assert result.invocations == 1


async def test_a_branch_that_changes_the_items_does_not_change_what_later_branches_get() -> None:
    # Replay does not run a finished branch's body again, so a change it made to the items
    # would not be there on replay: each branch gets the item as it was when the map began.
    got: list[str] = []

    async def item(c: DurableContext, v: str, i: int, items: Any) -> str:
        got.append(v)
        if i == 0:
            items[1] = "changed"
        return v

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        batch = await ctx.map(["a", "b"], item, config=MapConfig(max_concurrency=1))
        return batch.get_results()

    result = await LocalRunner(handler, MemoryBackend()).run(None)
    assert result.status == "SUCCEEDED", result.error
    assert result.result == ["a", "b"]
    assert got == ["a", "b"]


# -- branch names ---------------------------------------------------------------------------


def sent_updates(backend: MemoryBackend) -> list[Any]:
    """Every update sent for the execution, in the order it was sent."""
    return [u for call in backend.checkpoint_calls for u in call.updates]


async def keep(c: DurableContext, value: int, index: int, items: Any) -> int:
    return value


async def one(c: DurableContext) -> int:
    return 1


@pytest.mark.parametrize("bad", ["é" * 3, "bad\nname", "x" * 257, 5])
async def test_an_item_namer_s_bad_name_raises_validation_error_before_the_batch_starts(
    bad: Any,
) -> None:
    errors: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(item_namer=lambda item, index: "ok" if index == 0 else bad)
        try:
            await ctx.map([1, 2], keep, name="m", config=config)
        except ValidationError as error:
            errors.append(str(error))
        await ctx.wait(seconds=1)  # the next invocation meets the same error on replay
        return await ctx.step(echo, "after", name="after")

    backend = MemoryBackend()
    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "after"
    assert result.invocations == 2
    assert len(errors) == 2
    assert "map item 1" in errors[0]
    assert "item_namer" in errors[0]
    assert repr(bad) in errors[0]
    # Nothing was sent for the batch, not even its START: no CONTEXT update at all.
    assert not any(u.type is OperationType.CONTEXT for u in sent_updates(backend))
    assert contexts(result) == []


async def test_a_parallel_branch_s_bad_name_raises_validation_error_before_the_batch_starts() -> (
    None
):
    backend = MemoryBackend()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        branches = [ParallelBranch(one, name="fine"), ParallelBranch(one, name="bad\nname")]
        return await ctx.parallel(branches, name="p")

    result = await LocalRunner(handler, backend).run()
    assert result.status == "FAILED"
    assert result.error is not None
    assert (result.error.type or "").endswith(".ValidationError")
    message = result.error.message or ""
    assert "parallel branch 1" in message
    assert "ParallelBranch(name=...)" in message
    assert "'bad\\nname'" in message
    assert not any(u.type is OperationType.CONTEXT for u in sent_updates(backend))


async def test_an_async_item_namer_is_refused_without_a_never_awaited_warning() -> None:
    async def namer(item: Any, index: int) -> str:
        return f"item-{index}"

    errors: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(item_namer=namer)  # type: ignore[arg-type]  # the mistake tested
        try:
            await ctx.map([1, 2], keep, config=config)
        except ValidationError as error:
            errors.append(str(error))
        return "done"

    backend = MemoryBackend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await LocalRunner(handler, backend).run()
        gc.collect()  # a coroutine left unclosed warns when it is collected
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "done"
    assert len(errors) == 1
    assert "map item 0" in errors[0]
    assert "item_namer must be a plain function returning a str" in errors[0]
    assert [w for w in caught if "never awaited" in str(w.message)] == []
    assert contexts(result) == []


async def test_an_item_namer_giving_none_or_empty_records_no_name_and_valid_names_as_given() -> (
    None
):
    names: list[Any] = [None, "", "item-2", " ~printable~ ", "x" * 256]

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(item_namer=lambda item, index: names[index])
        mapped = await ctx.map([0, 1, 2, 3, 4], keep, name="m", config=config)
        branches: list[Any] = [ParallelBranch(one, name=""), ParallelBranch(one, name="named"), one]
        run = await ctx.parallel(branches, name="p")
        return [mapped.get_results(), run.get_results()]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == [[0, 1, 2, 3, 4], [1, 1, 1]]
    map_id, par_id = operation_id(None, 1), operation_id(None, 2)
    assert [(op.id, op.name) for op in contexts(result)] == [
        (map_id, "m"),
        *((operation_id(map_id, i), name or None) for i, name in enumerate(names)),
        (par_id, "p"),
        (operation_id(par_id, 0), None),
        (operation_id(par_id, 1), "named"),
        (operation_id(par_id, 2), "parallel-branch-2"),
    ]


async def test_an_item_namer_that_raises_still_fails_the_batch_from_its_body() -> None:
    def namer(item: Any, index: int) -> str:
        raise KeyError(index)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            await ctx.map([1], keep, name="m", config=MapConfig(item_namer=namer))
        except ChildContextError as error:
            return error.error_type
        return None

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "KeyError"
    assert [(op.name, op.status) for op in contexts(result)] == [("m", OperationStatus.FAILED)]
