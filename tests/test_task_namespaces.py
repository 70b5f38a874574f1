"""Tasks created inside an invocation: deterministic operation namespaces, none outlives it.

Branch tasks (``gather``, ``TaskGroup``, ``create_task``, anyio task groups, nested) get
operation IDs derived from where they were created, never from the order in which they
happen to run, so replay hands every recorded result back to the branch that recorded it.
Operations of the handler's own task (and of a child context's body) keep AWS's IDs.

The interleavings are forced without sleeping: between its two steps a branch yields a
number of loop turns drawn from a seeded ``random.Random`` that is drawn again in every
invocation, so the first run and each replay finish the branches in different orders.
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import pytest
from support import invoke_once, start

from durable_async import (
    DurableContext,
    OperationType,
    RetryPresets,
    StepConfig,
    StepContext,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async.testing import ExecutionResult, LocalRunner, MemoryBackend

SEEDS = range(200)

Branch = Callable[[DurableContext, str], Coroutine[Any, Any, Any]]
Spawn = Callable[[DurableContext, Branch, list[str]], Coroutine[Any, Any, list[Any]]]


# -- ways of running branches concurrently ------------------------------------------------


async def spawn_gather(c: DurableContext, branch: Branch, labels: list[str]) -> list[Any]:
    return list(await asyncio.gather(*(branch(c, label) for label in labels)))


async def spawn_task_group(c: DurableContext, branch: Branch, labels: list[str]) -> list[Any]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(branch(c, label)) for label in labels]
    return [task.result() for task in tasks]


async def spawn_create_task(c: DurableContext, branch: Branch, labels: list[str]) -> list[Any]:
    tasks = [asyncio.create_task(branch(c, label)) for label in labels]
    return [await task for task in tasks]


async def spawn_anyio(c: DurableContext, branch: Branch, labels: list[str]) -> list[Any]:
    results: dict[str, Any] = {}

    async def run(label: str) -> None:
        results[label] = await branch(c, label)

    async with anyio.create_task_group() as group:
        for label in labels:
            group.start_soon(run, label)
    return [results[label] for label in labels]


SPAWNERS = [
    pytest.param(spawn_gather, id="gather"),
    pytest.param(spawn_task_group, id="TaskGroup"),
    pytest.param(spawn_create_task, id="create_task"),
    pytest.param(spawn_anyio, id="anyio"),
]


# -- the scenario: two steps per branch, random loop turns between, replays around ----------


class Flaky(Exception):
    pass


#: The second step fails its first attempt and retries a (virtual) second later: the
#: invocation suspends mid-branch, and the next one replays the first steps.
RETRY_ONCE = StepConfig(retry_strategy=RetryPresets.linear())


class Scenario:
    """One execution of the branch scenario, its interleavings drawn from ``seed``.

    Every operation a branch issues is a STEP named "s", so were results handed out by
    completion order, no replay check could tell: the execution would succeed with results
    in the wrong branches.
    """

    def __init__(
        self, seed: int, spawn: Spawn, *, nested: bool, in_child: bool, waits: bool
    ) -> None:
        self.rng = random.Random(seed)
        self.spawn = spawn
        self.nested = nested
        self.in_child = in_child
        self.waits = waits
        #: How often each step body returned, by (branch label, call).
        self.runs: Counter[tuple[str, int]] = Counter()
        #: Per invocation, the order in which branches called their second step.
        self.second_calls: list[list[str]] = []

    async def record(self, step: StepContext, label: str, call: int) -> str:
        if call == 2 and step.attempt == 1 and not self.waits:
            raise Flaky(label)
        self.runs[label, call] += 1
        return f"{label}-{call}"

    async def turns(self) -> None:
        # Drawn afresh in every invocation: each one interleaves the branches differently.
        for _ in range(self.rng.randint(0, 4)):
            await asyncio.sleep(0)

    async def branch(self, c: DurableContext, label: str) -> list[str]:
        first = await c.step(self.record, label, 1, name="s")
        await self.turns()
        if self.waits:
            await c.wait(seconds=1)
            await self.turns()
        self.second_calls[-1].append(label)
        second = await c.step(self.record, label, 2, name="s", config=RETRY_ONCE)
        return [first, second]

    async def nested_branch(self, c: DurableContext, label: str) -> list[Any]:
        return list(
            await asyncio.gather(self.branch(c, f"{label}.0"), self.branch(c, f"{label}.1"))
        )

    async def orchestrate(self, c: DurableContext) -> list[Any]:
        branch = self.nested_branch if self.nested else self.branch
        results = await self.spawn(c, branch, ["a", "b"])
        await c.wait(seconds=1)  # one more replay, in which the second steps replay too
        return results

    def expected(self) -> list[Any]:
        def pair(label: str) -> list[str]:
            return [f"{label}-1", f"{label}-2"]

        if self.nested:
            return [[pair(f"{label}.0"), pair(f"{label}.1")] for label in ("a", "b")]
        return [pair("a"), pair("b")]

    async def run(self) -> ExecutionResult:
        @durable_execution
        async def handler(event: Any, ctx: DurableContext) -> list[Any]:
            self.second_calls.append([])
            if self.in_child:
                return await ctx.run_in_child_context(self.orchestrate, name="group")
            return await self.orchestrate(ctx)

        return await LocalRunner(handler).run()

    def reordered(self) -> bool:
        """Whether some invocation called the second steps in another order than another."""
        return len({tuple(order) for order in self.second_calls}) > 1


async def check_seeds(
    spawn: Spawn, *, nested: bool = False, in_child: bool = False, waits: bool = False
) -> None:
    wrong: list[str] = []
    reordered = 0
    for seed in SEEDS:
        scenario = Scenario(seed, spawn, nested=nested, in_child=in_child, waits=waits)
        result = await scenario.run()
        reordered += scenario.reordered()
        outcome = (result.status, result.result, result.invocations)
        if outcome != ("SUCCEEDED", scenario.expected(), 3):
            wrong.append(f"seed {seed}: {outcome} (calls {scenario.second_calls})")
        elif set(scenario.runs.values()) != {1}:
            wrong.append(f"seed {seed}: step bodies ran {dict(scenario.runs)}")
    # Tasks an SDK that failed to settle them left behind are finalized now, not while
    # pytest formats a failure: a finalizer inside ast.parse breaks it on CPython 3.11.
    gc.collect()
    assert not wrong, f"{len(wrong)}/{len(SEEDS)} seeds went wrong, first: {wrong[:3]}"
    # The seeds do what they are for: in many of them the replay ran in another order.
    assert reordered >= len(SEEDS) // 4


@pytest.mark.anyio
@pytest.mark.parametrize("spawn", SPAWNERS)
async def test_replay_hands_step_results_to_the_branch_that_recorded_them(spawn: Spawn) -> None:
    await check_seeds(spawn)


@pytest.mark.anyio
async def test_durable_waits_between_branch_steps_replay_to_the_right_branch() -> None:
    # A WAIT between the steps: the branches' operations differ in kind, and each replay
    # lets a branch past its (finished) wait in another order than the first run did.
    await check_seeds(spawn_gather, waits=True)


@pytest.mark.anyio
async def test_nested_gathers_replay_to_the_right_branch_whatever_the_order() -> None:
    await check_seeds(spawn_gather, nested=True)


@pytest.mark.anyio
@pytest.mark.parametrize("spawn", [SPAWNERS[0], SPAWNERS[1]])
async def test_branches_inside_a_child_context_replay_to_the_right_branch(spawn: Spawn) -> None:
    await check_seeds(spawn, in_child=True)


# -- identities ------------------------------------------------------------------------


async def named(step: StepContext, value: str) -> str:
    return value


async def id_branch(c: DurableContext, index: int, turns: int) -> str:
    await c.step(named, f"b{index}", name=f"b{index}-first")
    for _ in range(turns):
        await asyncio.sleep(0)
    await c.wait(seconds=1, name=f"b{index}-wait")
    return await c.step(named, f"b{index}", name=f"b{index}-second")


async def inner(child: DurableContext) -> str:
    return await child.step(named, "inner", name="inner")


@durable_execution
async def ids_handler(event: Any, ctx: DurableContext) -> list[str]:
    first = await ctx.step(named, "first", name="first")
    branches = await asyncio.gather(
        *(id_branch(ctx, index, turns) for index, turns in enumerate(event["turns"]))
    )
    pair = await asyncio.gather(ctx.step(named, "x", name="x"), ctx.step(named, "y", name="y"))
    nested = await ctx.run_in_child_context(inner, name="child")
    return [first, *branches, *pair, nested]


async def recorded_ids(turns: list[int]) -> tuple[ExecutionResult, dict[str, str | None]]:
    """The execution of ``ids_handler`` and the name of each operation it recorded, by ID."""
    result = await LocalRunner(ids_handler).run({"turns": turns})
    ops = [op for op in result.operations if op.type is not OperationType.EXECUTION]
    ids = {op.id: op.name for op in ops}
    assert len(ids) == len(ops)
    return result, ids


def assert_succeeded(result: ExecutionResult) -> None:
    assert (result.status, result.result) == ("SUCCEEDED", ["first", "b0", "b1", "x", "y", "inner"])


@pytest.mark.anyio
async def test_operations_of_the_handler_task_and_child_bodies_keep_aws_ids() -> None:
    result, ids = await recorded_ids([0, 3])
    child = operation_id(None, 4)
    handler_ids = {
        operation_id(None, 1): "first",
        operation_id(None, 2): "x",
        operation_id(None, 3): "y",
        child: "child",
        operation_id(child, 1): "inner",
    }
    assert {op_id: ids.get(op_id) for op_id in handler_ids} == handler_ids
    assert_succeeded(result)


@pytest.mark.anyio
async def test_branch_task_ids_are_distinct_and_independent_of_interleaving() -> None:
    result_one, one = await recorded_ids([0, 5])
    result_other, other = await recorded_ids([5, 0])
    branch_names = {f"b{i}-{what}" for i in (0, 1) for what in ("first", "wait", "second")}
    # Every branch operation got an ID of its own (none collided with another branch's or
    # with the handler's), and both executions recorded the same IDs for the same names.
    assert sorted(name for name in one.values() if name in branch_names) == sorted(branch_names)
    assert len(one) == 5 + len(branch_names)
    assert one == other
    assert_succeeded(result_one)
    assert_succeeded(result_other)


# -- a finished child context does not shift later namespaces ---------------------------


@pytest.mark.anyio
async def test_a_finished_child_context_does_not_shift_namespaces_of_later_tasks() -> None:
    runs: Counter[str] = Counter()

    async def record(step: StepContext, label: str) -> str:
        runs[label] += 1
        return label

    async def branch(c: DurableContext, label: str, pause: bool) -> list[str]:
        first = await c.step(record, f"{label}-1", name="s")
        if pause:
            await c.wait(seconds=1)
        return [first, await c.step(record, f"{label}-2", name="s")]

    async def body(child: DurableContext) -> list[Any]:
        return list(await asyncio.gather(branch(child, "c0", False), branch(child, "c1", False)))

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        # Finished in the first invocation, so replay does not run its body (nor create the
        # tasks it created); the root's branches below must keep their namespaces anyway.
        in_child = await ctx.run_in_child_context(body, name="child")
        at_root = await asyncio.gather(branch(ctx, "r0", True), branch(ctx, "r1", True))
        return [in_child, list(at_root)]

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert result.result == [
        [["c0-1", "c0-2"], ["c1-1", "c1-2"]],
        [["r0-1", "r0-2"], ["r1-1", "r1-2"]],
    ]
    assert result.invocations == 2
    assert set(runs.values()) == {1}, runs
    steps = [op for op in result.operations if op.type is OperationType.STEP]
    waits = [op for op in result.operations if op.type is OperationType.WAIT]
    assert (len(steps), len(waits)) == (8, 2)


# -- no task outlives its invocation ---------------------------------------------------


class Boom(Exception):
    pass


class Forever:
    """A task that never touches ``ctx`` and would wait forever."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.events: list[str] = []

    async def forever(self) -> None:
        self.events.append("started")
        try:
            await asyncio.Event().wait()
        finally:
            self.events.append("ended")

    async def spawn(self) -> None:
        self.tasks.append(asyncio.create_task(self.forever()))
        await asyncio.sleep(0)  # let it start (eager tasks already have)

    def assert_cancelled(self) -> None:
        assert self.events == ["started", "ended"]
        [task] = self.tasks
        assert task.done()
        assert task.cancelled()


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED", "PENDING"])
async def test_a_task_that_never_touches_ctx_does_not_outlive_the_invocation(
    outcome: str,
) -> None:
    forever = Forever()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        await forever.spawn()
        if outcome == "FAILED":
            raise Boom("the handler fails")
        if outcome == "PENDING":
            await ctx.wait(seconds=1)
        return "done"

    backend = MemoryBackend()
    output = await invoke_once(handler, backend, start(backend))
    assert output["Status"] == outcome
    forever.assert_cancelled()


@pytest.mark.anyio
async def test_a_task_created_in_a_step_body_does_not_outlive_the_invocation() -> None:
    forever = Forever()

    async def body(step: StepContext) -> str:
        await forever.spawn()
        return "stepped"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(body)

    backend = MemoryBackend()
    output = await invoke_once(handler, backend, start(backend))
    assert output == {"Status": "SUCCEEDED", "Result": '"stepped"'}
    forever.assert_cancelled()


#: The IDs the release before this one recorded for the steps of two tasks gathered inside
#: map branch 0 (the same for NESTED and FLAT branches).
RECORDED_BEFORE = {
    "ac582b3fcd4cea3acd3810b1903eb6a61db67cd855cb20bfa9adc22cbbbb2266": "10",
    "04258c15317c19f9583e90c3870fdb4af4251318ec6af673d96e0027da95f9f4": "11",
}


async def _value(sc: StepContext, v: int) -> int:
    return v


async def sub(c: DurableContext, v: int, k: int) -> int:
    """A task's coroutine, at module level: its name is part of the recorded IDs below."""
    return await c.step(_value, v * 10 + k, name="s")


@pytest.mark.anyio
@pytest.mark.parametrize("nesting", ["NESTED", "FLAT"])
async def test_tasks_made_inside_a_map_branch_keep_the_ids_earlier_releases_recorded(
    nesting: str,
) -> None:
    # A task's namespace names the coroutine its parent task runs; a branch's task runs a
    # different coroutine than it used to, and its name must not move the IDs, or an
    # execution started before an upgrade would re-run these steps after it.
    from durable_async import MapConfig, NestingType

    async def item(c: DurableContext, v: int, i: int, items: Any) -> list[int]:
        return list(await asyncio.gather(sub(c, v, 0), sub(c, v, 1)))

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        config = MapConfig(nesting=NestingType[nesting])
        return (await ctx.map([1], item, config=config)).get_results()

    result = await LocalRunner(handler, MemoryBackend()).run(None)
    assert result.status == "SUCCEEDED", result.error
    assert result.result == [[10, 11]]
    recorded = {
        op.id: op.step_details.result if op.step_details else None
        for op in result.operations
        if op.name == "s"
    }
    assert recorded == RECORDED_BEFORE
