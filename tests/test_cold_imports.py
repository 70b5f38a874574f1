"""A cold start loads only what a plain 1-step async handler needs.

A fresh interpreter imports durable_async, builds the default aiobotocore client (as in
Lambda, while the handler module loads) and runs one invocation of a 1-step ``async``
handler against AWS's dex-local-runner; then it reports ``sys.modules``. The modules that
handler never uses (anyio, the other operations, rare-path stdlib modules) must not be
among them: each one costs every Lambda cold start its import time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from dex_harness import FAKE_AWS_ENV, DexRunner, InvokeEndpoint

pytestmark = [pytest.mark.runner, pytest.mark.anyio]

#: Loaded only when a handler uses what needs them (see each module's import site).
LAZY = (
    # A plain (thread-run) step's worker threads; an async step never needs them.
    "anyio",
    # Operations the handler does not call, and what only they use.
    "durable_async._operations.batch",
    "durable_async._operations.callback",
    "durable_async._operations.child",
    "durable_async._operations.condition",
    "durable_async._operations.invoke",
    "durable_async._operations.race",
    "durable_async._waits",
    # Map/parallel results and policies; retry strategies (the step succeeds at once).
    "durable_async._batch",
    "durable_async._completion",
    "durable_async._retry",
    # Instrumentation, failures, tools: nothing registered, nothing failed, not a test or CLI.
    "durable_async._plugins",
    "durable_async._plugin_changes",
    "durable_async._plugin_loading",
    "durable_async._plugin_types",
    "durable_async._stack",
    "durable_async.aiohttp",
    "durable_async.callbacks",
    "durable_async.cli",
    "durable_async.otel",
    "durable_async.testing",
)

CHILD = """
import json
import sys

from durable_async import DurableContext, StepContext, durable_execution


async def add_one(step: StepContext, value: int) -> int:
    return value + 1


@durable_execution
async def handler(event: object, ctx: DurableContext) -> int:
    return await ctx.step(add_one, 1)


class LambdaContext:
    aws_request_id = "cold-imports"
    function_name = "cold"
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:cold"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


output = handler(json.loads(sys.stdin.readline()), LambdaContext())
print(json.dumps({"output": output, "modules": sorted(sys.modules)}))
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def cold_invocation(runner: DexRunner, *, plain: bool = False) -> dict[str, Any]:
    """The child's report for one invocation started by the runner."""
    code = CHILD.replace("async def add_one", "def add_one") if plain else CHILD
    env = {
        **os.environ,
        **FAKE_AWS_ENV,
        "AWS_ENDPOINT_URL_LAMBDA": runner.url,
        # As in Lambda: the default client is prepared while the handler module loads.
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    }
    for inherited in ("PYTHONPATH", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(inherited, None)
    reports: list[dict[str, Any]] = []

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await child.communicate(json.dumps(event).encode() + b"\n")
        assert child.returncode == 0, err.decode()[-2000:]
        report: dict[str, Any] = json.loads(out)
        reports.append(report)
        return report["output"]  # type: ignore[no-any-return]

    async with InvokeEndpoint({"cold": invoke}) as endpoint:
        await asyncio.to_thread(runner.start_execution, "cold", {}, lambda_endpoint=endpoint.url)
        async with asyncio.timeout(120):
            await endpoint.answered.wait()
    assert not endpoint.errors, endpoint.errors
    return reports[0]


async def test_a_one_step_async_handler_loads_none_of_the_lazy_modules(
    dex_runner: DexRunner,
) -> None:
    report = await cold_invocation(dex_runner)
    assert report["output"] == {"Status": "SUCCEEDED", "Result": "2"}
    modules = set(report["modules"])
    # It really went through aiobotocore, so the check covers the real cold path.
    assert "aiobotocore.client" in modules
    loaded = sorted(m for m in modules if m in LAZY or m.startswith(tuple(f"{n}." for n in LAZY)))
    assert loaded == []


async def test_a_plain_step_still_loads_anyio_for_its_worker_thread(
    dex_runner: DexRunner,
) -> None:
    # The check above is only meaningful if the lazy path is taken: a plain step does need
    # anyio, and the same child script with a plain step body proves the import happens.
    report = await cold_invocation(dex_runner, plain=True)
    assert report["output"] == {"Status": "SUCCEEDED", "Result": "2"}
    assert "anyio.to_thread" in report["modules"]
