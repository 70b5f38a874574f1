"""A dex-local-runner for the fault tests, and fake AWS settings for every party."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from dex_harness import FAKE_AWS_ENV, DexRunner, RunnerUnavailable, checker_python


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def dex_runner() -> Iterator[DexRunner]:
    try:
        python = checker_python()
    except RunnerUnavailable as exc:
        if os.environ.get("DURABLE_REQUIRE_RUNNER"):
            pytest.fail(f"dex-local-runner unavailable: {exc}")
        pytest.skip(f"dex-local-runner unavailable: {exc}")
    runner = DexRunner(python).start()
    try:
        yield runner
    finally:
        status = runner.stop()
        assert status == 0, f"dex_runner exited with {status}: {runner.log_tail()}"


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(key, raising=False)
