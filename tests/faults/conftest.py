"""Fake AWS settings for every party of the fault tests (the runner is the session's)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _aws_env(fake_aws_env: None) -> None:
    """Every fault test talks to the runner, or to the proxy before it, through aiobotocore."""
