"""``on_operation_change`` after each checkpoint response, and ``on_operation_end`` for
operations another party ended (a wait that elapsed, a callback answered, an invoke that
finished), reported once whichever way this SDK learns of them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs
import pytest
from support import SignallingBackend

from durable_async import (
    DurableContext,
    DurableInstrumentationPlugin,
    OperationChangeInfo,
    OperationInfo,
    OperationStatus,
    OperationType,
    ParallelConfig,
    StepContext,
    durable_execution,
)
from durable_async._plugin_changes import MergeWatcher, OperationInfos
from durable_async._plugin_types import InvocationStartInfo
from durable_async._plugins import PluginDispatcher
from durable_async._replay import OperationLog
from durable_async._wire.models import Operation
from durable_async.testing import LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio


class Changes(DurableInstrumentationPlugin):
    """Keeps every change info it is handed."""

    def __init__(self) -> None:
        self.infos: list[OperationChangeInfo] = []

    def on_operation_change(self, info: OperationChangeInfo) -> None:
        self.infos.append(info)

    def updated(self, type_: OperationType) -> list[tuple[str | None, OperationStatus, bool]]:
        """(name, status, in the full map) of each updated operation of ``type_``."""
        return [
            (op.name, op.status, op_id in info.operations)
            for info in self.infos
            for op_id, op in info.updated_operations.items()
            if op.operation_type is type_
        ]


class Ends:
    """Keeps (name, type, status, is_replayed) of every operation end, and the infos."""

    def __init__(self) -> None:
        self.ends: list[tuple[str | None, str, str, bool]] = []
        self.infos: list[Any] = []

    def on_operation_end(self, info: Any) -> None:
        self.ends.append((info.name, info.operation_type, info.status, info.is_replayed))
        self.infos.append(info)


async def greet(step: StepContext, name: str) -> str:
    return f"Hello, {name}!"


# -- on_operation_change -------------------------------------------------------------------


async def test_a_step_s_recorded_result_is_reported_as_a_change_with_the_full_map() -> None:
    # AWS's reference handler 10-8 (plugin_operation_change), ported.
    changes = Changes()

    @durable_execution(plugins=[changes])
    async def handler(event: str, ctx: DurableContext) -> str:
        return await ctx.step(greet, event, name="greet")

    result = await LocalRunner(handler).run("Ada")
    assert result.result == "Hello, Ada!"
    assert changes.updated(OperationType.STEP) == [("greet", OperationStatus.SUCCEEDED, True)]
    info = next(i for i in changes.infos if i.updated_operations)
    assert info.execution_arn == result.arn
    (step,) = info.updated_operations.values()
    assert isinstance(step, OperationInfo)
    assert step.result == '"Hello, Ada!"'
    assert step.is_replayed is False
    assert step.start_time is not None
    # The full map holds every operation known, the execution's own included.
    assert {op.operation_type for op in info.operations.values()} == {
        OperationType.EXECUTION,
        OperationType.STEP,
    }
    assert info.operations[step.operation_id] == step


async def test_a_change_lists_only_operations_whose_status_changed() -> None:
    # Page size 1: the response that records two steps answers with one page, and the rest
    # of the state (the execution, unchanged) comes by GetDurableExecutionState.
    changes = Changes()

    @durable_execution(plugins=[changes])
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        return list(await asyncio.gather(ctx.step(greet, "a"), ctx.step(greet, "b")))

    backend = MemoryBackend(page_size=1)
    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED", result.error
    assert backend.state_calls  # the unchanged rest of the state did come back
    updated = [op for info in changes.infos for op in info.updated_operations.values()]
    assert sorted((op.operation_type, op.status) for op in updated) == [
        (OperationType.STEP, OperationStatus.SUCCEEDED),
        (OperationType.STEP, OperationStatus.SUCCEEDED),
    ]
    assert all(info.updated_operations for info in changes.infos)


async def test_a_step_retry_reports_each_status_it_passes_through() -> None:
    changes = Changes()
    attempts: list[int] = []

    async def flaky(step: StepContext) -> str:
        attempts.append(step.attempt)
        if step.attempt < 2:
            raise RuntimeError("not yet")
        return "ok"

    @durable_execution(plugins=[changes])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(flaky, name="flaky")

    result = await LocalRunner(handler).run()
    assert result.result == "ok"
    # The failed attempt's RETRY (PENDING), then the result; READY came between
    # invocations, in no checkpoint response.
    assert changes.updated(OperationType.STEP) == [
        ("flaky", OperationStatus.PENDING, True),
        ("flaky", OperationStatus.SUCCEEDED, True),
    ]
    assert attempts == [1, 2]


async def test_the_full_map_builds_an_operation_s_info_only_when_it_is_read() -> None:
    reads: list[str] = []

    class Counting(dict[str, Operation]):
        def __getitem__(self, key: str) -> Operation:
            reads.append(key)
            return super().__getitem__(key)

    started = OperationStatus.STARTED
    ops = Counting(
        {f"op{i}": Operation(f"op{i}", OperationType.STEP, started) for i in range(1000)}
    )
    infos = OperationInfos(ops)
    assert len(infos) == 1000
    assert "op7" in infos
    assert "missing" not in infos
    assert list(infos)[:2] == ["op0", "op1"]
    assert reads == []  # size, membership and keys build nothing
    assert infos["op7"].operation_id == "op7"
    assert infos["op7"] is infos["op7"]  # built once
    assert reads == ["op7"]
    with pytest.raises(KeyError):
        infos["missing"]


async def test_without_a_change_or_end_hook_checkpoint_responses_are_not_watched() -> None:
    watched: list[bool] = []

    class StartsOnly:
        def on_operation_start(self, info: Any) -> None:
            pass

    @durable_execution(plugins=[StartsOnly()])
    async def handler(event: Any, ctx: DurableContext) -> str:
        watched.append(ctx._rt.batcher.merge_watcher is not None)
        return await ctx.step(greet, "x")

    @durable_execution(plugins=[Changes()])
    async def watching(event: Any, ctx: DurableContext) -> str:
        watched.append(ctx._rt.batcher.merge_watcher is not None)
        return await ctx.step(greet, "x")

    assert (await LocalRunner(handler).run()).status == "SUCCEEDED"
    assert (await LocalRunner(watching).run()).status == "SUCCEEDED"
    assert watched == [False, True]


async def test_an_async_change_hook_is_awaited_and_one_that_raises_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    class Broken:
        def on_operation_change(self, info: OperationChangeInfo) -> None:
            raise ValueError("plugin bug")

    class Slow:
        async def on_operation_change(self, info: OperationChangeInfo) -> None:
            await asyncio.sleep(0)
            seen.extend(op.status for op in info.updated_operations.values())

    @durable_execution(plugins=[Broken(), Slow()])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(greet, "x")

    with caplog.at_level(logging.ERROR, logger="durable_async.plugins"):
        result = await LocalRunner(handler).run()
    assert result.result == "Hello, x!"
    assert seen == [OperationStatus.SUCCEEDED]
    assert "raised in on_operation_change" in caplog.text


# -- on_operation_end of what another party ended, during the invocation ------------------


async def test_a_callback_answered_during_the_invocation_ends_once_even_if_never_awaited() -> None:
    ends = Ends()
    runner = LocalRunner.__new__(LocalRunner)

    @durable_execution(plugins=[ends])
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback(name="approval")

        async def answer(step: StepContext) -> None:
            runner.backend.complete_callback(callback.callback_id, '"yes"')

        await ctx.step(answer, name="answer")
        await ctx.step(greet, "after", name="after")  # another response carries it again
        return "not awaited"

    runner.__init__(handler)  # type: ignore[misc]
    result = await runner.run()
    assert result.invocations == 1
    assert [e for e in ends.ends if e[0] == "approval"] == [
        ("approval", "CALLBACK", "SUCCEEDED", False)
    ]
    approval = next(i for i in ends.infos if i.name == "approval")
    assert approval.result == '"yes"'
    assert approval.end_time is not None


async def test_a_wait_that_elapses_while_a_sibling_runs_ends_once_in_that_invocation() -> None:
    backend = SignallingBackend()
    ends = Ends()

    def wait_recorded() -> bool:
        return any(
            op.type is OperationType.WAIT
            for execution in backend.executions.values()
            for op in execution.operations.values()
        )

    async def slow(step: StepContext) -> str:
        while not wait_recorded():
            backend.checkpointed.clear()
            await backend.checkpointed.wait()
        backend.advance(10)
        return "slow done"

    async def timer(ctx: DurableContext) -> str:
        await ctx.wait(seconds=5, name="pause")
        return "waited"

    @durable_execution(plugins=[ends])
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return list(
            await asyncio.gather(
                ctx.step(slow, name="slow"), ctx.run_in_child_context(timer, name="timer")
            )
        )

    result = await LocalRunner(handler, backend).run()
    assert result.result == ["slow done", "waited"]
    assert result.invocations == 1
    assert [e for e in ends.ends if e[0] == "pause"] == [("pause", "WAIT", "SUCCEEDED", False)]
    assert {e[0] for e in ends.ends} == {"pause", "slow", "timer"}


# -- on_operation_end of what ended while the execution was suspended ---------------------


class WaitHooks:
    """Records wait starts and ends, tagged with the invocation's first-invocation flag
    (AWS's reference handlers 10-9, 10-10 and 10-18, ported)."""

    def __init__(self) -> None:
        self.first = False
        self.records: list[tuple[Any, ...]] = []

    def on_invocation_start(self, info: Any) -> None:
        self.first = info.is_first_invocation
        self.records.append(("invocation", info.is_first_invocation))

    def on_operation_start(self, info: Any) -> None:
        if info.operation_type is OperationType.WAIT:
            pending = info.end_time is None
            self.records.append(("start", info.name, info.is_replayed, pending))

    def on_operation_end(self, info: Any) -> None:
        if info.operation_type is OperationType.WAIT:
            self.records.append(("end", info.name, info.status, info.is_replayed, self.first))


async def test_the_local_runner_s_input_lists_what_changed_while_suspended_once() -> None:
    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval")
        return await callback.result()

    runner = LocalRunner(handler, pause_on_callbacks=True)
    first = await runner.run()
    assert first.status == "PENDING"
    assert runner.event(first.arn)["UpdatedOperationIds"] == []
    runner.backend.complete_callback(runner.backend.open_callbacks(first.arn)[0], '"ok"')
    approval = first.history.get("approval").id if first.history else None
    assert runner.event(first.arn)["UpdatedOperationIds"] == [approval]
    assert runner.event(first.arn)["UpdatedOperationIds"] == []  # delivered: not again


async def test_a_wait_that_elapsed_while_suspended_ends_in_the_next_invocation() -> None:
    hooks = WaitHooks()

    @durable_execution(plugins=[hooks])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(2, name="pause")
        return "Wait completed"

    result = await LocalRunner(handler).run()
    assert result.result == "Wait completed"
    assert hooks.records == [
        ("invocation", True),
        ("start", "pause", False, True),
        ("invocation", False),
        ("end", "pause", OperationStatus.SUCCEEDED, False, False),
    ]


async def test_terminal_history_not_listed_as_updated_reports_nothing() -> None:
    hooks = WaitHooks()

    @durable_execution(plugins=[hooks])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(1, name="one")
        await ctx.wait(1, name="two")
        return "done"

    result = await LocalRunner(handler).run()
    assert result.invocations == 3
    assert hooks.records == [
        ("invocation", True),
        ("start", "one", False, True),
        ("invocation", False),
        ("end", "one", OperationStatus.SUCCEEDED, False, False),
        ("start", "two", False, True),
        ("invocation", False),  # "one" replays here: history, not news
        ("end", "two", OperationStatus.SUCCEEDED, False, False),
    ]


async def test_parallel_waits_report_a_replayed_start_for_the_open_one_and_each_end_once() -> None:
    # AWS's reference handler 10-18 (plugin_wait_replay_flag), ported.
    hooks = WaitHooks()

    async def short(ctx: DurableContext) -> str:
        await ctx.wait(2, name="short")
        return "short-done"

    async def long(ctx: DurableContext) -> str:
        await ctx.wait(8, name="long")
        return "long-done"

    @durable_execution(plugins=[hooks])
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        batch = await ctx.parallel(
            [short, long], name="waits", config=ParallelConfig(max_concurrency=2)
        )
        return batch.get_results()

    result = await LocalRunner(handler).run()
    assert result.result == ["short-done", "long-done"]
    assert result.invocations == 3
    second = hooks.records.index(("invocation", False))
    third = hooks.records.index(("invocation", False), second + 1)
    assert sorted(hooks.records[1:second]) == [
        ("start", "long", False, True),
        ("start", "short", False, True),
    ]
    assert sorted(hooks.records[second + 1 : third], key=repr) == sorted(
        [
            ("end", "short", OperationStatus.SUCCEEDED, False, False),
            ("start", "long", True, True),  # still open: replayed, pending
        ],
        key=repr,
    )
    assert hooks.records[third + 1 :] == [("end", "long", OperationStatus.SUCCEEDED, False, False)]


async def test_an_invoke_that_finished_while_suspended_ends_once_with_its_result() -> None:
    ends = Ends()

    @durable_execution
    async def target(event: Any, ctx: DurableContext) -> int:
        return int(event) * 2

    @durable_execution(plugins=[ends])
    async def handler(event: Any, ctx: DurableContext) -> int:
        doubled = await ctx.invoke("target", 21, name="double")
        await ctx.wait(1, name="then")
        return int(doubled)

    result = await LocalRunner(handler, functions={"target": target}).run()
    assert result.result == 42
    assert result.invocations == 3
    assert [e for e in ends.ends if e[0] == "double"] == [
        ("double", "CHAINED_INVOKE", "SUCCEEDED", False)
    ]
    double = next(i for i in ends.infos if i.name == "double")
    assert double.result == "42"


async def test_an_update_reported_from_a_response_is_not_reported_again_on_replay() -> None:
    ends: list[Any] = []

    class End:
        def on_operation_end(self, info: Any) -> None:
            ends.append(info.operation_id)

    open_ = Operation("cb", OperationType.CALLBACK, OperationStatus.STARTED)
    answered = attrs.evolve(open_, status=OperationStatus.SUCCEEDED)
    log = OperationLog()
    log.apply([open_])
    start = InvocationStartInfo(execution_arn="arn", request_id=None, is_first_invocation=False)
    dispatcher = PluginDispatcher([End()], start, log, ["cb", "other"])
    watcher = dispatcher.merge_watcher()
    assert isinstance(watcher, MergeWatcher)
    # Listed as updated while still open (a heartbeat, say), answered during the invocation.
    watcher.before_merge([answered])
    log.apply([answered])
    await watcher.merged([])
    await dispatcher.replayed(answered)
    await dispatcher.replayed(answered)
    # An updated operation still open when replay reaches it is no end.
    await dispatcher.replayed(Operation("other", OperationType.STEP, OperationStatus.READY))
    assert ends == ["cb"]


async def test_updated_ids_the_code_never_reaches_report_nothing() -> None:
    ends = Ends()

    @durable_execution(plugins=[ends])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(1, name="pause")
        return "done"

    runner = LocalRunner(handler)
    first = await runner.run_until_suspension()
    assert first.status == "PENDING"
    runner.backend.advance(1)
    event = runner.event(first.arn)
    pause = event["UpdatedOperationIds"]
    assert len(pause) == 1
    # An ID no operation of this execution has, and the execution's own: neither is news.
    execution_id = next(op.id for op in first.operations if op.type is OperationType.EXECUTION)
    event["UpdatedOperationIds"] = ["not-an-operation", execution_id, *pause]
    output = await handler.invoke_async(event, client=runner.backend)
    assert output["Status"] == "SUCCEEDED"
    assert ends.ends == [("pause", "WAIT", "SUCCEEDED", False)]


async def test_an_end_inside_a_finished_race_is_reported_before_the_invocation_ends() -> None:
    # The race's loser elapses while the execution is suspended; replay skips the finished
    # race, so it never reaches the loser: its end is reported as the invocation ends.
    records: list[tuple[Any, ...]] = []

    class Hooks:
        def on_invocation_start(self, info: Any) -> None:
            records.append(("invocation",))

        def on_invocation_end(self, info: Any) -> None:
            records.append(("invocation-end", info.status))

        def on_operation_end(self, info: Any) -> None:
            if info.operation_type is OperationType.WAIT:
                records.append(("end", info.name, info.status, info.is_replayed))

    @durable_execution(plugins=[Hooks()])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.race(ctx.wait(1, name="quick"), ctx.wait(5, name="loser"), name="race")
        await ctx.wait(10, name="after")
        return "done"

    result = await LocalRunner(handler).run()
    assert result.result == "done"
    assert result.invocations == 4
    succeeded = OperationStatus.SUCCEEDED
    assert records[records.index(("end", "quick", succeeded, False)) + 1 :] == [
        ("invocation-end", "PENDING"),
        ("invocation",),  # the loser elapsed: the code never reaches it
        ("end", "loser", succeeded, False),
        ("invocation-end", "PENDING"),
        ("invocation",),
        ("end", "after", succeeded, False),
        ("invocation-end", "SUCCEEDED"),
    ]


async def test_ends_on_later_pages_of_a_response_or_the_input_are_reported_once() -> None:
    # One operation a page: the answer reaches the SDK on a later page of a checkpoint
    # response, and the elapsed wait on a later page of the next invocation's input.
    ends = Ends()
    backend = MemoryBackend(page_size=1)

    @durable_execution(plugins=[ends])
    async def handler(event: Any, ctx: DurableContext) -> str:
        callback = await ctx.create_callback(name="approval")

        async def answer(step: StepContext) -> None:
            backend.complete_callback(callback.callback_id, '"yes"')

        await ctx.step(answer, name="answer")
        await ctx.step(greet, "after", name="after")
        await ctx.wait(1, name="pause")
        await callback.result()
        return "done"

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert len(backend.state_calls) > 2  # both the responses and the input were paged
    assert [e for e in ends.ends if e[0] in ("approval", "pause")] == [
        ("approval", "CALLBACK", "SUCCEEDED", False),
        ("pause", "WAIT", "SUCCEEDED", False),
    ]
