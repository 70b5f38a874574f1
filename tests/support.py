"""Helpers shared by the unit tests (in-memory backend only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from durable_async import DurableHandler, DurableOperationError
from durable_async._wire.models import CheckpointRequest, CheckpointResponse, OperationUpdate
from durable_async.testing import FakeLambdaContext, LocalRunner, MemoryBackend


def start(backend: MemoryBackend, input_value: Any = None) -> str:
    """Create an execution on ``backend`` and return its ARN."""
    return backend.start_execution(None if input_value is None else json.dumps(input_value))


async def invoke_once(
    handler: DurableHandler[Any], backend: MemoryBackend, arn: str
) -> dict[str, Any]:
    """Run exactly one invocation of ``arn`` with the event Lambda would send now."""
    event = LocalRunner(handler, backend).event(arn)
    return await handler.invoke_async(event, FakeLambdaContext(), client=backend)


def sent_updates(backend: MemoryBackend) -> list[OperationUpdate]:
    """Every update of every checkpoint call, in the order sent."""
    return [u for call in backend.checkpoint_calls for u in call.updates]


def actions(backend: MemoryBackend) -> list[tuple[str, str, str | None]]:
    """(type, action, name) of every update sent, in order."""
    return [(u.type.value, u.action.value, u.name) for u in sent_updates(backend)]


class SignallingBackend(MemoryBackend):
    """A ``MemoryBackend`` that sets ``checkpointed`` after every checkpoint call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checkpointed = asyncio.Event()

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        try:
            return await super().checkpoint(params, logger)
        finally:
            self.checkpointed.set()


def describe(error: DurableOperationError) -> tuple[Any, ...]:
    """What a test compares of an operation error: class, message, error type, data."""
    return (type(error), error.message, error.error_type, error.data)


class ListHandler(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def every_log_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger, at every level, while the block runs."""
    root = logging.getLogger()
    handler, level = ListHandler(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def without_aws_credentials(monkeypatch: Any, tmp_path: Any) -> None:
    """A region but nowhere to find credentials: no variables, empty shared files, no IMDS.

    The SDK keeps one aiobotocore session per process, and it caches credentials once
    found: the test starts from a fresh one, as a new process would.
    """
    from durable_async._client import aiobotocore as sdk_backend

    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "config").write_text("")
    (tmp_path / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(sdk_backend, "_sdk_session", None)
