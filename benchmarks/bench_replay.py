"""Replay cost per recorded operation: ``python benchmarks/bench_replay.py``.

The workload of ``compare.py``'s "replay N ops + 1 step": an invocation whose event holds
``N`` succeeded steps (and the EXECUTION operation) runs a handler that replays them and
runs one new step, through the synchronous entry point against a zero-latency in-process
API. Prints the best of ``--repeat`` runs per size, in µs per recorded operation, end to
end (decoding the event's state included), and how many full (generation 2) garbage
collections ran inside the measured invocations (counted with ``gc.callbacks``).
``--profile N`` prints cProfile's top functions of one replay of ``N`` operations.
``--cold-ids`` empties the process's cache of root operation IDs before every run, as in
the first replay of a fresh process (a warm process has them from earlier invocations).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))

import _common as c
import sdk_durable_async as sdk

from durable_async import _identity, durable_execution


def replay_event(n: int) -> Any:
    """An invocation event holding ``n`` succeeded steps of ``replay_body``."""
    recorder = c.FakeLambdaApi(record=True)
    sdk._invoke(sdk.replay_body, c.execution_event({"n": n}), recorder)
    return c.execution_event({"n": n}, c.history(recorder.updates, n))


def measure(n: int, repeat: int, cold_ids: bool = False) -> tuple[float, float, int]:
    """Best wall and CPU seconds of a replay invocation of ``n`` operations; full GCs seen.

    CPU time (of the thread running the invocation: the SDK runs it on the loop's thread)
    moves less than wall time on a shared machine.
    """
    event = replay_event(n)
    handler = durable_execution(client=sdk.FakeApiClient(c.FakeLambdaApi()))(sdk.replay_body)
    full = 0

    def count(phase: str, info: dict[str, int]) -> None:
        nonlocal full
        if phase == "start" and info["generation"] == 2:
            full += 1

    best = best_cpu = float("inf")
    expected = sum(range(1, n + 2))
    for _ in range(repeat):
        if cold_ids:
            _identity._ROOT_IDS.clear()
        gc.collect()
        gc.callbacks.append(count)
        try:
            started, started_cpu = time.perf_counter(), time.thread_time()
            out = handler(event, c.FakeLambdaContext())
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - started_cpu
        finally:
            gc.callbacks.remove(count)
        if out.get("Result") != str(expected):
            raise RuntimeError(f"replay of {n} returned {out}")
        best, best_cpu = min(best, elapsed), min(best_cpu, cpu)
    return best, best_cpu, full


def profile(n: int) -> None:
    event = replay_event(n)
    handler = durable_execution(client=sdk.FakeApiClient(c.FakeLambdaApi()))(sdk.replay_body)
    handler(event, c.FakeLambdaContext())
    profiler = cProfile.Profile()
    profiler.enable()
    handler(event, c.FakeLambdaContext())
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,3000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--cold-ids", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
        return
    measure(50, 3)  # warm-up
    for n in (int(size) for size in args.sizes.split(",")):
        best, cpu, full = measure(n, args.repeat, args.cold_ids)
        print(
            f"replay {n:>5} ops + 1 step: {best / n * 1e6:6.2f} µs/op wall "
            f"({best * 1e3:.2f} ms), {cpu / n * 1e6:6.2f} µs/op CPU; "
            f"full GCs in {args.repeat} runs: {full}"
        )


if __name__ == "__main__":
    main()
