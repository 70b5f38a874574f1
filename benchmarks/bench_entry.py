"""Fixed cost per invocation through the sync entry point: ``python benchmarks/bench_entry.py``.

What Lambda's runtime does on a warm process: call the decorated handler synchronously,
once per event. The handler is trivial (returns at once, records nothing) and the backend
is ``MemoryBackend`` (no latency), so what is measured is the SDK's fixed cost: decoding the
event, setting the invocation up, running it on the process's loop, settling and encoding.

Rows: the sync entry point as it is; the same invocation run by ``asyncio.Runner.run``
(what the entry point used before, which swaps the SIGINT handler on every call); and
``await handler.invoke_async(...)`` inside a running loop (no loop entry at all). Also a
one-step handler through the sync entry point, for scale. Each row is measured in blocks
of ``--block`` invocations, alternating between rows; wall and CPU time per invocation,
min and median over ``--rounds`` blocks. Target: <= 100 µs per invocation (sync entry).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from durable_async import DurableContext, StepContext, durable_execution
from durable_async._entry import process_runner
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

US = 1e6
backend = MemoryBackend()


@durable_execution(client=backend)
async def trivial(event: Any, ctx: DurableContext) -> int:
    return 1


async def _one(_: StepContext) -> int:
    return 1


@durable_execution(client=backend)
async def one_step(event: Any, ctx: DurableContext) -> int:
    return await ctx.step(_one)


def events(handler: Any, n: int) -> list[dict[str, Any]]:
    """Fresh executions, each event as the Lambda runtime hands it over (decoded JSON)."""
    runner = LocalRunner(handler, backend)
    return [json.loads(json.dumps(runner.event(backend.start_execution("{}")))) for _ in range(n)]


def sync_entry(handler: Any) -> Callable[[list[dict[str, Any]]], None]:
    def run(batch: list[dict[str, Any]]) -> None:
        context = FakeLambdaContext()
        for event in batch:
            out = handler(event, context)
        assert out["Status"] == "SUCCEEDED", out

    return run


def runner_run(batch: list[dict[str, Any]]) -> None:
    runner = process_runner()
    context = FakeLambdaContext()
    for event in batch:
        out = runner.run(trivial.invoke_async(event, context))
    assert out["Status"] == "SUCCEEDED", out


def in_loop(batch: list[dict[str, Any]]) -> None:
    async def run() -> None:
        context = FakeLambdaContext()
        for event in batch:
            out = await trivial.invoke_async(event, context)
        assert out["Status"] == "SUCCEEDED", out

    process_runner().run(run())


ROWS: dict[str, tuple[Any, Callable[[list[dict[str, Any]]], None]]] = {
    "sync entry point, trivial handler": (trivial, sync_entry(trivial)),
    "asyncio.Runner.run, trivial handler (before)": (trivial, runner_run),
    "invoke_async in a running loop, trivial handler": (trivial, in_loop),
    "sync entry point, one-step handler": (one_step, sync_entry(one_step)),
}


def main(args: argparse.Namespace) -> None:
    for handler, run in ROWS.values():  # warm-up
        run(events(handler, 200))
    wall: dict[str, list[float]] = {label: [] for label in ROWS}
    cpu: dict[str, list[float]] = {label: [] for label in ROWS}
    for _ in range(args.rounds):
        for label, (handler, run) in ROWS.items():
            batch = events(handler, args.block)
            gc.collect()
            started, started_cpu = time.perf_counter(), time.process_time()
            run(batch)
            wall[label].append((time.perf_counter() - started) / args.block)
            cpu[label].append((time.process_time() - started_cpu) / args.block)
    print(f"python {sys.version.split()[0]}; {args.rounds} blocks of {args.block} invocations")
    print(f"{'µs per invocation':50} {'wall min':>9} {'median':>8} {'cpu min':>8} {'median':>8}")
    for label in ROWS:
        print(
            f"{label:50} {min(wall[label]) * US:9.1f} {statistics.median(wall[label]) * US:8.1f}"
            f" {min(cpu[label]) * US:8.1f} {statistics.median(cpu[label]) * US:8.1f}"
        )
    print("target: sync entry point, trivial handler <= 100 µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    main(parser.parse_args())
