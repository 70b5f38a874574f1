"""Shared fixtures for the unit tests.

Every async test runs on plain asyncio and, where Python has it (3.12+), on asyncio with
``eager_task_factory``: eager tasks start running inside ``create_task``, which exposes code
whose operation IDs or batching depend on when tasks first run.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from support import ListHandler

if TYPE_CHECKING:
    from dex_harness import DexRunner


def _eager_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    return loop


_BACKENDS: list[Any] = [pytest.param(("asyncio", {}), id="asyncio")]
if sys.version_info >= (3, 12):
    _BACKENDS.append(pytest.param(("asyncio", {"loop_factory": _eager_loop}), id="eager"))


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def sdk_logger(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, ListHandler]]:
    """A dedicated logger for ``ctx.logger`` with a list handler, not propagating to root."""
    logger = logging.getLogger(f"tests.sdk.{request.node.nodeid}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


@pytest.fixture(scope="session")
def dex_runner() -> Iterator[DexRunner]:
    """One dex-local-runner for the session's runner tests; each test starts its own executions.

    Skips the test when the conformance checker (which holds the runner) is not beside the
    project.
    """
    from dex_harness import running_runner

    yield from running_runner()


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and a region for aiobotocore, and no profile or endpoint of the user's."""
    from dex_harness import FAKE_AWS_ENV

    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(key, raising=False)
