"""How errors are recorded on the wire (``ErrorObject``) and rebuilt from a history.

The SDK's own errors are recorded under the names AWS's Python SDK uses
(``aws_durable_execution_sdk_python.exceptions.StepError``; ``CallbackFailedError`` is its
``CallbackExternalError``), and both those names and ``durable_async.*`` are read back, so
either SDK can replay the other's histories with the same typed errors. User exceptions are
recorded as ``module.QualifiedName`` (builtins bare), as AWS's SDK does. What is recorded is
cut to fit the service's size limit. The classes themselves live in ``_errors``.
"""

from __future__ import annotations

import json
from typing import TypeVar

from durable_async._errors import (
    BatchCompletionError,
    CallbackError,
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    CheckpointError,
    ChildContextError,
    DurableOperationError,
    ExecutionStateError,
    InvokeError,
    NonDeterministicExecutionError,
    PayloadTooLargeError,
    SerDesError,
    StepError,
    StepInterruptedError,
    ValidationError,
    WaitForConditionError,
)
from durable_async._wire.models import ErrorObject

OperationErrorT = TypeVar("OperationErrorT", bound=DurableOperationError)


def read_error(kind: type[OperationErrorT], error: ErrorObject | None) -> OperationErrorT:
    """The recorded ``error`` as the most specific known subclass of ``kind``, else ``kind``.

    ``DurableOperationError.from_error_object`` is this; the name recorded picks the class,
    so a history written by AWS's SDK rebuilds the same typed errors.
    """
    error = error or ErrorObject()
    target: type[OperationErrorT] = _SPECIFIC.get(error.type or "", kind)  # type: ignore[assignment]
    if not issubclass(target, kind):
        target = kind
    return target(
        error.message,
        error_type=error.type,
        data=error.data,
        stack_trace=error.stack_trace,
    )


def rebuild_failure(
    kind: type[OperationErrorT], error: ErrorObject | None, original: BaseException | None = None
) -> OperationErrorT | SerDesError:
    """The ``kind`` error for a recorded failure, identical on the first run and on replay.

    Its ``__cause__`` is the inner error rebuilt from the record (so ``cause.error_type``
    and ``cause.message`` read the same on every run); on the first run the original
    exception, traceback and all, hangs off that cause as its ``__context__``. A recorded
    serialization failure is raised as ``SerDesError`` whatever the operation, as AWS's
    SDK does.
    """
    if error is not None and error.type in _SERDES_TYPES:
        serdes_failure = SerDesError(error.message or "serialization failed")
        serdes_failure.__cause__ = original
        return serdes_failure
    failure = read_error(kind, error)
    cause = read_error(DurableOperationError, error)
    cause.__context__ = original
    failure.__cause__ = cause
    return failure


def qualified_type(error: BaseException) -> str:
    """The wire ``ErrorType`` of an exception (see the module docstring)."""
    cls = type(error)
    wire = _WIRE_NAMES.get(cls)
    if wire is not None:
        return wire
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_object(error: BaseException) -> ErrorObject:
    """The ``ErrorObject`` recorded for an exception that escaped user code.

    An operation error passes on the stack recorded where it began; any other exception
    records its own traceback (see ``_stack``), so a failure read from the history points
    at the line that raised it.
    """
    if isinstance(error, DurableOperationError):
        recorded = ErrorObject(
            message=error.message,
            type=qualified_type(error),
            data=error.data,
            stack_trace=error.stack_trace,
        )
    else:
        from durable_async._stack import stack_lines

        recorded = ErrorObject(
            message=str(error), type=qualified_type(error), stack_trace=stack_lines(error)
        )
    return fit_error(recorded)


#: The service rejects an error object whose JSON exceeds 32 KiB; stay clear of it.
ERROR_LIMIT_BYTES = 32 * 1024 - 512
_TRUNCATED = " ... [truncated]"


def _json_size(text: str | None) -> int:
    return 0 if text is None else len(json.dumps(text))


def _clip(text: str | None, budget: int) -> str | None:
    """``text`` cut (and marked) so that its JSON takes at most ``budget`` bytes."""
    if text is None or _json_size(text) <= budget:
        return text
    keep = max(0, budget - len(_TRUNCATED) - 2)
    while keep and _json_size(text[:keep] + _TRUNCATED) > budget:
        keep = keep * 4 // 5  # escaped characters take up to six bytes each
    return text[:keep] + _TRUNCATED


def fit_error(error: ErrorObject, limit: int = ERROR_LIMIT_BYTES) -> ErrorObject:
    """``error`` cut to fit the service's limit, keeping what matters most.

    Half the room goes to the message, a quarter to data, the rest to the innermost
    stack-trace lines. A huge message (an HTML error page in an exception) would otherwise
    make the service reject the checkpoint, turning a retryable step failure into a failed
    execution.
    """
    lines = error.stack_trace or ()
    fields = (error.message, error.type, error.data)
    if 120 + sum(map(_json_size, (*fields, *lines))) + 2 * len(lines) <= limit:
        return error
    message = _clip(error.message, limit // 2)
    data = _clip(error.data, limit // 4)
    used = 120 + _json_size(message) + _json_size(error.type) + _json_size(data)
    kept: list[str] = []
    for line in reversed(lines):  # the raising frame is last: keep the innermost frames
        cost = _json_size(line) + 2  # and its ", " separator
        if used + cost > limit:
            break
        kept.append(line)
        used += cost
    return ErrorObject(message, error.type, data, tuple(reversed(kept)) or None)


_AWS = "aws_durable_execution_sdk_python.exceptions."

#: Wire names of the SDK's own errors: AWS's names, so histories are interchangeable.
_WIRE_NAMES: dict[type[BaseException], str] = {
    StepError: _AWS + "StepError",
    # Raised as a step's failure it is AWS's StepError; the interruption itself is recorded
    # on the step as STEP_INTERRUPTED_TYPE (see below).
    StepInterruptedError: _AWS + "StepError",
    ChildContextError: _AWS + "ChildContextError",
    BatchCompletionError: "aws_durable_execution_sdk_python.concurrency.models."
    + "BatchCompletionError",
    InvokeError: _AWS + "InvokeError",
    WaitForConditionError: _AWS + "WaitForConditionError",
    CallbackError: _AWS + "CallbackError",
    CallbackFailedError: _AWS + "CallbackExternalError",
    CallbackTimeoutError: _AWS + "CallbackTimeoutError",
    CallbackSubmitterError: _AWS + "CallbackSubmitterError",
    SerDesError: _AWS + "SerDesError",
    PayloadTooLargeError: _AWS + "SerDesError",
    ValidationError: _AWS + "ValidationError",
    NonDeterministicExecutionError: _AWS + "NonDeterministicExecutionError",
    CheckpointError: _AWS + "CheckpointError",
    ExecutionStateError: _AWS + "GetExecutionStateError",
}


#: The type a step records for an at-most-once attempt cut off by a crash.
STEP_INTERRUPTED_TYPE = _AWS + "StepInterruptedError"
_RECORDED_AS: dict[type[BaseException], str] = {StepInterruptedError: STEP_INTERRUPTED_TYPE}


def _read_names(*classes: type[BaseException]) -> dict[str, type[BaseException]]:
    """Both names each class may be recorded under: AWS's and ``durable_async.*``."""
    names: dict[str, type[BaseException]] = {}
    for cls in classes:
        names[f"durable_async.{cls.__qualname__}"] = cls
        names[_RECORDED_AS.get(cls) or _WIRE_NAMES[cls]] = cls
    return names


#: Recorded serialization failures, raised as ``SerDesError`` by every operation.
_SERDES_TYPES = frozenset(_read_names(SerDesError, PayloadTooLargeError))
#: Recorded step failures (a ``wait_for_callback`` submitter's, say).
STEP_ERROR_TYPES = frozenset(_read_names(StepError, StepInterruptedError))

_SPECIFIC: dict[str, type[DurableOperationError]] = {
    name: cls  # type: ignore[misc]
    for name, cls in _read_names(
        StepError,
        StepInterruptedError,
        ChildContextError,
        BatchCompletionError,
        InvokeError,
        WaitForConditionError,
        CallbackError,
        CallbackFailedError,
        CallbackTimeoutError,
        CallbackSubmitterError,
    ).items()
}
