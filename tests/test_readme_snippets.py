"""README snippets marked ``<!-- snippet: NAME -->`` run as printed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def snippet(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- snippet: {name} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"no snippet {name!r} in README.md"
    return match.group(1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_invoke_async_snippet_serves_lambda_invokes_on_the_running_loop() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_invoke_async"}
    exec(compile(snippet("invoke_async"), str(README), "exec"), namespace)
    assert await namespace["main"]() == ["PENDING", "SUCCEEDED"]


def test_the_plugin_snippet_prints_the_hooks_the_readme_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_plugins"}
    exec(compile(snippet("plugins"), str(README), "exec"), namespace)
    text = README.read_text(encoding="utf-8")
    shown = re.search(r"<!-- snippet: plugins -->.*?```text\n(.*?)```", text, re.DOTALL)
    assert shown, "the README shows no output for the plugins snippet"
    assert capsys.readouterr().out == shown.group(1)
