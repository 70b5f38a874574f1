"""durable_async against dex-local-runner over loopback: ``python benchmarks/bench_loopback.py``.

The floor is a raw aiobotocore ``checkpoint_durable_execution`` loop with chained tokens
(one STEP START update per call; and START+SUCCEED per call, which is what the SDK sends
for a sequential step). It is compared with durable_async running sequential steps end to
end: the runner invokes an in-process Lambda-Invoke endpoint (``tests/dex_harness.py``),
which runs the handler with ``AioBotocoreClient``; every step is one checkpoint call.

Options: ``--steps N`` per execution (default 200), ``--rounds N`` (default 5).
Needs the conformance checker's venv (``../shared/conformance/setup.sh`` builds it).
"""

from __future__ import annotations

import argparse
import asyncio
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
    StepContext,
    durable_execution,
)
from durable_async._identity import operation_id


async def _noop(sc: StepContext, i: int) -> int:
    return i


@durable_execution
async def sdk_steps(event: dict[str, Any], ctx: DurableContext) -> float:
    started = time.perf_counter()
    for i in range(event["n"]):
        await ctx.step(_noop, i, name="s")
    return time.perf_counter() - started


def _update(i: int, action: str) -> dict[str, Any]:
    update = {"Id": operation_id(None, i), "Type": "STEP", "Action": action, "Name": "s"}
    update["SubType"] = "Step"
    if action == "SUCCEED":
        update["Payload"] = str(i)
    return update


class Bench:
    def __init__(self, runner: DexRunner, raw: Any, sdk_client: AioBotocoreClient) -> None:
        self.runner = runner
        self.raw = raw
        self.sdk_client = sdk_client

    async def _floor(self, event: dict[str, Any], actions: tuple[str, ...]) -> dict[str, Any]:
        arn, token = event["DurableExecutionArn"], event["CheckpointToken"]
        n = int(event["InitialExecutionState"]["Operations"][0]["ExecutionDetails"]["InputPayload"])
        started = time.perf_counter()
        for i in range(1, n + 1):
            response = await self.raw.checkpoint_durable_execution(
                DurableExecutionArn=arn,
                CheckpointToken=token,
                Updates=[_update(i, action) for action in actions],
            )
            token = response["CheckpointToken"]
        return {"Status": "SUCCEEDED", "Result": repr(time.perf_counter() - started)}

    async def floor_start(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self._floor(event, ("START",))

    async def floor_start_succeed(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self._floor(event, ("START", "SUCCEED"))

    async def sdk(self, event: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        out = await sdk_steps.invoke_async(event, None, client=self.sdk_client)
        out["_whole"] = time.perf_counter() - started
        return out

    async def run(self, endpoint: InvokeEndpoint, lam: Any, kind: str, n: int) -> dict[str, Any]:
        """One execution of ``kind`` with ``n`` steps; returns its last invocation output."""
        payload: Any = n if kind != "sdk" else {"n": n}
        endpoint.answered.clear()
        arn = await asyncio.to_thread(
            self.runner.start_execution, kind, payload, lambda_endpoint=endpoint.url
        )
        # Poll the runner only after the measured invocation answered (no competing load).
        async with asyncio.timeout(120):
            await endpoint.answered.wait()
        if endpoint.errors:
            raise RuntimeError(f"{kind} failed: {endpoint.errors[-1][1]!r}")
        described = await wait_terminal(lam, arn)
        if described["Status"] != "SUCCEEDED":
            raise RuntimeError(f"{kind}: {described}")
        return endpoint.invocations[-1][2]


async def main(args: argparse.Namespace) -> None:
    os.environ.update(FAKE_AWS_ENV)
    started = time.perf_counter()
    runner = DexRunner(checker_python()).start()
    print(f"dex-local-runner at {runner.url} (up in {time.perf_counter() - started:.1f}s)")
    sdk_client = AioBotocoreClient(endpoint_url=runner.url, region_name=REGION)
    try:
        async with (
            get_session().create_client("lambda", endpoint_url=runner.url) as raw,
            get_session().create_client("lambda", endpoint_url=runner.url) as lam,
        ):
            bench = Bench(runner, raw, sdk_client)
            functions = {
                "floor_start": bench.floor_start,
                "floor_start_succeed": bench.floor_start_succeed,
                "sdk": bench.sdk,
            }
            async with InvokeEndpoint(functions) as endpoint:
                for kind in functions:  # warm-up: connections, caches
                    await bench.run(endpoint, lam, kind, 20)
                rows: dict[str, list[float]] = {k: [] for k in (*functions, "sdk_whole")}
                for _ in range(args.rounds):
                    for kind in functions:
                        out = await bench.run(endpoint, lam, kind, args.steps)
                        rows[kind].append(float(out["Result"]) / args.steps)
                        if kind == "sdk":
                            rows["sdk_whole"].append(out["_whole"] / args.steps)
    finally:
        await sdk_client.aclose()
        runner.stop()

    floor = statistics.median(rows["floor_start_succeed"])
    labels = {
        "floor_start": "raw aiobotocore checkpoint, 1 STEP START update",
        "floor_start_succeed": "raw aiobotocore checkpoint, START+SUCCEED (floor)",
        "sdk": "durable_async sequential step (in handler)",
        "sdk_whole": "durable_async sequential step (whole invocation)",
    }
    print(f"{args.steps} steps per execution, {args.rounds} rounds; ms per step/call")
    print(f"{'':52} {'median':>8} {'best':>8} {'ratio':>6}")
    for kind, label in labels.items():
        median, best = statistics.median(rows[kind]), min(rows[kind])
        print(f"{label:52} {median * 1e3:8.3f} {best * 1e3:8.3f} {median / floor:6.2f}")
    ratio = statistics.median(rows["sdk"]) / floor
    print(f"durable_async / floor: {ratio:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
