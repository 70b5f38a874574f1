"""Fixed cost per invocation through the sync entry point: ``python benchmarks/bench_entry.py``.

What Lambda's runtime does on a warm process: call the decorated handler synchronously,
once per event. The handler is trivial (returns at once, records nothing) and the backend
is ``MemoryBackend`` (no latency), so what is measured is the SDK's fixed cost: decoding the
event, setting the invocation up, running it on the process's loop, settling and encoding.

Rows: the sync entry point as it is; the same invocation run by ``asyncio.Runner.run``
(what the entry point used before, which swaps the SIGINT handler on every call); and
``await handler.invoke_async(...)`` inside a running loop (no loop entry at all). Also a
one-step handler through the sync entry point, for scale. Rows alternate in blocks of
``--block`` invocations, ``--rounds`` times. Every invocation is timed on its own: on a
shared machine most are interrupted by other processes, so the low percentiles (p10, p25)
are what an invocation costs when it has a core, and the median is what this run saw.
Target: <= 100 µs per invocation through the sync entry point.
"""

from __future__ import annotations

import argparse
import gc
import json
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


Timings = list[float]


def sync_entry(handler: Any) -> Callable[[list[dict[str, Any]], Timings], None]:
    def run(batch: list[dict[str, Any]], timings: Timings) -> None:
        context = FakeLambdaContext()
        clock = time.perf_counter
        for event in batch:
            started = clock()
            out = handler(event, context)
            timings.append(clock() - started)
        assert out["Status"] == "SUCCEEDED", out

    return run


def runner_run(batch: list[dict[str, Any]], timings: Timings) -> None:
    runner = process_runner()
    context = FakeLambdaContext()
    clock = time.perf_counter
    for event in batch:
        started = clock()
        out = runner.run(trivial.invoke_async(event, context))
        timings.append(clock() - started)
    assert out["Status"] == "SUCCEEDED", out


def in_loop(batch: list[dict[str, Any]], timings: Timings) -> None:
    async def run() -> None:
        context = FakeLambdaContext()
        clock = time.perf_counter
        for event in batch:
            started = clock()
            out = await trivial.invoke_async(event, context)
            timings.append(clock() - started)
        assert out["Status"] == "SUCCEEDED", out

    process_runner().run(run())


ROWS: dict[str, tuple[Any, Callable[[list[dict[str, Any]], Timings], None]]] = {
    "sync entry point, trivial handler": (trivial, sync_entry(trivial)),
    "asyncio.Runner.run, trivial handler (before)": (trivial, runner_run),
    "invoke_async in a running loop, trivial handler": (trivial, in_loop),
    "sync entry point, one-step handler": (one_step, sync_entry(one_step)),
}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(args: argparse.Namespace) -> None:
    for handler, run in ROWS.values():  # warm-up
        run(events(handler, 200), [])
    timings: dict[str, Timings] = {label: [] for label in ROWS}
    for _ in range(args.rounds):
        for label, (handler, run) in ROWS.items():
            batch = events(handler, args.block)
            gc.collect()
            run(batch, timings[label])
    print(f"python {sys.version.split()[0]}; {args.rounds} x {args.block} invocations per row")
    print(f"{'µs per invocation':50} {'min':>7} {'p10':>7} {'p25':>7} {'median':>7}")
    for label in ROWS:
        values = timings[label]
        p10, p25, p50 = (_percentile(values, f) * US for f in (0.1, 0.25, 0.5))
        print(f"{label:50} {min(values) * US:7.1f} {p10:7.1f} {p25:7.1f} {p50:7.1f}")
    print("target: sync entry point, trivial handler <= 100 µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    main(parser.parse_args())
