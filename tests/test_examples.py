"""The examples run as documented, so the documentation cannot rot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_order_workflow_retries_and_finishes() -> None:
    outcome: dict[str, Any] = await load("order_workflow").main()
    assert outcome == {
        "status": "SUCCEEDED",
        "result": {
            "order": "o-1",
            "payment": "charged 42",
            "stock": ["reserved book", "reserved lamp"],
        },
    }


@pytest.mark.anyio
async def test_human_approval_publishes_after_the_callback() -> None:
    assert await load("human_approval").main() == "published q3-report.pdf"


@pytest.mark.anyio
async def test_trip_saga_compensates_and_notifies_once_after_the_wait() -> None:
    assert await load("trip_saga").main() == [
        "SUCCEEDED payment-1: reserve Lisbon; charge visa; notify ana",
        "FAILED card declined: reserve Lisbon; charge declined; cancel hotel-lisbon; notify ana",
    ]
