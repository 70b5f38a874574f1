"""Edges of the task model: what ends with a suspension, what a finished handler decides,
and which tasks count towards operation namespaces."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import ListHandler, start

from durable_async import DurableContext, StepContext, durable_execution
from durable_async.testing import LocalRunner, MemoryBackend

pytestmark = pytest.mark.anyio


@pytest.fixture
def warnings_logger() -> Iterator[tuple[logging.Logger, ListHandler]]:
    logger = logging.getLogger("tests.task_model_edges")
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def warnings_of(handler: ListHandler) -> list[str]:
    return [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]


async def echo(step: StepContext, value: Any) -> Any:
    return value


async def invoke(handler: Any, backend: MemoryBackend, arn: str) -> dict[str, Any]:
    # No Lambda deadline at all: an invocation that waits for one instead of suspending
    # would never end, and the guard below turns that hang into a failure.
    event = LocalRunner(handler, backend).event(arn)
    async with asyncio.timeout(60):
        output: dict[str, Any] = await handler.invoke_async(event, None, client=backend)
    return output


@pytest.mark.parametrize("primitive", ["event", "queue"])
async def test_tasks_left_waiting_on_a_suspended_sibling_are_cancelled_not_waited_for(
    primitive: str, warnings_logger: tuple[logging.Logger, ListHandler]
) -> None:
    logger, records = warnings_logger
    backend = MemoryBackend()
    arn = start(backend)
    cancelled: list[str] = []

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> Any:
        done = asyncio.Event()
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def producer() -> None:
            await ctx.wait(seconds=3600, name="produce")
            done.set()
            await queue.put(1)

        asyncio.create_task(producer())  # noqa: RUF006 - the SDK settles it
        try:
            if primitive == "event":
                await done.wait()
                return 1
            return await queue.get()
        except asyncio.CancelledError:
            cancelled.append("handler")
            raise

    assert await invoke(handler, backend, arn) == {"Status": "PENDING"}
    assert cancelled == ["handler"]
    assert warnings_of(records) == []


@pytest.mark.parametrize("outcome", ["returns", "raises"])
async def test_a_handler_that_ends_as_a_task_it_left_parks_decides_the_invocation(
    outcome: str,
) -> None:
    backend = MemoryBackend()
    ran: list[str] = []

    async def mark(step: StepContext) -> None:
        ran.append("bg-step")

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> str:
        async def background() -> None:
            await ctx.wait(seconds=3600, name="bg-wait")
            await ctx.step(mark, name="bg-step")

        asyncio.create_task(background())  # noqa: RUF006 - the SDK settles it
        await asyncio.sleep(0)  # the background task parks before the handler ends
        if outcome == "raises":
            raise KeyError("boom")
        return "done"

    result = await LocalRunner(handler, backend).run()
    assert result.invocations == 1
    assert result.status == ("SUCCEEDED" if outcome == "returns" else "FAILED")
    assert ran == []


async def test_tasks_inside_a_step_body_do_not_shift_the_namespaces_of_later_tasks() -> None:
    """Step bodies do not run on replay, so the tasks they create must not count."""
    charged: list[str] = []
    semaphore = asyncio.Semaphore(10)

    async def limited(coro: Any) -> Any:  # one helper, used in a body and in orchestration
        async with semaphore:
            return await coro

    async def upper(text: str) -> str:
        return text.upper()

    async def download_all(step: StepContext, names: list[str]) -> list[str]:
        return list(await asyncio.gather(*(limited(upper(n)) for n in names)))

    async def charge(step: StepContext, item: str) -> str:
        charged.append(item)
        return f"charged {item}"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> list[str]:
        pages = await ctx.step(download_all, ["a", "b"], name="download")

        async def process(page: str) -> str:
            receipt = await ctx.step(charge, page, name="charge")
            await ctx.wait(seconds=5, name="cool-down")
            return receipt

        return list(await asyncio.gather(*(limited(process(p)) for p in pages)))

    result = await LocalRunner(handler).run()
    assert result.status == "SUCCEEDED"
    assert result.result == ["charged A", "charged B"]
    assert sorted(charged) == ["A", "B"]  # each charge ran once, not again on replay


async def test_a_thread_joined_by_gather_finishes_before_the_invocation_suspends() -> None:
    backend = MemoryBackend()
    arn = start(backend)
    log: list[str] = []

    def work() -> str:
        time.sleep(0.05)  # the work itself
        log.append("thread finished")
        return "ok"

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.gather(ctx.wait(seconds=2), loop.run_in_executor(None, work))

    assert await invoke(handler, backend, arn) == {"Status": "PENDING"}
    assert log == ["thread finished"]


async def test_a_durable_handler_run_inside_a_step_body_is_its_own_invocation() -> None:
    inner_backend = MemoryBackend()

    @durable_execution
    async def inner(event: Any, ctx: DurableContext) -> str:
        return await ctx.step(echo, "inner-result", name="inner-step")

    async def run_inner(step: StepContext) -> Any:
        return (await LocalRunner(inner, inner_backend).run()).result

    @durable_execution
    async def outer(event: Any, ctx: DurableContext) -> Any:
        return await ctx.step(run_inner, name="run-inner")

    result = await LocalRunner(outer).run()
    assert result.status == "SUCCEEDED"
    assert result.result == "inner-result"


async def test_bounded_fan_out_suspends_without_reporting_a_swallowed_suspension(
    warnings_logger: tuple[logging.Logger, ListHandler],
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger, records = warnings_logger
    ran: list[int] = []

    async def record(step: StepContext, i: int) -> None:
        ran.append(i)

    @durable_execution(logger=logger)
    async def handler(event: Any, ctx: DurableContext) -> str:
        semaphore = asyncio.Semaphore(2)

        async def bounded(i: int) -> None:
            async with semaphore:
                await ctx.step(record, i, name=f"s{i}")
                await ctx.wait(seconds=60, name=f"w{i}")

        await asyncio.gather(*(bounded(i) for i in range(6)))
        return "all"

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        result = await LocalRunner(handler).run()
        gc.collect()
    assert result.status == "SUCCEEDED"
    assert sorted(ran) == list(range(6))
    assert warnings_of(records) == []
    # Branches that ended with the suspension signal are not reported as lost exceptions.
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_a_handler_raising_cancelled_error_fails_instead_of_ending_pending() -> None:
    """PENDING would leave nothing pending on the service (it refuses that): a
    ``CancelledError`` that escaped user code fails the execution like any other bug."""

    @durable_execution
    async def handler(event: Any, ctx: DurableContext) -> int:
        value: int = await ctx.step(echo, 1)
        helper = asyncio.get_running_loop().create_future()
        helper.cancel()  # e.g. a helper task cancelled elsewhere
        await helper
        return value

    try:
        result = await LocalRunner(handler).run()
    except asyncio.CancelledError:
        pytest.fail("the handler's CancelledError escaped the invocation")
    assert result.status == "FAILED"
    assert result.error is not None
    assert result.error.type == "asyncio.CancelledError"
