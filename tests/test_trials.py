"""``benchmarks/trials.py`` in CI: a bounded number of seeded fault trials, all clean.

The full run (``--trials 1000``) and the soak (``--soak``, 10,000 trials) are on demand.
``DURABLE_TRIALS`` sets the number run here (default 40).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from trials import main, report, run_trials


def test_seeded_fault_trials_lose_nothing_and_repeat_no_at_most_once_attempt() -> None:
    tally = run_trials(int(os.environ.get("DURABLE_TRIALS", "40")), seed=11)
    assert tally.problems == [], report(tally, 0) + "\n" + "\n".join(tally.problems[:5])
    assert tally.crashes > 0, "the trials injected no crash"
    assert all(count == 0 for count in tally.failures().values())


def test_the_trial_runner_prints_every_figure_and_exits_zero_when_clean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--trials", "3", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    for figure in (
        "trials: 3",
        "faults injected: crash_before_send",
        "crashes:",
        "lost completions: 0",
        "duplicated at-most-once attempts: 0",
        "wrong results: 0",
        "unexpected errors: 0",
    ):
        assert figure in printed
