"""A dex-local-runner for the fault tests, and fake AWS settings for every party."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dex_harness import FAKE_AWS_ENV, DexRunner, running_runner


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def dex_runner() -> Iterator[DexRunner]:
    yield from running_runner()


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(key, raising=False)
