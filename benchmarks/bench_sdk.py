"""SDK overhead on the in-memory backend (no I/O): ``python benchmarks/bench_sdk.py``.

(a) time per sequential step and per gathered step, with checkpoint calls (on
    ``MemoryBackend``, and on a zero-cost backend that only hands back a token: pure SDK time);
(b) fixed cost per invocation (one-step handler, minus one sequential step);
(c) replay cost per recorded operation;
(d) worker threads used by a 200-way gather of plain (sync) steps;
(e) the cost of deciding suspension exactly: ``N`` branch tasks that each run 0-7 steps and
    park on a durable wait at different moments, until the invocation suspends (time per
    branch, and how often the quiescence check ran).

Options: ``--steps N`` (sequential, default 2000), ``--gathered N`` (1000),
``--invocations N`` (2000), ``--replayed N`` (2000), ``--branches N`` (1000),
``--repeat N`` (best of, 5).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from durable_async import (
    DurableContext,
    DurableExecutionClient,
    StepContext,
    durable_execution,
)
from durable_async._entry import DEFAULT_MAX_THREADS
from durable_async._replay import OperationLog
from durable_async._suspend import SuspensionMonitor
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

US = 1e6


async def _inc(sc: StepContext, i: int) -> int:
    return i + 1


@durable_execution
async def sequential(event: dict[str, Any], ctx: DurableContext) -> int:
    total = 0
    for i in range(event["n"]):
        total += await ctx.step(_inc, i)
    return total


@durable_execution
async def gathered(event: dict[str, Any], ctx: DurableContext) -> int:
    results = await asyncio.gather(*(ctx.step(_inc, i) for i in range(event["n"])))
    return sum(results)


@durable_execution
async def one_step(event: dict[str, Any], ctx: DurableContext) -> int:
    return await ctx.step(_inc, 1)


@durable_execution
async def steps_then_wait(event: dict[str, Any], ctx: DurableContext) -> int:
    total = 0
    for i in range(event["n"]):
        total += await ctx.step(_inc, i)
    await ctx.wait(1)
    return total


_threads_seen = 0
_threads_lock = threading.Lock()


def _blocking(sc: StepContext, i: int) -> int:
    global _threads_seen
    time.sleep(0.005)
    with _threads_lock:
        _threads_seen = max(_threads_seen, threading.active_count())
    return i


@durable_execution
async def sync_fanout(event: dict[str, Any], ctx: DurableContext) -> int:
    results = await asyncio.gather(*(ctx.step(_blocking, i) for i in range(event["n"])))
    return len(results)


@durable_execution
async def staggered_parks(event: dict[str, Any], ctx: DurableContext) -> int:
    async def branch(i: int) -> int:
        for _ in range(i % 8):
            await ctx.step(_inc, i)
        await ctx.wait(1)
        return i

    return sum(await asyncio.gather(*(branch(i) for i in range(event["n"]))))


class ZeroCostBackend(DurableExecutionClient):
    """Answers every checkpoint at once with a token and no state: measures the SDK alone."""

    def __init__(self) -> None:
        self.calls = 0

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        self.calls += 1
        return _ZERO_RESPONSE

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        return ExecutionStatePage()


_ZERO_RESPONSE = CheckpointResponse(checkpoint_token="token")


async def bench_zero_cost(n: int, repeat: int) -> tuple[float, int]:
    """Best time of one invocation of ``n`` sequential steps against ``ZeroCostBackend``."""
    best = float("inf")
    calls = 0
    for _ in range(repeat):
        memory = MemoryBackend()
        event = lambda_event(
            LocalRunner(sequential, memory), memory.start_execution(json.dumps({"n": n}))
        )
        backend = ZeroCostBackend()
        elapsed, out = await _timed(
            lambda: sequential.invoke_async(event, FakeLambdaContext(), client=backend)  # noqa: B023
        )
        assert out["Status"] == "SUCCEEDED", out
        best, calls = min(best, elapsed), backend.calls
    return best, calls


def lambda_event(runner: LocalRunner, arn: str) -> dict[str, Any]:
    """The invocation event as the Lambda runtime hands it over: decoded JSON."""
    return json.loads(json.dumps(runner.event(arn)))  # type: ignore[no-any-return]


async def _timed(coro_factory: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    gc.collect()
    started = time.perf_counter()
    result = await coro_factory()
    return time.perf_counter() - started, result


async def bench_steps(handler: Any, n: int, repeat: int) -> tuple[float, int, int]:
    """Best wall time of one invocation running ``n`` steps; checkpoint calls; invocations."""
    best = float("inf")
    calls = invocations = 0
    for _ in range(repeat):
        backend = MemoryBackend()
        runner = LocalRunner(handler, backend)
        elapsed, result = await _timed(lambda: runner.run({"n": n}))  # noqa: B023
        assert result.status.value == "SUCCEEDED", result
        assert result.result == sum(range(1, n + 1)), result.result
        best = min(best, elapsed)
        calls, invocations = len(backend.checkpoint_calls), result.invocations
    return best, calls, invocations


async def bench_invocations(count: int, repeat: int) -> tuple[float, int]:
    """Best mean time of ``handler.invoke_async`` over ``count`` fresh one-step executions."""
    best = float("inf")
    calls = 0
    context = FakeLambdaContext()
    for _ in range(repeat):
        backend = MemoryBackend()
        runner = LocalRunner(one_step, backend)
        events = [lambda_event(runner, backend.start_execution("{}")) for _ in range(count)]
        gc.collect()
        started = time.perf_counter()
        for event in events:
            out = await one_step.invoke_async(event, context, client=backend)
        elapsed = time.perf_counter() - started
        assert out["Status"] == "SUCCEEDED", out
        best = min(best, elapsed / count)
        calls = len(backend.checkpoint_calls)
    return best, calls // count


async def bench_replay(n: int, repeat: int) -> tuple[float, float, float, int, int]:
    """Best time of one invocation that replays ``n`` steps and a wait, then returns
    (with and without the cyclic GC), and of decoding its event's operations alone."""
    backend = MemoryBackend(page_size=1_000_000)  # the whole history inline, as Lambda
    runner = LocalRunner(steps_then_wait, backend)
    arn = backend.start_execution(json.dumps({"n": n}))
    first = await steps_then_wait.invoke_async(
        lambda_event(runner, arn), FakeLambdaContext(), client=backend
    )
    assert first["Status"] == "PENDING", first
    due = backend.next_due(arn)
    assert due is not None
    backend.advance_to(due)
    event = lambda_event(runner, arn)
    ops = len(event["InitialExecutionState"]["Operations"])
    calls_before = len(backend.checkpoint_calls)
    times: dict[bool, list[float]] = {True: [], False: []}
    for gc_on in (True, False) * repeat:
        if not gc_on:
            gc.disable()
        try:
            elapsed, out = await _timed(
                lambda: steps_then_wait.invoke_async(event, FakeLambdaContext(), client=backend)
            )
        finally:
            gc.enable()
        assert out["Status"] == "SUCCEEDED", out
        assert out["Result"] == str(sum(range(1, n + 1))), out
        times[gc_on].append(elapsed)
    replay_calls = (len(backend.checkpoint_calls) - calls_before) // (2 * repeat)
    # Of which: turning the event's operations into models (before any replay).
    raw_ops = event["InitialExecutionState"]["Operations"]
    decode = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        OperationLog().apply_raw(raw_ops)
        decode.append(time.perf_counter() - started)
    return min(times[True]), min(times[False]), min(decode), ops, replay_calls


async def bench_threads(n: int) -> tuple[int, int, float]:
    global _threads_seen
    _threads_seen = 0
    baseline = threading.active_count()
    elapsed, result = await _timed(lambda: LocalRunner(sync_fanout).run({"n": n}))
    assert result.result == n, result
    return baseline, _threads_seen, elapsed


async def bench_staggered_parks(n: int, repeat: int) -> tuple[float, int]:
    """Best time of the first (suspending) invocation of ``staggered_parks``; checks run."""
    checks = 0
    original = SuspensionMonitor._check

    def counting(self: SuspensionMonitor) -> None:
        nonlocal checks
        checks += 1
        original(self)

    best = float("inf")
    SuspensionMonitor._check = counting  # type: ignore[method-assign]
    try:
        for _ in range(repeat):
            backend = MemoryBackend()
            runner = LocalRunner(staggered_parks, backend)
            event = lambda_event(runner, backend.start_execution(json.dumps({"n": n})))
            checks = 0
            elapsed, out = await _timed(
                lambda: staggered_parks.invoke_async(event, FakeLambdaContext(), client=backend)  # noqa: B023
            )
            assert out["Status"] == "PENDING", out
            best = min(best, elapsed)
    finally:
        SuspensionMonitor._check = original  # type: ignore[method-assign]
    return best, checks


async def main(args: argparse.Namespace) -> None:
    # Warm up imports, caches and the converter.
    await bench_steps(sequential, 50, 1)
    await bench_zero_cost(50, 1)
    await bench_steps(gathered, 50, 1)
    await bench_invocations(50, 1)
    await bench_replay(50, 1)

    rows: list[tuple[str, str, str, str]] = []
    zero_time, zero_calls = await bench_zero_cost(args.steps, args.repeat)
    rows.append(
        (f"(a) sequential step, zero-cost backend, N={args.steps}",
         f"{zero_time / args.steps * US:8.1f} µs/step",
         f"{zero_calls} checkpoint calls (target <= 100 µs/step)",
         f"{zero_calls / args.steps:.2f} calls/step")
    )  # fmt: skip
    seq_time, seq_calls, _ = await bench_steps(sequential, args.steps, args.repeat)
    per_seq = seq_time / args.steps
    rows.append(
        (f"(a) sequential step, N={args.steps}", f"{per_seq * US:8.1f} µs/step",
         f"{seq_calls} checkpoint calls", f"{seq_calls / args.steps:.2f} calls/step")
    )  # fmt: skip
    gat_time, gat_calls, _ = await bench_steps(gathered, args.gathered, args.repeat)
    rows.append(
        (f"(a) gathered step, N={args.gathered}", f"{gat_time / args.gathered * US:8.1f} µs/step",
         f"{gat_calls} checkpoint calls", f"{args.gathered / gat_calls:.0f} steps/call")
    )  # fmt: skip
    inv, inv_calls = await bench_invocations(args.invocations, args.repeat)
    fixed = inv - per_seq
    rows.append(
        (f"(b) one-step invocation, x{args.invocations}", f"{inv * US:8.1f} µs/invocation",
         f"fixed {fixed * US:.1f} µs (target <= 1000)", f"{inv_calls} calls/invocation")
    )  # fmt: skip
    replay, no_gc, decode, ops, replay_calls = await bench_replay(args.replayed, args.repeat)
    rows.append(
        (f"(c) replay of {ops} recorded ops", f"{replay / ops * US:8.1f} µs/op",
         f"{replay * 1e3:.1f} ms/invocation (target <= 3 µs/op)",
         f"{replay_calls} calls/invocation")
    )  # fmt: skip
    rows.append(
        ("    same, cyclic GC disabled", f"{no_gc / ops * US:8.1f} µs/op",
         f"decoding the event {decode / ops * US:.1f} µs/op (GC on)", "")
    )  # fmt: skip
    baseline, peak, elapsed = await bench_threads(200)
    rows.append(
        ("(d) 200-way gather of sync steps", f"{peak} threads peak",
         f"baseline {baseline}, limiter {DEFAULT_MAX_THREADS}", f"{elapsed * 1e3:.0f} ms")
    )  # fmt: skip

    parks, checks = await bench_staggered_parks(args.branches, args.repeat)
    rows.append(
        (f"(e) {args.branches} branches parking one by one",
         f"{parks / args.branches * US:8.1f} µs/branch",
         f"{checks} quiescence checks, {parks * 1e3:.0f} ms to suspend", "")
    )  # fmt: skip

    print(f"python {sys.version.split()[0]}, best of {args.repeat}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    if peak - baseline > DEFAULT_MAX_THREADS:
        print(f"!! worker threads exceeded the limiter: {peak - baseline}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--gathered", type=int, default=1000)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--replayed", type=int, default=2000)
    parser.add_argument("--branches", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
