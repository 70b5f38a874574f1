"""The README's five-minute tour works as printed: the CLI runs it, its test passes."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def tour_file(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- tour: {re.escape(name)} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"README lost the tour's {name}"
    return match.group(1)


def run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_tour_handler_runs_from_the_cli_and_its_test_passes(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(tour_file("app.py"), encoding="utf-8")
    (tmp_path / "test_app.py").write_text(tour_file("test_app.py"), encoding="utf-8")

    ran = run(
        tmp_path, "-m", "durable_async", "run", "app.py:handler", "--input",
        json.dumps({"order_id": "o-1"}), "--json",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '"done o-1: charged 42, reserved"' in ran.stdout

    tested = run(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout


def test_the_human_approval_transcript_is_what_the_cli_prints(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- transcript: human_approval -->\n```\n(.*?)```", text, re.DOTALL)
    assert match, "README lost the human-approval transcript"
    commands = re.findall(r"^\$ (.*)$", match.group(1), re.MULTILINE)
    assert [c.split()[:2] for c in commands] == [
        ["durable-async", "run"],
        ["durable-async", "callback"],
    ]
    shown_id = re.search(r"callback_id=(\w+)", match.group(1))
    assert shown_id
    examples = README.parent / "examples"
    printed = []
    real_id = None
    for command in commands:
        argv = [
            str(examples / arg.removeprefix("examples/")) if arg.startswith("examples/") else arg
            for arg in shlex.split(command)[1:]
        ]
        if real_id is not None:
            argv = [real_id if arg == shown_id.group(1) else arg for arg in argv]
        done = run(tmp_path, "-m", "durable_async", *argv)
        assert done.returncode == 0, done.stderr
        if real_id is None:
            found = re.search(r"callback_id=(\w+)", done.stdout)
            assert found, done.stdout
            real_id = found.group(1)
        printed.append(f"$ {command}\n" + done.stdout.replace(real_id, shown_id.group(1)))
    assert "".join(printed) == match.group(1)
