"""Round trips per step against dex-local-runner: ``python benchmarks/bench_pipeline.py``.

Runs ``--steps`` sequential small steps per execution, end to end through the runner's
Lambda-Invoke (``tests/dex_harness.py``), in three ways, and reports time per step (inside
the handler) and ``CheckpointDurableExecution`` calls per execution:

* async steps, default mode (every result is recorded before the workflow goes on);
* plain (thread-run) steps, default mode (START rides with the result: one call per step);
* async steps, pipelined (``durable_execution(pipelined=True)``): results are queued while
  a call is in flight, so calls are far fewer than steps;
* plain steps, pipelined.

The floor is one raw aiobotocore checkpoint call (START+SUCCEED of one step) with chained
tokens. Options: ``--steps N`` (default 200), ``--rounds N`` (default 5). Needs the
conformance checker's venv (``../shared/conformance/setup.sh`` builds it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aiobotocore.session import get_session
from dex_harness import (
    FAKE_AWS_ENV,
    REGION,
    DexRunner,
    InvokeEndpoint,
    checker_python,
    wait_terminal,
)

from durable_async import (
    AioBotocoreClient,
    DurableContext,
    DurableExecutionClient,
    StepContext,
    durable_execution,
)
from durable_async._identity import operation_id
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)


class CountingClient(DurableExecutionClient):
    """Counts the checkpoint calls an ``AioBotocoreClient`` makes."""

    def __init__(self, inner: AioBotocoreClient) -> None:
        self.inner = inner
        self.calls = 0

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        self.calls += 1
        return await self.inner.checkpoint(params, logger)

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        return await self.inner.get_execution_state(params, logger)


async def _small(sc: StepContext, i: int) -> int:
    return i


def _plain(sc: StepContext, i: int) -> int:
    return i


async def _steps(event: dict[str, Any], ctx: DurableContext) -> int:
    body = _plain if event["plain"] else _small
    total = 0
    for i in range(event["n"]):
        total += await ctx.step(body, i, name="s")
    return total


default_mode = durable_execution(_steps)
pipelined_mode = durable_execution(pipelined=True)(_steps)


class Bench:
    def __init__(self, runner: DexRunner, raw: Any, client: CountingClient) -> None:
        self.runner = runner
        self.raw = raw
        self.client = client

    async def floor(self, event: dict[str, Any]) -> dict[str, Any]:
        arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
        payload = event["InitialExecutionState"]["Operations"][0]["ExecutionDetails"]
        n = int(payload["InputPayload"])
        started = time.perf_counter()
        for i in range(1, n + 1):
            updates = [
                {"Id": operation_id(None, i), "Type": "STEP", "Action": action, "Name": "s"}
                | {"SubType": "Step"}
                | ({"Payload": str(i)} if action == "SUCCEED" else {})
                for action in ("START", "SUCCEED")
            ]
            response = await self.raw.checkpoint_durable_execution(
                DurableExecutionArn=arn, CheckpointToken=token, Updates=updates
            )
            token = response["CheckpointToken"]
        return {"Status": "SUCCEEDED", "Result": repr(time.perf_counter() - started)}

    async def _sdk(self, handler: Any, event: dict[str, Any]) -> dict[str, Any]:
        before = self.client.calls
        started = time.perf_counter()
        out: dict[str, Any] = await handler.invoke_async(event, None, client=self.client)
        # The whole invocation: pipelined results still queued when the handler returns
        # are sent before the invocation ends, so they count.
        out["Result"] = repr(time.perf_counter() - started)
        out["_calls"] = self.client.calls - before
        return out

    async def default_async(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self._sdk(default_mode, event)

    async def default_plain(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self._sdk(default_mode, event)

    async def pipelined_async(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self._sdk(pipelined_mode, event)

    async def pipelined_plain(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self._sdk(pipelined_mode, event)

    async def run(self, endpoint: InvokeEndpoint, lam: Any, kind: str, n: int) -> dict[str, Any]:
        """One execution of ``kind`` with ``n`` steps; returns its last invocation output."""
        payload: Any = n if kind == "floor" else {"n": n, "plain": kind.endswith("plain")}
        endpoint.answered.clear()
        arn = await asyncio.to_thread(
            self.runner.start_execution, kind, payload, lambda_endpoint=endpoint.url
        )
        async with asyncio.timeout(120):
            await endpoint.answered.wait()
        if endpoint.errors:
            raise RuntimeError(f"{kind} failed: {endpoint.errors[-1][1]!r}")
        described = await wait_terminal(lam, arn)
        if described["Status"] != "SUCCEEDED":
            raise RuntimeError(f"{kind}: {described}")
        return endpoint.invocations[-1][2]


LABELS = {
    "floor": "raw aiobotocore checkpoint, START+SUCCEED (floor)",
    "default_async": "async step, default mode",
    "default_plain": "plain (thread) step, default mode",
    "pipelined_async": "async step, pipelined",
    "pipelined_plain": "plain (thread) step, pipelined",
}


async def main(args: argparse.Namespace) -> None:
    os.environ.update(FAKE_AWS_ENV)
    runner = DexRunner(checker_python()).start()
    client = CountingClient(AioBotocoreClient(endpoint_url=runner.url, region_name=REGION))
    try:
        async with (
            get_session().create_client("lambda", endpoint_url=runner.url) as raw,
            get_session().create_client("lambda", endpoint_url=runner.url) as lam,
        ):
            bench = Bench(runner, raw, client)
            functions = {
                "floor": bench.floor,
                "default_async": bench.default_async,
                "default_plain": bench.default_plain,
                "pipelined_async": bench.pipelined_async,
                "pipelined_plain": bench.pipelined_plain,
            }
            times: dict[str, list[float]] = {k: [] for k in functions}
            calls: dict[str, list[int]] = {k: [] for k in functions}
            async with InvokeEndpoint(functions) as endpoint:
                for kind in functions:  # warm-up: connections, caches
                    await bench.run(endpoint, lam, kind, 20)
                for _ in range(args.rounds):
                    for kind in functions:
                        out = await bench.run(endpoint, lam, kind, args.steps)
                        times[kind].append(float(out["Result"]) / args.steps)
                        calls[kind].append(out.get("_calls", args.steps))
    finally:
        await client.inner.aclose()
        runner.stop()

    floor = statistics.median(times["floor"])
    print(f"{args.steps} sequential steps per execution, {args.rounds} rounds, python "
          f"{sys.version.split()[0]}; ms per step (whole invocation / steps)")  # fmt: skip
    print(f"{'':52} {'median':>8} {'best':>8} {'/floor':>7} {'calls':>6}")
    for kind, label in LABELS.items():
        median, best = statistics.median(times[kind]), min(times[kind])
        n_calls = statistics.median(calls[kind])
        print(f"{label:52} {median * 1e3:8.3f} {best * 1e3:8.3f} {median / floor:7.2f} "
              f"{n_calls:6.0f}")  # fmt: skip
    print("calls: CheckpointDurableExecution calls per execution (median), including the")
    print("final call of a handler whose last results are pipelined")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
