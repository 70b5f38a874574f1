"""Workloads for AWS's ``aws-durable-execution-sdk-python`` (run in its own venv).

Threads run steps and map items here: the SDK is synchronous. It has ``map`` and
``parallel`` but nothing like ``asyncio.gather`` of steps, so it has no gather workload.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as c
from aws_durable_execution_sdk_python import (
    DurableContext,
    StepContext,
    durable_execution,
    durable_step,
)


@durable_step  # type: ignore[untyped-decorator]
def inc(sc: StepContext, i: int) -> int:
    c.note_threads()
    return i + 1


def sequential_body(event: Any, ctx: DurableContext) -> int:
    total = 0
    for i in range(event["n"]):
        total += ctx.step(inc(i))
    return total


def replay_body(event: Any, ctx: DurableContext) -> int:
    """``n`` recorded steps, then one new one."""
    total = 0
    for i in range(event["n"] + 1):
        total += ctx.step(inc(i))
    return total


def map_body(event: Any, ctx: DurableContext) -> int:
    def item(item_ctx: DurableContext, value: int, index: int, items: Any) -> int:
        return int(item_ctx.step(inc(value)))

    return sum(ctx.map(list(range(event["n"])), item).get_results())


def one_step_body(event: Any, ctx: DurableContext) -> int:
    return int(ctx.step(inc(1)))


def _invoke(body: Any, event: Any, api: c.FakeLambdaApi) -> tuple[float, Any]:
    handler = durable_execution(boto3_client=api)(body)
    started = time.perf_counter()
    out = handler(event, c.FakeLambdaContext())
    return time.perf_counter() - started, c.check_status(out)


class Workloads:
    def _run(self, body: Any, n: int, warm: bool = True) -> tuple[float, Any, int]:
        if warm:
            _invoke(body, c.execution_event({"n": min(n, 50)}), c.FakeLambdaApi())
        api = c.FakeLambdaApi()
        seconds, result = _invoke(body, c.execution_event({"n": n}), api)
        return seconds, result, api.calls

    def sequential(self, n: int) -> tuple[float, Any, int]:
        return self._run(sequential_body, n)

    def map(self, n: int) -> tuple[float, Any, int]:
        return self._run(map_body, n)

    def map_memory(self, n: int) -> tuple[float, Any, int]:
        return self._run(map_body, n, warm=False)

    def replay(self, n: int) -> tuple[float, Any, int]:
        for size in (min(n, 50), n):  # warm-up, then the measured one
            recorder = c.FakeLambdaApi(record=True)
            _invoke(replay_body, c.execution_event({"n": size}), recorder)
            ops = c.history(recorder.updates, size)
            api = c.FakeLambdaApi()
            seconds, result = _invoke(replay_body, c.execution_event({"n": size}, ops), api)
        return seconds, result, api.calls


class Loopback:
    """Handlers with the SDK's default client (``AWS_ENDPOINT_URL_LAMBDA`` -> the runner)."""

    def __init__(self) -> None:
        self.sequential = durable_execution(sequential_body)
        self.one_step = durable_execution(one_step_body)


if __name__ == "__main__":
    c.main(Workloads, Loopback)
