"""Plugin infos field by field as AWS's SDK fills them (its ``plugin.py``), whichever way
this SDK builds them: from an operation's identity, a checkpoint response or replay."""

from __future__ import annotations

from typing import Any

import pytest

from durable_async import (
    DurableContext,
    OperationSubType,
    OperationType,
    RetryStrategyConfig,
    StepConfig,
    StepContext,
    create_retry_strategy,
    durable_execution,
)
from durable_async.testing import LocalRunner

pytestmark = pytest.mark.anyio


class Infos:
    def __init__(self) -> None:
        self.infos: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda info: self.infos.append((name, info))

    def of(self, hook: str, name: str | None = None) -> list[Any]:
        return [i for h, i in self.infos if h == hook and (name is None or i.name == name)]


async def test_sub_types_are_aws_s_enum_members_whichever_way_an_info_is_built() -> None:
    infos = Infos()

    async def body(step: StepContext) -> str:
        return "x"

    @durable_execution(plugins=[infos])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(1, name="pause")  # its end comes from the next input and replay
        return await ctx.step(body, name="custom", config=StepConfig(sub_type="my-kind"))

    result = await LocalRunner(handler).run()
    assert result.result == "x"
    (start,) = infos.of("on_operation_start", "pause")
    (end,) = infos.of("on_operation_end", "pause")
    changes = [
        op
        for _, change in infos.infos
        if _ == "on_operation_change"
        for op in change.updated_operations.values()
        if op.name == "pause"
    ]
    for info in (start, end, *changes):
        assert info.sub_type is OperationSubType.WAIT
        assert info.sub_type.value == "Wait"
    # A sub_type of the user's own stays the string it is.
    assert {type(i.sub_type) for i in infos.of("on_operation_end", "custom")} == {str}


async def test_invocation_infos_carry_the_execution_s_start_time() -> None:
    infos = Infos()

    @durable_execution(plugins=[infos])
    async def handler(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(1, name="pause")
        return "done"

    result = await LocalRunner(handler).run()
    assert result.invocations == 2
    execution = next(op for op in result.operations if op.type is OperationType.EXECUTION)
    assert execution.start_timestamp is not None
    starts = infos.of("on_invocation_start")
    ends = infos.of("on_invocation_end")
    assert [i.execution_start_time for i in starts + ends] == [execution.start_timestamp] * 4


async def test_attempt_infos_time_each_run_of_user_code() -> None:
    # AWS's attempt infos carry when the user function started and ended (not the
    # operation's recorded times, which a retried step's second attempt shares).
    infos = Infos()
    retry = StepConfig(retry_strategy=create_retry_strategy(RetryStrategyConfig(max_attempts=2)))

    async def flaky(step: StepContext) -> str:
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    @durable_execution(plugins=[infos])
    async def handler(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(flaky, name="flaky", config=retry)

    result = await LocalRunner(handler).run()
    assert result.result == "ok"
    starts = infos.of("on_user_function_start", "flaky")
    ends = infos.of("on_user_function_end", "flaky")
    assert [(s.attempt, e.attempt) for s, e in zip(starts, ends, strict=True)] == [(1, 1), (2, 2)]
    for start, end in zip(starts, ends, strict=True):
        assert start.start_time is not None
        assert start.end_time is None
        assert end.start_time == start.start_time
        assert end.end_time is not None
        assert end.end_time >= end.start_time
        assert start.result is None
    assert starts[1].start_time >= ends[0].end_time
