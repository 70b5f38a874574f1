"""The invocation suspends exactly when nothing belonging to it can move.

Non-durable awaits in orchestration code (a timer, a thread) finish before a parked
sibling suspends the invocation; tasks that wait on their siblings (joins, events,
queues) do not hold it; a retry or poll that falls due while siblings run goes on in the
same invocation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from typing import Any

import anyio
import pytest
from support import SignallingBackend, invoke_once, sent_updates, start

from durable_async import (
    DurableContext,
    RetryDecision,
    RetryPresets,
    SerDesContext,
    StepConfig,
    StepContext,
    StepSemantics,
    WaitForConditionDecision,
    durable_execution,
)
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio


def succeeded_names(backend: MemoryBackend) -> list[str | None]:
    return [u.name for u in sent_updates(backend) if u.action.value == "SUCCEED"]


async def echo(step: StepContext, value: str) -> str:
    return value


@pytest.mark.parametrize("pause", ["timer", "thread"])
async def test_a_non_durable_await_between_steps_finishes_before_a_parked_sibling_suspends(
    pause: str,
) -> None:
    backend = MemoryBackend()
    arn = start(backend)

    async def busy_branch() -> str:
        first = await ctx_holder[0].step(echo, "a", name="first")
        if pause == "timer":
            await asyncio.sleep(0.001)
        else:
            # Work in a thread that takes a while (longer than a few loop turns).
            await asyncio.to_thread(time.sleep, 0.01)
        second = await ctx_holder[0].step(echo, "b", name="second")
        return first + second

    ctx_holder: list[DurableContext] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        ctx_holder.append(ctx)
        return await asyncio.gather(ctx.wait(seconds=3600, name="hour"), busy_branch())

    output = await invoke_once(handler, backend, arn)
    assert output == {"Status": "PENDING"}
    # Both steps ran in this invocation, not an hour later.
    assert succeeded_names(backend) == ["first", "second"]


async def test_branches_waiting_on_a_parked_sibling_do_not_hold_the_invocation() -> None:
    """Joins, events and queues between the handler's tasks are waits on siblings."""
    backend = MemoryBackend()
    arn = start(backend)
    logger = logging.getLogger("tests.quiescence.siblings")
    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    logger.addHandler(Collect(logging.WARNING))

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> Any:
        ready = asyncio.Event()
        queue: asyncio.Queue[str] = asyncio.Queue()
        lock = asyncio.Lock()

        async def producer() -> None:
            async with lock:
                await ctx.wait(seconds=60, name="produce")
            ready.set()
            await queue.put("item")

        async def consumer() -> str:
            await ready.wait()
            item = await queue.get()
            async with lock:
                return await ctx.step(echo, item, name="consume")

        async with asyncio.TaskGroup() as group:
            group.create_task(producer())
            consumed = group.create_task(consumer())
        return consumed.result()

    # A deadline far away: only exact quiescence ends the first invocation quickly.
    context = FakeLambdaContext(remaining_ms=3_600_000)
    event = LocalRunner(handler, backend).event(arn)
    first = await handler.invoke_async(event, context, client=backend)
    assert first == {"Status": "PENDING"}
    assert not any("timeout is near" in w for w in warnings)

    result = await LocalRunner(handler, backend).resume(arn)
    assert result.status == "SUCCEEDED"
    assert result.result == "item"


async def test_anyio_task_group_of_parked_branches_suspends() -> None:
    backend = MemoryBackend()

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        results: list[str] = []

        async def branch(n: int) -> None:
            await ctx.wait(seconds=n, name=f"w{n}")
            results.append(await ctx.step(echo, f"b{n}", name=f"s{n}"))

        async with anyio.create_task_group() as group:
            for n in (1, 2, 3):
                group.start_soon(branch, n)
        return sorted(results)

    result = await LocalRunner(handler, backend).run()
    assert result.status == "SUCCEEDED"
    assert result.result == ["b1", "b2", "b3"]


def flaky_then(value: str) -> Any:
    """A step body that fails on its first attempt and returns ``value`` after."""

    async def body(step: StepContext) -> str:
        if step.attempt == 1:
            raise RuntimeError("first attempt fails")
        return value

    return body


async def test_a_retry_that_falls_due_while_a_sibling_runs_resumes_in_this_invocation() -> None:
    """Three rounds of gather(a step retried after 1 s, a step that takes 2.5 s)."""
    backend = SignallingBackend()
    arn = start(backend)
    retry_once = StepConfig(retry_strategy=lambda error, attempt: RetryDecision.retry(1))

    def retry_recorded(name: str) -> bool:
        op = next((o for o in backend.executions[arn].operations.values() if o.name == name), None)
        return op is not None and op.status is OperationStatus.PENDING

    def slow(name: str) -> Any:
        async def body(step: StepContext) -> str:
            while not retry_recorded(name):
                backend.checkpointed.clear()
                await backend.checkpointed.wait()
            backend.advance(2.5)  # 2.5 (virtual) seconds of work: the retry falls due
            return "slow"

        return body

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        out: list[Any] = []
        for round_ in range(3):
            out.append(
                await asyncio.gather(
                    ctx.step(flaky_then(f"r{round_}"), name=f"flaky{round_}", config=retry_once),
                    ctx.step(slow(f"flaky{round_}"), name=f"slow{round_}"),
                )
            )
        return out

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"
    assert json.loads(output["Result"]) == [["r0", "slow"], ["r1", "slow"], ["r2", "slow"]]


async def test_a_poll_that_falls_due_while_a_sibling_runs_resumes_in_this_invocation() -> None:
    backend = SignallingBackend()
    arn = start(backend)

    def polled_once() -> bool:
        ops = backend.executions[arn].operations.values()
        return any(
            o.type is OperationType.STEP and o.status is OperationStatus.PENDING for o in ops
        )

    async def check(state: int, check_context: Any) -> int:
        return state + 1

    def strategy(state: int, attempt: int) -> WaitForConditionDecision:
        if state < 2:
            return WaitForConditionDecision.continue_waiting(1)
        return WaitForConditionDecision.stop_polling()

    async def slow(step: StepContext) -> str:
        while not polled_once():
            backend.checkpointed.clear()
            await backend.checkpointed.wait()
        backend.advance(2)
        return "slow"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return list(
            await asyncio.gather(
                ctx.wait_for_condition(check, initial_state=0, strategy=strategy, name="poll"),
                ctx.step(slow),
            )
        )

    output = await invoke_once(handler, backend, arn)
    assert output["Status"] == "SUCCEEDED"
    assert json.loads(output["Result"]) == [2, "slow"]


async def test_nothing_checks_for_quiescence_while_nothing_is_parked() -> None:
    """A handler that never parks pays nothing for the suspension machinery."""
    backend = MemoryBackend()
    calls: list[str] = []

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        async def branch(n: int) -> str:
            await asyncio.sleep(0)
            return await ctx.step(echo, str(n), name=f"s{n}")

        results = await asyncio.gather(*(branch(n) for n in range(20)))
        calls.append("done")
        return len(results)

    from durable_async import _suspend

    checks = 0
    original = _suspend.SuspensionMonitor._check

    def counting(self: _suspend.SuspensionMonitor) -> None:
        nonlocal checks
        checks += 1
        original(self)

    _suspend.SuspensionMonitor._check = counting  # type: ignore[method-assign]
    try:
        result = await LocalRunner(handler, backend).run()
    finally:
        _suspend.SuspensionMonitor._check = original  # type: ignore[method-assign]
    assert result.status == "SUCCEEDED"
    assert result.result == 20
    assert checks == 0


class RemoteSerDes:
    """A serdes that awaits I/O (e.g. offloading results to S3) before returning."""

    async def serialize(self, value: Any, context: SerDesContext) -> str:
        for _ in range(20):  # a network round trip takes more than a few loop turns
            await asyncio.sleep(0)
        return json.dumps(value)

    async def deserialize(self, data: str, context: SerDesContext) -> Any:
        return json.loads(data)


async def test_a_step_serializing_its_result_beside_a_parked_wait_is_not_interrupted() -> None:
    """A step awaiting its serdes is still moving: the parked wait beside it must not
    suspend the invocation before the step's result is checkpointed."""
    runs: Counter[str] = Counter()
    config = StepConfig(
        serdes=RemoteSerDes(),
        retry_strategy=RetryPresets.none(),
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    )

    async def charge(step: StepContext) -> str:
        runs["charge"] += 1
        return "charged"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        _, charged = await asyncio.gather(
            ctx.wait(seconds=5), ctx.step(charge, name="charge", config=config)
        )
        return str(charged)

    result = await LocalRunner(handler).run()
    assert runs["charge"] == 1
    assert result.status == "SUCCEEDED", result.error
    assert result.result == "charged"


async def test_a_step_serializing_its_result_beside_a_parked_wait_runs_once() -> None:
    runs: Counter[str] = Counter()

    async def send_email(step: StepContext) -> str:
        runs["send"] += 1
        return "sent"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        _, sent = await asyncio.gather(
            ctx.wait(seconds=5),
            ctx.step(send_email, config=StepConfig(serdes=RemoteSerDes())),
        )
        return str(sent)

    runner = LocalRunner(handler)
    result = await runner.run()
    assert result.status == "SUCCEEDED"
    assert runs["send"] == 1  # the body finished in the first invocation
    succeeded = [
        u
        for u in sent_updates(runner.backend)
        if u.type is OperationType.STEP and u.action is OperationAction.SUCCEED
    ]
    assert len(succeeded) == 1
