"""``ctx.map`` at 1,000 and 10,000 items: ``python benchmarks/bench_map.py``.

Every item runs one async step (``await item_ctx.step(fn, item)``). For each size and
backend: the wall time of the whole execution (best of ``--repeat``), µs per item,
checkpoint calls and the time spent awaiting their answers, operations handed back in
checkpoint responses, time in the cyclic GC, invocations, peak ``threading.active_count()``
(sampled in every item body, step body and checkpoint call) and how many threads ran item
or step bodies, and the peak RSS (``ru_maxrss``) beside the RSS after imports and a warm-up
run. Each (size, backend) runs in a fresh child process of this script (``--child SIZE
BACKEND`` prints one JSON line), so the RSS is per size.

Backends: ``memory`` is ``LocalRunner`` on ``MemoryBackend`` (no I/O: the SDK plus the
test backend's bookkeeping). ``loopback`` is AWS's dex-local-runner on 127.0.0.1 (in the
conformance checker's venv, built by ``../shared/conformance/setup.sh``) invoking an
in-process Lambda-Invoke endpoint that runs the handler with ``AioBotocoreClient``
(``tests/dex_harness.py``, as ``benchmarks/bench_loopback.py``); its wall time runs from
``start-durable-execution`` to the last invocation's answer. The runner times invocations
out after ``--invocation-timeout`` seconds (default 900, Lambda's maximum), and the handler
sees that deadline as Lambda's: an execution that needs longer winds down, the runner
invokes again after its 5 s retry backoff (counted in the wall time), and the next
invocation replays and carries on ("2 (1 timed out)"). With the runner's own default of
60 s, 10,000 items over loopback need two invocations, and the second replays every
operation of the first.

Over loopback the wall time is mostly the runner's: dex-local-runner checks each update
against every operation recorded so far, so its CPU time grows with the square of the item
count. ``sdk cpu s`` is this process's CPU time during the run (the handler, the SDK,
aiobotocore and the in-process Lambda endpoint), the part the SDK owns; its per-item ratio is
reported beside the wall-time one.

Targets: one thread for orchestration (item and step bodies all on the loop's thread),
under 150 MiB peak RSS at 10,000 items, cost linear in items (the µs/item ratio between the
largest and the smallest size at most 1.2).

Options: ``--sizes 1000,10000``, ``--backends memory,loopback``, ``--repeat N`` (best of,
default 3), ``--loopback-repeat N`` (default 1: 10,000 items over loopback take about a
minute and a half), ``--timeout S`` per execution (default 900), ``--invocation-timeout S``
(loopback: the function timeout the runner enforces, default 900).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from durable_async import (
    DurableContext,
    DurableExecutionClient,
    StepContext,
    durable_execution,
)
from durable_async._wire.models import (
    CheckpointRequest,
    CheckpointResponse,
    ExecutionStatePage,
    GetExecutionStateRequest,
)
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend

US = 1e6
MIB = 1024 * 1024
RSS_TARGET_MIB = 150
LINEAR_RATIO = 1.2
BACKENDS = ("memory", "loopback")
WARM_UP_ITEMS = 50
#: The function timeout the runner enforces by default here: Lambda's maximum, 900 s, as a
#: function that maps 10,000 items would be configured (``--invocation-timeout``).
INVOCATION_TIMEOUT_S = 900
TESTS_DIR = str(Path(__file__).resolve().parents[1] / "tests")

# -- the workload ------------------------------------------------------------------------

_peak_threads = 0
_peak_names: list[str] = []
_body_threads: set[int] = set()


def _sample() -> None:
    """Note ``threading.active_count()`` (and the threads' names at a new peak)."""
    global _peak_threads, _peak_names
    count = threading.active_count()
    if count > _peak_threads:
        _peak_threads = count
        _peak_names = sorted(thread.name for thread in threading.enumerate())


def _reset_threads() -> None:
    global _peak_threads, _peak_names
    _peak_threads = 0
    _body_threads.clear()
    _sample()


async def _inc(sc: StepContext, i: int) -> int:
    _sample()
    _body_threads.add(threading.get_ident())
    return i + 1


async def _item(item_ctx: DurableContext, item: int, index: int, items: Sequence[int]) -> int:
    _sample()
    _body_threads.add(threading.get_ident())
    return await item_ctx.step(_inc, item)


@durable_execution
async def map_steps(event: dict[str, Any], ctx: DurableContext) -> list[int]:
    batch = await ctx.map(range(event["n"]), _item)
    results: list[int] = batch.get_results()
    return [len(results), sum(results)]


def _expected(n: int) -> list[int]:
    return [n, n * (n + 1) // 2]


class Tally:
    """One run's backend traffic: checkpoint calls, the time spent awaiting their answers,
    updates sent, operations handed back in their responses, state reads."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.checkpoints = self.updates = self.ops_back = self.state_reads = 0
        self.seconds = 0.0

    async def checkpoint(
        self,
        call: Callable[[CheckpointRequest, logging.Logger], Awaitable[CheckpointResponse]],
        params: CheckpointRequest,
        logger: logging.Logger,
    ) -> CheckpointResponse:
        self.checkpoints += 1
        self.updates += len(params.updates)
        _sample()
        started = time.perf_counter()
        response = await call(params, logger)
        self.seconds += time.perf_counter() - started
        self.ops_back += len(response.new_execution_state.operations)
        _sample()
        return response


class TalliedMemoryBackend(MemoryBackend):
    """``MemoryBackend`` whose checkpoint calls are tallied."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        return await self.tally.checkpoint(super().checkpoint, params, logger)


class TalliedClient(DurableExecutionClient):
    """Delegates to another client (``AioBotocoreClient``), tallying its calls."""

    def __init__(self, inner: DurableExecutionClient, tally: Tally) -> None:
        self.inner = inner
        self.tally = tally

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        return await self.tally.checkpoint(self.inner.checkpoint, params, logger)

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        self.tally.state_reads += 1
        _sample()
        return await self.inner.get_execution_state(params, logger)

    async def aclose(self) -> None:
        await self.inner.aclose()


# -- one (size, backend) in this process ---------------------------------------------------


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class _GcTimer:
    """Seconds spent in the cyclic garbage collector (``gc.callbacks``), and full passes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2

    def reset(self) -> None:
        self.seconds = 0.0
        self.full = 0


class Child:
    """What one child process measures: a record per run, and process-wide peaks."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.error: str | None = None
        self.baseline_rss = 0.0
        self.threads_at_start = threading.active_count()
        self.runner_up: float | None = None
        self.tally = Tally()
        self.gc = _GcTimer()
        self.cpu_started = 0.0

    def start_measuring(self) -> None:
        """After the warm-up: the RSS baseline, and a fresh thread sample."""
        self.baseline_rss = _rss_now_mib()
        _reset_threads()

    def before_run(self) -> None:
        self.tally.reset()
        gc.collect()
        self.gc.reset()
        self.cpu_started = time.process_time()

    def record(
        self,
        wall: float,
        invocations: int,
        handler: float | None = None,
        timed_out: int = 0,
        runner_cpu: float | None = None,
    ) -> None:
        t = self.tally
        self.runs.append(
            {
                "wall": wall,
                "handler": handler,
                "invocations": invocations,
                "timed_out": timed_out,
                "checkpoints": t.checkpoints,
                "checkpoint_seconds": t.seconds,
                "updates": t.updates,
                "ops_back": t.ops_back,
                "state_reads": t.state_reads,
                "gc_seconds": self.gc.seconds,
                "gc_full": self.gc.full,
                "runner_cpu": runner_cpu,
                "sdk_cpu": time.process_time() - self.cpu_started,
            }
        )


async def run_memory(n: int, repeat: int, child: Child) -> None:
    for i in range(repeat + 1):  # the first run is a warm-up at WARM_UP_ITEMS items
        size = WARM_UP_ITEMS if i == 0 else n
        if i == 1:
            child.start_measuring()
        runner = LocalRunner(map_steps, TalliedMemoryBackend(child.tally))
        child.before_run()
        started = time.perf_counter()
        result = await runner.run({"n": size})
        elapsed = time.perf_counter() - started
        if result.status.value != "SUCCEEDED" or result.result != _expected(size):
            raise RuntimeError(f"{result.status.value}: {result.error or result.result}")
        if i > 0:
            child.record(elapsed, result.invocations)
        del runner, result


async def run_loopback(
    n: int, repeat: int, limit: float, child: Child, invocation_timeout: int
) -> None:
    sys.path.insert(0, TESTS_DIR)
    from dex_harness import (  # type: ignore[import-not-found, unused-ignore]
        FAKE_AWS_ENV,
        REGION,
        DexRunner,
        InvokeEndpoint,
        checker_python,
        described_when_terminal,
    )

    from durable_async import AioBotocoreClient

    os.environ.update(FAKE_AWS_ENV)
    started = time.perf_counter()
    runner = DexRunner(checker_python(), invocation_timeout=invocation_timeout).start()
    child.runner_up = time.perf_counter() - started
    assert runner._proc is not None
    runner_pid: int = runner._proc.pid
    client = TalliedClient(
        AioBotocoreClient(endpoint_url=runner.url, region_name=REGION), child.tally
    )
    in_handler: list[float] = []
    timed_out: list[BaseException] = []

    async def handle(event: dict[str, Any]) -> dict[str, Any]:
        # Lambda's deadline, as the runner enforces it: near it the SDK winds down and the
        # invocation fails with InvocationTimeoutError; the runner invokes again.
        deadline = FakeLambdaContext(remaining_ms=invocation_timeout * 1000)
        started = time.perf_counter()
        error: Exception | None = None
        try:
            out: dict[str, Any] = await map_steps.invoke_async(event, deadline, client=client)
        except Exception as exc:
            # Only its text: the endpoint keeps what is raised, and a traceback would keep
            # the whole invocation alive (and in the RSS) through the next one.
            error = RuntimeError(f"{type(exc).__name__}: {exc}")
        finally:
            in_handler.append(time.perf_counter() - started)
        if error is not None:
            # Wound down near the deadline, or cut off by the runner's timeout (which
            # revokes the token: the last checkpoints fail); the runner invokes again.
            if in_handler[-1] > invocation_timeout - 5:
                timed_out.append(error)
            raise error
        return out

    try:
        # No Lambda client in this process: it would load the whole Lambda service model
        # (about 11 MiB) into the RSS measured for the SDK; the runner's API over urllib.
        async with InvokeEndpoint({"map": handle}) as endpoint:
            for i in range(repeat + 1):  # the first run is a warm-up at WARM_UP_ITEMS items
                size = WARM_UP_ITEMS if i == 0 else n
                if i == 1:
                    child.start_measuring()
                endpoint.invocations.clear()
                endpoint.errors.clear()
                in_handler.clear()
                timed_out.clear()
                child.before_run()
                runner_cpu = _cpu_seconds(runner_pid)
                started = time.perf_counter()
                arn = await asyncio.to_thread(
                    runner.start_execution,
                    "map",
                    {"n": size},
                    lambda_endpoint=endpoint.url,
                    timeout_seconds=int(limit),
                )
                # Poll the runner only once the handler has answered (no competing load).
                try:
                    async with asyncio.timeout(limit):
                        while not _finished(endpoint.invocations):
                            if fatal := [e for _, e in endpoint.errors if e not in timed_out]:
                                raise RuntimeError(
                                    f"the handler failed after {time.perf_counter() - started:.1f}"
                                    f" s: {fatal[-1]!r}"
                                )
                            endpoint.answered.clear()
                            await endpoint.answered.wait()
                except TimeoutError:
                    elapsed = time.perf_counter() - started
                    raise RuntimeError(f"no answer after {elapsed:.0f} s") from None
                elapsed = time.perf_counter() - started
                described = await described_when_terminal(runner, arn)
                if described["Status"] != "SUCCEEDED" or (
                    json.loads(described["Result"]) != _expected(size)
                ):
                    raise RuntimeError(f"execution ended {described}")
                if i > 0:
                    invocations = len(endpoint.invocations) + len(endpoint.errors)
                    runner_cpu = _cpu_seconds(runner_pid) - runner_cpu
                    child.record(
                        elapsed, invocations, sum(in_handler), len(endpoint.errors), runner_cpu
                    )
    finally:
        await client.aclose()
        runner.stop()


def _finished(invocations: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> bool:
    return bool(invocations) and invocations[-1][2].get("Status") in ("SUCCEEDED", "FAILED")


def child_main(
    n: int, backend: str, repeat: int, limit: float, invocation_timeout: int = INVOCATION_TIMEOUT_S
) -> dict[str, Any]:
    """Measure one (size, backend) in this process; the figures as a JSON-able dict."""
    child = Child()
    try:
        if backend == "memory":
            asyncio.run(run_memory(n, repeat, child))
        else:
            asyncio.run(run_loopback(n, repeat, limit, child, invocation_timeout))
    except Exception as exc:  # reported in the table, with whatever runs finished
        child.error = str(exc) or repr(exc)
    return {
        "backend": backend,
        "n": n,
        "repeat": repeat,
        "runs": child.runs,
        "error": child.error,
        "threads_at_start": child.threads_at_start,
        "peak_threads": _peak_threads,
        "peak_thread_names": _peak_names,
        "body_threads": len(_body_threads),
        "baseline_rss_mib": child.baseline_rss,
        "peak_rss_mib": _rss_peak_mib(),
        "runner_up": child.runner_up,
    }


# -- the parent: one child per (size, backend), then the table -----------------------------


def run_child(
    n: int, backend: str, repeat: int, limit: float, invocation_timeout: int
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(n), backend]
    cmd += ["--repeat", str(repeat), "--timeout", str(limit)]
    cmd += ["--invocation-timeout", str(invocation_timeout)]
    print(f"... {backend}, {n:,} items, best of {repeat}", file=sys.stderr, flush=True)
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=(repeat + 1) * limit + 120, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{backend} {n} failed (exit {done.returncode}):\n{done.stderr}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def _invocations(run: dict[str, Any]) -> str:
    timed_out = run.get("timed_out", 0)
    return f"{run['invocations']} ({timed_out} timed out)" if timed_out else str(run["invocations"])


def _best(figures: dict[str, Any]) -> dict[str, Any] | None:
    runs: list[dict[str, Any]] = figures["runs"]
    return min(runs, key=lambda run: run["wall"]) if runs else None


def main(args: argparse.Namespace) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = [b.strip() for b in args.backends.split(",")]
    for backend in backends:
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    results: list[dict[str, Any]] = []
    for backend in backends:
        repeat = args.loopback_repeat if backend == "loopback" else args.repeat
        for n in sizes:
            results.append(run_child(n, backend, repeat, args.timeout, args.invocation_timeout))

    print(f"python {sys.version.split()[0]}; ctx.map, one async step per item; fresh process each")
    header = (
        "backend", "items", "wall s", "µs/item", "handler s", "ckpt calls", "ckpt wait s",
        "ops back", "runner cpu s", "sdk cpu s", "gc s (full)", "invocations", "threads",
        "body thr", "RSS MiB", "RSS base", "best of",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [header]
    errors: list[str] = []
    for r in results:
        best = _best(r)
        if r["error"]:
            errors.append(f"{r['backend']}, {r['n']:,} items: {r['error']}")
        if best is None:
            rows.append((r["backend"], f"{r['n']:,}", "did not finish (below)",
                         *[""] * (len(header) - 3)))  # fmt: skip
            continue
        wall = best["wall"]
        handler = "-" if best["handler"] is None else f"{best['handler']:.3f}"
        rows.append(
            (r["backend"], f"{r['n']:,}", f"{wall:.3f}", f"{wall / r['n'] * US:.1f}", handler,
             str(best["checkpoints"]), f"{best['checkpoint_seconds']:.3f}", str(best["ops_back"]),
             "-" if best["runner_cpu"] is None else f"{best['runner_cpu']:.2f}",
             f"{best['sdk_cpu']:.2f}",
             f"{best['gc_seconds']:.3f} ({best['gc_full']})", _invocations(best),
             f"{r['peak_threads']} (of {r['threads_at_start']})", str(r["body_threads"]),
             f"{r['peak_rss_mib']:.1f}", f"{r['baseline_rss_mib']:.1f}",
             f"{len(r['runs'])}")
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    for note in (
        "handler s: time inside the handler (loopback); ckpt wait s: awaiting checkpoint",
        "answers (a loopback round trip includes aiobotocore's encoding and parsing); ops back:",
        "operations in checkpoint responses; runner cpu s: CPU time of the dex-local-runner",
        "process during the run; sdk cpu s: this process's CPU time during the run; gc s (full):",
        "cyclic GC time (full collections); threads: peak",
        "active_count (at process start); body thr: threads that ran item/step bodies; RSS MiB:",
        "peak ru_maxrss of the child; RSS base: resident after imports and a warm-up run.",
        "asyncio_0 is the loop's default executor: this script's blocking",
        "start-durable-execution call to the runner (asyncio.to_thread), not the SDK's.",
    ):
        print(note)
    for error in errors:
        print(f"!! {error}")

    print("targets:")
    for backend in backends:
        mine = [r for r in results if r["backend"] == backend]
        one_thread = all(r["body_threads"] == 1 for r in mine)
        extra = {
            name for r in mine if r["peak_threads"] > r["threads_at_start"]
            for name in r["peak_thread_names"]
        }  # fmt: skip
        print(
            f"  {backend:8} one orchestration thread: {'yes' if one_thread else 'NO'}; "
            f"threads at peak: {', '.join(sorted(extra)) or 'MainThread'}"
        )
        for r in mine:
            if r["n"] >= 10_000 and _best(r) is not None:
                ok = r["peak_rss_mib"] < RSS_TARGET_MIB
                print(
                    f"  {backend:8} peak RSS at {r['n']:,} items: {r['peak_rss_mib']:.1f} MiB "
                    f"(target < {RSS_TARGET_MIB}): {'ok' if ok else 'MISSED'}"
                )
        done = [(r["n"], best) for r in mine if (best := _best(r)) is not None]
        if len(done) < 2:
            continue
        (small, first), (large, last) = done[0], done[-1]
        parts: list[tuple[str, Callable[[dict[str, Any]], float]]] = [
            ("µs/item", lambda run: float(run["wall"])),
            ("  without GC time", lambda run: float(run["wall"] - run["gc_seconds"])),
            ("  this process's CPU time", lambda run: float(run["sdk_cpu"])),
        ]
        if backend == "loopback":
            parts.append(
                ("  in the handler, outside checkpoint waits",
                 lambda run: float(run["handler"] - run["checkpoint_seconds"]))
            )  # fmt: skip
        for label, seconds in parts:
            per_small, per_large = seconds(first) / small * US, seconds(last) / large * US
            ratio = per_large / per_small
            verdict = "linear" if ratio <= LINEAR_RATIO else "NOT linear"
            print(
                f"  {backend:8} {label}: {per_small:.1f} at {small:,}, {per_large:.1f} at "
                f"{large:,}: ratio {ratio:.2f} (target <= {LINEAR_RATIO}): {verdict}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loopback-repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--invocation-timeout", type=int, default=INVOCATION_TIMEOUT_S)
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = child_main(
            int(args.child[0]), args.child[1], args.repeat, args.timeout, args.invocation_timeout
        )
        print(json.dumps(figures))
    else:
        main(args)
