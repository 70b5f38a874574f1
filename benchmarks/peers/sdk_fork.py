"""Workloads for ``async-durable-execution`` (the community async fork; its own venv).

Its operations are module functions that return ``asyncio.Task`` objects: ``step(fn)``
runs ``await fn()``; ``map(fn, items)`` runs ``fn(item)`` per item; ``asyncio.gather`` of
step tasks is its gather.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as c
from async_durable_execution import durable_execution, map, step


async def inc(i: int) -> int:
    c.note_threads()
    return i + 1


async def sequential_body(event: Any) -> int:
    total = 0
    for i in range(event["n"]):
        total += await step(functools.partial(inc, i), name="inc")
    return total


async def replay_body(event: Any) -> int:
    """``n`` recorded steps, then one new one."""
    total = 0
    for i in range(event["n"] + 1):
        total += await step(functools.partial(inc, i), name="inc")
    return total


async def gather_body(event: Any) -> int:
    tasks = [step(functools.partial(inc, i), name="inc") for i in range(event["n"])]
    return sum(await asyncio.gather(*tasks))


async def map_body(event: Any) -> int:
    async def item(value: int) -> int:
        return int(await step(functools.partial(inc, value), name="inc"))

    batch = await map(item, list(range(event["n"])))
    return sum(batch.get_results())


async def one_step_body(event: Any) -> int:
    return int(await step(functools.partial(inc, 1), name="inc"))


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

    def gather(self, n: int) -> tuple[float, Any, int]:
        return self._run(gather_body, n)

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
