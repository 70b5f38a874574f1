"""Seeded fault trials: ``python benchmarks/trials.py --trials N [--seed S] [--soak]``.

Each trial draws a random workflow (steps async and plain, at-most- and at-least-once,
failing and retried; waits, child contexts, gathers, callbacks, maps, parallels, races,
invokes, wait_for_callback, wait_for_condition), a fault plan (crashes that drop a
checkpoint or lose its answer, throttling, revoked tokens, slow answers), a page size (2
makes the SDK page through its state) and a scheduling seed, runs the workflow to its
end through ``LocalRunner`` on a shuffled loop (half the trials with an eager task
factory, on 3.12+), and checks it against the reference interpreter
(``tests/random_workflows.py``). One trial in ten changes the workflow after its first
invocation and expects ``NonDeterministicExecutionError``.

Prints the figures; exits 1 if any of the failure counts is not zero. ``--soak`` runs
at least 10,000 trials. ``tests/test_trials.py`` runs a bounded number in CI.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from random_workflows import (
    FAULT_KINDS,
    RandomChooser,
    Tally,
    fault_plan,
    generate,
    run_trial,
)

SOAK_TRIALS = 10_000


def run_trials(trials: int, seed: int) -> Tally:
    """Run ``trials`` trials from ``seed``; trial ``i`` is reproducible from (seed, i)."""
    tally = Tally()
    for index in range(trials):
        rng = random.Random(f"{seed}:{index}")
        choose = RandomChooser(rng)
        workflow = generate(choose)
        plan = fault_plan(choose)
        before = len(tally.problems)
        run_trial(
            workflow,
            plan,
            tally,
            seed=rng.getrandbits(32),
            eager=rng.random() < 0.5,
            mutate=rng.random() < 0.1,
            page_size=rng.choice((1000, 2)),
        )
        if len(tally.problems) > before:
            tally.problems.append(f"^ trial {index} (seed {seed}): {workflow!r} plan {plan}")
    return tally


def report(tally: Tally, seconds: float) -> str:
    lines = [
        f"trials: {tally.trials}",
        f"invocations: {tally.invocations}",
        "faults injected: " + ", ".join(f"{kind} {tally.faults[kind]}" for kind in FAULT_KINDS),
        f"crashes: {tally.crashes}",
        f"workflows changed between invocations: {tally.nondeterminism_checked}",
    ]
    lines += [f"{name}: {count}" for name, count in tally.failures().items()]
    lines.append(f"time: {seconds:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--soak", action="store_true", help=f"at least {SOAK_TRIALS} trials")
    args = parser.parse_args(argv)
    trials = max(args.trials, SOAK_TRIALS) if args.soak else args.trials
    started = time.perf_counter()
    tally = run_trials(trials, args.seed)
    print(report(tally, time.perf_counter() - started))
    for problem in tally.problems[:20]:
        print("  " + problem[:2000])
    return 1 if any(tally.failures().values()) else 0


if __name__ == "__main__":
    gc.freeze()  # each trial's gc.collect() need not walk the imported modules again
    sys.exit(main())
