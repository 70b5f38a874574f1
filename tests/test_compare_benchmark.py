"""``benchmarks/compare.py``: its smoke run works, and a workload that fails is reported.

Only durable_async's side runs here (the peers' venvs are the full command's job).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from dex_harness import RunnerUnavailable, checker_python

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ROOT / "benchmarks" / "compare.py"


def _compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare", COMPARE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.runner
def test_quick_comparison_measures_every_durable_async_workload(tmp_path: Path) -> None:
    try:
        checker_python()
    except RunnerUnavailable as exc:
        pytest.skip(f"dex-local-runner unavailable: {exc}")
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, str(COMPARE), "--quick", "--sdks", "durable_async",
         "--results", str(results)],
        capture_output=True, text=True, timeout=300, check=False, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in results.read_text().splitlines() if line.startswith("| ")]
    measured = rows[1:]  # after the header
    assert len(measured) == len(_compare().workloads(quick=True))
    for row in measured:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2] != "—", f"no figure for {cells[0]}"
    assert "-X importtime" in results.read_text()


def test_a_workload_with_a_wrong_result_fails_the_run(tmp_path: Path) -> None:
    compare = _compare()
    bad = tmp_path / "sdk_bad.py"
    bad.write_text(
        "import json\n"
        "class Workloads:\n"
        "    def sequential(self, n): pass\n"
        'print(json.dumps({"seconds": 0.1, "result": -1, "calls": 1, "threads": 1,'
        ' "rss_mib": 1, "peak_rss_mib": 1}))\n'
    )
    sdk = compare.Sdk("bad", "bad", None, str(bad))
    results = compare.Results()
    args = compare.argparse.Namespace(quick=True, rounds=1, mem_rounds=1)
    compare.run_zero_latency(args, [sdk], {"bad": sys.executable}, results)
    assert results.errors
    assert all("result -1" in error for error in results.errors)
    assert not results.values
