"""Workloads for durable_async (run in the project's venv).

The zero-latency backend is the same ``FakeLambdaApi`` as the peers', reached through a
``DurableExecutionClient`` that converts to and from botocore's dict shapes, as the real
aiobotocore backend does. ``floor`` is the loopback floor: raw aiobotocore checkpoint
calls, one per step, with no SDK.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common as c

from durable_async import (
    DurableContext,
    DurableExecutionClient,
    StepContext,
    durable_execution,
)
from durable_async._wire.converter import from_wire, to_wire
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)


class FakeApiClient(DurableExecutionClient):
    """``DurableExecutionClient`` over the shared zero-latency ``FakeLambdaApi``."""

    def __init__(self, api: c.FakeLambdaApi) -> None:
        self.api = api

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        return from_wire(
            self.api.checkpoint_durable_execution(**to_wire(params)), CheckpointResponse
        )

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        response = self.api.get_durable_execution_state(**to_wire(params))
        return from_wire(response, ExecutionStatePage)


async def inc(sc: StepContext, i: int) -> int:
    c.note_threads()
    return i + 1


async def sequential_body(event: Any, ctx: DurableContext) -> int:
    total = 0
    for i in range(event["n"]):
        total += await ctx.step(inc, i)
    return total


async def replay_body(event: Any, ctx: DurableContext) -> int:
    """``n`` recorded steps, then one new one."""
    total = 0
    for i in range(event["n"] + 1):
        total += await ctx.step(inc, i)
    return total


async def gather_body(event: Any, ctx: DurableContext) -> int:
    return sum(await asyncio.gather(*(ctx.step(inc, i) for i in range(event["n"]))))


async def _item(item_ctx: DurableContext, value: int, index: int, items: Any) -> int:
    return await item_ctx.step(inc, value)


async def map_body(event: Any, ctx: DurableContext) -> int:
    batch = await ctx.map(range(event["n"]), _item)
    return sum(batch.get_results())


async def one_step_body(event: Any, ctx: DurableContext) -> int:
    return await ctx.step(inc, 1)


def _invoke(body: Any, event: Any, api: c.FakeLambdaApi) -> tuple[float, Any]:
    handler = durable_execution(client=FakeApiClient(api))(body)
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


def _floor_update(i: int) -> list[dict[str, Any]]:
    from durable_async._identity import operation_id

    op = {"Id": operation_id(None, i), "Type": "STEP", "SubType": "Step", "Name": "inc"}
    return [{**op, "Action": "START"}, {**op, "Action": "SUCCEED", "Payload": str(i)}]


class Loopback:
    """Handlers with the SDK's default client (``AWS_ENDPOINT_URL_LAMBDA`` -> the runner)."""

    def __init__(self) -> None:
        self.sequential = durable_execution(sequential_body)
        self.one_step = durable_execution(one_step_body)
        self._raw: Any = None

    def floor(self, event: Any, lambda_context: Any) -> dict[str, Any]:
        """``n`` raw checkpoint calls (a step's START+SUCCEED each): the transport alone."""
        from durable_async._entry import process_runner

        return process_runner().run(self._floor(event))

    async def _floor(self, event: Any) -> dict[str, Any]:
        import atexit
        import json

        from aiobotocore.session import get_session

        from durable_async._entry import process_runner

        if self._raw is None:  # kept open across invocations, like the SDK's client
            context = get_session().create_client("lambda")
            self._raw = await context.__aenter__()
            atexit.register(process_runner().run, context.__aexit__(None, None, None))
        arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
        ops = event["InitialExecutionState"]["Operations"]
        n = json.loads(ops[0]["ExecutionDetails"]["InputPayload"])["n"]
        for i in range(1, n + 1):
            response = await self._raw.checkpoint_durable_execution(
                DurableExecutionArn=arn, CheckpointToken=token, Updates=_floor_update(i)
            )
            token = response["CheckpointToken"]
        return {"Status": "SUCCEEDED", "Result": json.dumps(sum(range(1, n + 1)))}


if __name__ == "__main__":
    c.main(Workloads, Loopback)
