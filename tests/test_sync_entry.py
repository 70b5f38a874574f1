"""The sync entry point (what Lambda's runtime calls): cheap per call, nothing left behind."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

import pytest
from support import start

from durable_async import DurableContext, StepContext, durable_execution
from durable_async._entry import process_runner
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend


def _event(handler: Any, backend: MemoryBackend) -> dict[str, Any]:
    return LocalRunner(handler, backend).event(start(backend))


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="SIGINT is main-thread"
)
def test_the_sync_entry_point_leaves_the_sigint_handler_alone() -> None:
    """``asyncio.Runner.run`` swaps it on every call, which costs a warm invocation dearly."""
    backend = MemoryBackend()
    seen: list[Any] = []

    @durable_execution(client=backend)
    async def handler(event: Any, ctx: DurableContext) -> str:
        seen.append(signal.getsignal(signal.SIGINT))
        return "ok"

    before = signal.getsignal(signal.SIGINT)
    assert handler(_event(handler, backend), FakeLambdaContext()) == {
        "Status": "SUCCEEDED",
        "Result": '"ok"',
    }
    assert seen == [before]


def test_an_interrupt_outside_the_invocation_task_leaves_nothing_on_the_loop() -> None:
    """Ctrl-C lands wherever the loop is; the invocation is cancelled and settled first."""
    backend = MemoryBackend()
    cancelled = asyncio.Event()

    def interrupt() -> None:
        raise KeyboardInterrupt

    async def forever(_: StepContext) -> None:
        asyncio.get_running_loop().call_soon(interrupt)
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    @durable_execution(client=backend)
    async def handler(event: Any, ctx: DurableContext) -> str:
        if event == "hang":
            await ctx.step(forever)
        return "ok"

    runner = LocalRunner(handler, backend)
    with pytest.raises(KeyboardInterrupt):
        handler(runner.event(backend.start_execution('"hang"')), FakeLambdaContext())
    assert cancelled.is_set()
    assert asyncio.all_tasks(process_runner().get_loop()) == set()
    # The loop is still usable for the next invocation.
    output = handler(runner.event(backend.start_execution('"go"')), FakeLambdaContext())
    assert output == {"Status": "SUCCEEDED", "Result": '"ok"'}
