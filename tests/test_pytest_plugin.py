"""The pytest plugin's fixtures, and the README's complete test file, run as users run them."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_async import DurableContext, durable_execution
from durable_async.testing import (
    LocalRunner,
    MemoryBackend,
    VirtualClock,
    assert_failed,
    assert_operation,
    assert_operation_names,
    assert_succeeded,
)

README = Path(__file__).resolve().parent.parent / "README.md"


@durable_execution
async def sleeps(event: Any, ctx: DurableContext) -> str:
    await ctx.wait(seconds=90, name="nap")
    return "rested"


@pytest.mark.anyio
async def test_the_fixtures_share_one_backend_and_clock(
    durable_runner: Callable[..., LocalRunner],
    durable_backend: MemoryBackend,
    durable_clock: VirtualClock,
) -> None:
    runner = durable_runner(sleeps)
    assert runner.backend is durable_backend
    assert durable_backend.clock is durable_clock
    began = durable_clock.now()
    result = await runner.run()
    assert_succeeded(result)
    assert (durable_clock.now() - began).total_seconds() == 90


@pytest.mark.anyio
async def test_history_assertions_show_the_tree_when_they_fail() -> None:
    result = await LocalRunner(sleeps).run()
    assert_operation(result.history, "nap", status="SUCCEEDED")
    assert_operation_names(result.history, ["nap"])
    with pytest.raises(AssertionError, match=r"(?s)expected the execution to fail.*WAIT nap"):
        assert_failed(result)
    with pytest.raises(AssertionError, match=r"(?s)'nap' is SUCCEEDED, expected FAILED.*WAIT nap"):
        assert_operation(result.history, "nap", status="FAILED")
    with pytest.raises(AssertionError, match=r"made 0 attempt\(s\), expected 1"):
        assert_operation(result.history, "nap", attempts=1)
    with pytest.raises(AssertionError, match="no operation named 'nope'"):
        assert_operation(result.history, "nope")
    with pytest.raises(AssertionError, match=r"\['nap'\] != expected \['other'\]"):
        assert_operation_names(result.history, ["other"])


def test_the_readme_test_file_passes_under_the_installed_plugin(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(
        r"<!-- testing-your-workflow:start -->\n```python\n(.*?)```\n"
        r"<!-- testing-your-workflow:end -->",
        text,
        re.DOTALL,
    )
    assert block is not None, "README lost its 'Testing your workflow' test file"
    (tmp_path / "test_order.py").write_text(block.group(1), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_order.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
