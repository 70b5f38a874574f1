"""Operation hooks fire for every kind of operation, once each, as this invocation sees it."""

from __future__ import annotations

from typing import Any

import pytest

from durable_async import (
    DurableContext,
    MapConfig,
    StepContext,
    WaitForConditionDecision,
    durable_execution,
)
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


class Operations:
    """Records (hook, type, subtype, name, status) of every operation event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None, str | None, str]] = []

    def on_operation_start(self, info: Any) -> None:
        self.events.append(("start", info.operation_type, info.sub_type, info.name, info.status))

    async def on_operation_end(self, info: Any) -> None:  # async hooks are awaited too
        self.events.append(("end", info.operation_type, info.sub_type, info.name, info.status))


async def echo(step: StepContext, value: Any) -> Any:
    return value


async def test_every_operation_kind_reports_its_start_and_its_end() -> None:
    recorder = Operations()

    async def inner(child: DurableContext) -> str:
        return await child.step(echo, "x", name="in-child")

    async def item(c: DurableContext, value: int, index: int, items: Any) -> int:
        return value

    def poll(state: int, check: Any) -> int:
        return state + 1

    def stop_at_one(state: int, attempt: int) -> WaitForConditionDecision:
        return WaitForConditionDecision.stop_polling()

    @durable_execution(plugins=[recorder])
    async def handler(event: Any, ctx: DurableContext) -> Any:
        await ctx.run_in_child_context(inner, name="child")
        await ctx.wait_for_condition(poll, initial_state=0, strategy=stop_at_one, name="cond")
        await ctx.map([1], item, name="m", config=MapConfig(max_concurrency=1))
        return "done"

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    assert recorder.events == [
        ("start", "CONTEXT", "RunInChildContext", "child", "STARTED"),
        ("start", "STEP", "Step", "in-child", "STARTED"),
        ("end", "STEP", "Step", "in-child", "SUCCEEDED"),
        ("end", "CONTEXT", "RunInChildContext", "child", "SUCCEEDED"),
        ("start", "STEP", "WaitForCondition", "cond", "STARTED"),
        ("end", "STEP", "WaitForCondition", "cond", "SUCCEEDED"),
        ("start", "CONTEXT", "Map", "m", "STARTED"),
        ("start", "CONTEXT", "MapIteration", "map-item-0", "STARTED"),
        ("end", "CONTEXT", "MapIteration", "map-item-0", "SUCCEEDED"),
        ("end", "CONTEXT", "Map", "m", "SUCCEEDED"),
    ]


async def test_a_callback_answered_during_the_invocation_reports_its_end() -> None:
    recorder = Operations()
    runner = LocalRunner.__new__(LocalRunner)  # set below; the step body needs the backend

    @durable_execution(plugins=[recorder])
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval")

        async def answer(step: StepContext) -> None:
            runner.backend.complete_callback(callback.callback_id, "yes")

        await ctx.step(answer, name="answer")
        return await callback.result()

    runner.__init__(handler)  # type: ignore[misc]
    result = await runner.run()
    assert result.result == "yes"
    assert result.invocations == 1
    # The response that records the step's result also carries the answer: the callback's
    # end is reported as that response is merged, before the step's own (told once the
    # step's code resumes).
    assert [(e[0], e[3], e[4]) for e in recorder.events] == [
        ("start", "approval", "STARTED"),
        ("start", "answer", "STARTED"),
        ("end", "approval", "SUCCEEDED"),
        ("end", "answer", "SUCCEEDED"),
    ]


async def test_a_callback_answered_between_invocations_ends_once_in_the_next() -> None:
    recorder = Operations()

    @durable_execution(plugins=[recorder])
    async def handler(event: Any, ctx: DurableContext) -> Any:
        callback = await ctx.create_callback(name="approval")
        return await callback.result()

    runner = LocalRunner(handler, pause_on_callbacks=True)
    first = await runner.run()
    assert first.status == "PENDING"
    runner.backend.complete_callback(runner.backend.open_callbacks(first.arn)[0], "yes")
    result = await runner.resume(first.arn)
    assert result.result == "yes"
    # Started in the first invocation, answered while the execution was suspended: the
    # second invocation reports the end (UpdatedOperationIds), once.
    assert [(e[0], e[3], e[4]) for e in recorder.events] == [
        ("start", "approval", "STARTED"),
        ("end", "approval", "SUCCEEDED"),
    ]


async def test_an_ended_operation_reports_the_service_s_times_and_its_result() -> None:
    ends: list[Any] = []

    class Ends:
        def on_operation_end(self, info: Any) -> None:
            ends.append(info)

    @durable_execution(plugins=[Ends()])
    async def handler(event: Any, ctx: DurableContext) -> Any:
        first = await ctx.step(echo, {"n": 1}, name="first")
        await ctx.wait(seconds=30, name="pause")
        return await ctx.step(echo, first["n"] + 1, name="second")

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED", result.error
    by_name = {info.name: info for info in ends}
    first, second = by_name["first"], by_name["second"]
    # The result as the service recorded it (serialized), as AWS's infos carry it.
    assert first.result == result.history.get("first").raw_result
    assert second.result == result.history.get("second").raw_result
    assert first.result is not None
    assert second.result is not None
    for info in (first, second):
        assert info.start_time is not None
        assert info.end_time is not None
        assert info.end_time >= info.start_time
    # The thirty seconds of the wait (on the runner's virtual clock) lie between them.
    assert (second.start_time - first.end_time).total_seconds() >= 30
