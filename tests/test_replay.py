"""Replay: recorded operations are not re-run, return what was recorded, and must match."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from support import invoke_once, start

from durable_async import (
    DurableContext,
    NonDeterministicExecutionError,
    StepContext,
    durable_execution,
)
from durable_async._invocation import RESPONSE_LIMIT_BYTES
from durable_async._wire.enums import OperationAction
from durable_async.testing import LocalRunner, MemoryBackend


class Sequencer:
    """Forces step bodies to finish in a given order, via events (no sleeps)."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.finished: list[str] = []
        self._done: dict[str, asyncio.Event] = {}

    def event(self, label: str) -> asyncio.Event:
        return self._done.setdefault(label, asyncio.Event())

    async def finish(self, label: str) -> None:
        index = self.order.index(label)
        if index:
            await self.event(self.order[index - 1]).wait()
        # Simulated I/O: give the loop a few turns between finishes.
        for _ in range(3):
            await asyncio.sleep(0)
        self.finished.append(label)
        self.event(label).set()


def make_handler(seq: Sequencer, calls: Counter[str]) -> Any:
    async def io_step(_: StepContext, label: str) -> str:
        calls[label] += 1
        await seq.finish(label)
        return label.upper()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        first = await asyncio.gather(*(ctx.step(io_step, x, name=x) for x in ("a", "b", "c")))
        await ctx.wait(seconds=10)
        second = await asyncio.gather(*(ctx.step(io_step, x, name=x) for x in ("d", "e")))
        return [list(first), list(second)]

    return handler


@pytest.mark.anyio
@pytest.mark.parametrize(
    "order", [["a", "b", "c", "d", "e"], ["c", "a", "b", "e", "d"], ["b", "c", "a", "d", "e"]]
)
async def test_gathered_steps_replay_deterministically(order: list[str]) -> None:
    seq = Sequencer()
    seq.order = order
    calls: Counter[str] = Counter()
    runner = LocalRunner(make_handler(seq, calls))
    result = await runner.run()

    assert result.status == "SUCCEEDED"
    assert result.result == [["A", "B", "C"], ["D", "E"]]
    assert result.invocations == 2
    assert seq.finished == order  # the bodies really did finish in the forced order
    assert calls == Counter({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1})  # none re-ran on replay


@pytest.mark.anyio
async def test_replaying_a_finished_history_reruns_nothing() -> None:
    seq = Sequencer()
    seq.order = ["c", "b", "a", "e", "d"]
    calls: Counter[str] = Counter()
    handler = make_handler(seq, calls)
    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    calls_before = len(runner.backend.checkpoint_calls)

    # One more invocation over the complete history: everything replays.
    output = await invoke_once(handler, runner.backend, result.arn)
    assert output == {"Status": "SUCCEEDED", "Result": '[["A", "B", "C"], ["D", "E"]]'}
    assert sum(calls.values()) == 5
    assert len(runner.backend.checkpoint_calls) == calls_before


@pytest.mark.anyio
async def test_changed_step_name_is_non_deterministic() -> None:
    backend = MemoryBackend()
    arn = start(backend)

    @durable_execution
    async def v1(event: Any, ctx: DurableContext) -> None:
        await ctx.step(lambda _: 1, name="charge_card")
        await ctx.wait(seconds=5)

    @durable_execution
    async def v2(event: Any, ctx: DurableContext) -> None:
        await ctx.step(lambda _: 1, name="refund_card")
        await ctx.wait(seconds=5)

    assert await invoke_once(v1, backend, arn) == {"Status": "PENDING"}
    backend.advance(5)
    output = await invoke_once(v2, backend, arn)
    assert output["Status"] == "FAILED"
    error = output["Error"]
    assert (
        error["ErrorType"]
        == "aws_durable_execution_sdk_python.exceptions.NonDeterministicExecutionError"
    )
    assert "'charge_card'" in error["ErrorMessage"]
    assert "'refund_card'" in error["ErrorMessage"]


@pytest.mark.anyio
async def test_changed_operation_type_is_non_deterministic_even_if_caught() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    caught: list[NonDeterministicExecutionError] = []

    @durable_execution
    async def v1(event: Any, ctx: DurableContext) -> str:
        await ctx.wait(seconds=5, name="pause")
        return "v1"

    @durable_execution
    async def v2(event: Any, ctx: DurableContext) -> str:
        try:
            await ctx.step(lambda _: 1, name="pause")
        except NonDeterministicExecutionError as exc:
            caught.append(exc)
        return "v2 swallowed it"

    assert await invoke_once(v1, backend, arn) == {"Status": "PENDING"}
    output = await invoke_once(v2, backend, arn)
    assert len(caught) == 1
    message = str(caught[0])
    assert "WAIT/Wait" in message
    assert "STEP/Step" in message
    # Catching the error does not let the handler succeed on a diverged history.
    assert output["Status"] == "FAILED"
    assert (
        output["Error"]["ErrorType"]
        == "aws_durable_execution_sdk_python.exceptions.NonDeterministicExecutionError"
    )
    assert "Result" not in output


@pytest.mark.anyio
async def test_replayed_steps_return_recorded_values_with_types() -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    value = {"when": when, "pair": (1, "x"), "amount": Decimal("9.99"), "tags": ["a", "b"]}
    seen: list[Any] = []
    runs = Counter[str]()

    def produce(_: StepContext) -> dict[str, Any]:
        runs["produce"] += 1
        return dict(value)

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        got = await ctx.step(produce)
        seen.append(got)
        await ctx.wait(seconds=1)
        return "done"

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert runs["produce"] == 1
    assert len(seen) == 2
    first, replayed = seen
    assert first == replayed == value
    assert type(replayed["pair"]) is tuple
    assert type(replayed["when"]) is datetime
    assert replayed["when"].tzinfo is not None
    assert type(replayed["amount"]) is Decimal
    # The first run returns a decoded copy, the same object graph replay returns.
    assert type(first["pair"]) is tuple


@pytest.mark.anyio
async def test_is_replaying_and_logger_silence(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    marks: list[tuple[str, bool]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> None:
        marks.append(("start", ctx.is_replaying))
        ctx.logger.info("before step one")
        await ctx.step(lambda _: 1, name="one")
        marks.append(("after one", ctx.is_replaying))
        ctx.logger.info("before the wait")
        await ctx.wait(seconds=30)
        marks.append(("after wait", ctx.is_replaying))
        ctx.logger.info("after the wait")
        await ctx.step(lambda _: 2, name="two")

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert marks == [
        ("start", False),
        ("after one", False),
        ("start", True),
        ("after one", True),
        ("after wait", False),
    ]
    messages = Counter(r.getMessage() for r in caplog.records if r.name == "durable_async.handler")
    assert messages == Counter({"before step one": 1, "before the wait": 1, "after the wait": 1})


class Color(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


@pytest.mark.anyio
async def test_first_run_returns_the_types_replay_returns_for_plain_subclasses() -> None:
    """A StrEnum/IntEnum result is stored as plain JSON, so both runs see str/int."""
    seen: list[tuple[type, type]] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        color = await ctx.step(lambda _: Color.RED, name="color")
        level = await ctx.step(lambda _: Level.HIGH, name="level")
        seen.append((type(color), type(level)))
        await ctx.wait(seconds=1)
        return [color, level]

    result = await LocalRunner(handler).run()
    assert result.result == ["red", 3]
    assert seen == [(str, int), (str, int)]


@pytest.mark.anyio
async def test_swallowed_non_determinism_is_not_committed_as_success() -> None:
    """A handler that catches ``NonDeterministicExecutionError`` and returns a result large
    enough to need an EXECUTION checkpoint must not get that checkpoint committed
    SUCCEEDED while the invocation reports FAILED."""
    backend = MemoryBackend()
    invocations = 0

    async def charge(step: StepContext) -> int:
        return 1

    async def refund(step: StepContext) -> int:
        return 2

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        nonlocal invocations
        invocations += 1
        if invocations == 1:
            await ctx.step(charge)
            await ctx.wait(seconds=5)
            return "first deployment"
        # The history has `charge` here: non-deterministic. Swallowed; the fatal error
        # decides the outcome anyway.
        with contextlib.suppress(NonDeterministicExecutionError):
            await ctx.step(refund)
        return "x" * (RESPONSE_LIMIT_BYTES + 10)

    result = await LocalRunner(handler, backend).run()
    assert result.status == "FAILED"
    execution = backend.executions[result.arn]
    assert execution.result_update is None or execution.result_update.action is not (
        OperationAction.SUCCEED
    ), "the execution was checkpointed SUCCEEDED while the invocation reported FAILED"
