"""Regression tests for problems found in the fourth review (each failed before its fix)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import start

from durable_async import AioBotocoreClient, DurableContext, StepContext, durable_execution
from durable_async._wire.models import CheckpointRequest
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend


def test_default_client_does_not_keep_finished_loops_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No region configured: the default client fails at once, without network traffic,
    # but only after it has recorded the loop it runs on.
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    async def body(step: StepContext) -> int:  # async: no worker thread holds the loop
        return 1

    @durable_execution  # the SDK's own default client
    async def handler(event: Any, ctx: DurableContext) -> int:
        return await ctx.step(body, name="s")

    backend = MemoryBackend()
    event = LocalRunner(handler, backend).event(start(backend))
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        with contextlib.suppress(Exception):
            await handler.invoke_async(event, FakeLambdaContext())

    asyncio.run(main())
    gc.collect()
    assert loops[0]() is None


class _FakeLambda:
    async def checkpoint_durable_execution(self, **kwargs: Any) -> dict[str, Any]:
        return {"CheckpointToken": "next"}


class _Session:
    """A user-supplied session whose client takes a moment to open (as a real one does)."""

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        @contextlib.asynccontextmanager
        async def client() -> AsyncIterator[_FakeLambda]:
            await asyncio.sleep(0)  # one scheduling point, not a timed sleep
            yield _FakeLambda()

        return client()


def test_aclose_then_reuse_on_a_new_loop_with_concurrent_first_calls() -> None:
    client = AioBotocoreClient(session=_Session())
    request = CheckpointRequest("arn:x", "token", ())
    log = logging.getLogger("tests.review4")

    async def use() -> None:
        await asyncio.gather(client.checkpoint(request, log), client.checkpoint(request, log))
        await client.aclose()

    asyncio.run(use())
    asyncio.run(use())
