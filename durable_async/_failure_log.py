"""Failure logs: what an operator sees when user code raises inside a durable operation.

A failed attempt that will be retried is a WARNING (the error's type and message, the
attempt, the delay before the next one); an operation that gives up, and an execution that
fails, are an ERROR with the traceback. Records go to the ``durable_async.failures`` logger
and carry the durable fields (``executionArn``, ``operationId``, ``operationName``,
``attempt``), so Lambda's JSON log format shows them as top-level fields; they propagate to
the root logger, where Lambda's runtime prints WARNING and above by default, and Python's
last-resort handler does when nothing is configured. Payloads are never logged, and neither
are callback IDs.

These records are emitted only when the failure happens, never while replaying it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType

from durable_async._error_wire import STEP_INTERRUPTED_TYPE, qualified_type
from durable_async._errors import BackendError, DurableOperationError, StepInterruptedError

logger = logging.getLogger("durable_async.failures")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]


def _label(kind: str, name: str | None, operation_id: str) -> str:
    return f"{kind} {name!r}" if name else f"{kind} {operation_id}"


def _type(error: BaseException) -> str:
    if isinstance(error, DurableOperationError) and error.error_type:
        return error.error_type
    if isinstance(error, StepInterruptedError):
        return STEP_INTERRUPTED_TYPE  # what the step records for it
    return qualified_type(error)


def _message(error: BaseException) -> str:
    if isinstance(error, DurableOperationError):
        return error.message or ""
    return str(error)


def _traceback(error: BaseException) -> ExcInfo | None:
    """The traceback worth printing: the user's, from their first frame on.

    The SDK's frames that called the user's code are left out (as in the recorded stack
    trace). A rebuilt operation error has no traceback of its own (its origin was logged
    where it failed), and a backend failure's is the SDK's and aiobotocore's (the batcher
    logged it where it happened), so neither gets one.
    """
    if isinstance(error, DurableOperationError | BackendError):
        return None
    from durable_async._stack import user_traceback

    tb = user_traceback(error)
    return None if tb is None else (type(error), error, tb)


def attempt_failed(
    kind: str,
    name: str | None,
    operation_id: str,
    fields: Mapping[str, object],
    error: BaseException,
    attempt: int,
    delay_seconds: int,
) -> None:
    """Log an attempt that raised and will be retried after ``delay_seconds``."""
    if not logger.isEnabledFor(logging.WARNING):
        return
    logger.warning(
        "%s attempt %d failed with %s: %s; retrying in %d s",
        _label(kind, name, operation_id),
        attempt,
        _type(error),
        _message(error),
        delay_seconds,
        extra=dict(fields),
    )


def operation_failed(
    kind: str,
    name: str | None,
    operation_id: str,
    fields: Mapping[str, object],
    error: BaseException,
    attempts: int | None = None,
) -> None:
    """Log an operation that failed for good, with the traceback of its user code."""
    if not logger.isEnabledFor(logging.ERROR):
        return
    after = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    logger.error(
        "%s failed%s with %s: %s",
        _label(kind, name, operation_id),
        after,
        _type(error),
        _message(error),
        exc_info=_traceback(error),
        extra=dict(fields),
    )


def execution_failed(arn: str, error: BaseException) -> None:
    """Log an execution that ends FAILED (its handler raised)."""
    if not logger.isEnabledFor(logging.ERROR):
        return
    logger.error(
        "execution failed with %s: %s",
        _type(error),
        _message(error),
        exc_info=_traceback(error),
        extra={"executionArn": arn},
    )
