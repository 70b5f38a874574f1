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
