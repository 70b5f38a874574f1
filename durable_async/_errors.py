"""The exception hierarchy: what users catch versus what the infrastructure raises.

::

    DurableError                        root of everything this SDK raises
    ├── ValidationError                 bad arguments: wait < 1 s, invalid name or subtype
    │   ├── PayloadTooLargeError        a payload over the service's per-operation limit
    │   └── InvalidEventError           the Lambda event is not a durable invocation
    ├── SerDesError                     a value could not be (de)serialized
    ├── DurableOperationError           an operation failed; users catch these
    │   ├── StepError                   a step failed for good (retries exhausted)
    │   │   └── StepInterruptedError    an at-most-once attempt was cut off by a crash
    │   ├── ChildContextError           a child context's body raised
    │   ├── BatchCompletionError        should_complete ended a map/parallel as failed
    │   ├── InvokeError                 a chained invocation failed, timed out or stopped
    │   ├── WaitForConditionError       a condition check raised or ran out of attempts
    │   └── CallbackError               a callback did not succeed
    │       ├── CallbackFailedError     the external system reported a failure
    │       ├── CallbackTimeoutError    no result (or heartbeat) in time
    │       └── CallbackSubmitterError  wait_for_callback's submitter failed
    ├── NonDeterministicExecutionError  replay met a different operation than recorded
    ├── UnawaitedOperationError         an operation was called but never awaited
    ├── InvocationTimeoutError          Lambda's timeout came with steps still running
    └── BackendError                    the durable-execution API failed
        ├── CheckpointError             CheckpointDurableExecution failed
        ├── ExecutionStateError         GetDurableExecutionState failed
        └── CallbackSendError           SendDurableExecutionCallback* failed (callbacks.py)
            ├── CallbackNotFoundError   no such callback
            └── CallbackClosedError     the callback already completed or timed out

Suspension (the invocation must end and the service re-invoke later) is not an
exception users can see: it is a private ``BaseException`` that ``except Exception``
does not catch.

On the wire, the SDK's own errors are recorded under the names AWS's Python SDK uses
(``aws_durable_execution_sdk_python.exceptions.StepError``; ``CallbackFailedError`` is its
``CallbackExternalError``), and both those names and ``durable_async.*`` are read back, so
either SDK can replay the other's histories with the same typed errors. User exceptions are
recorded as ``module.QualifiedName`` (builtins bare), as AWS's SDK does.
"""

from __future__ import annotations

import json
from typing import ClassVar, TypeVar

from durable_async._wire.models import ErrorObject

OperationErrorT = TypeVar("OperationErrorT", bound="DurableOperationError")


class DurableError(Exception):
    """Raised for every failure this SDK reports; catch it to handle them all."""

    __module__ = "durable_async"


class ValidationError(DurableError):
    """Raised when an operation is called with arguments the service would reject."""

    __module__ = "durable_async"


class PayloadTooLargeError(ValidationError):
    """Raised when a serialized payload exceeds what the service stores for it."""

    __module__ = "durable_async"

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size} bytes of UTF-8; the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class InvalidEventError(ValidationError):
    """Raised when the handler gets an event that is not a durable invocation input."""

    __module__ = "durable_async"


class SerDesError(DurableError):
    """Raised when a value cannot be serialized or deserialized."""

    __module__ = "durable_async"


class DurableOperationError(DurableError):
    """Raised when a durable operation failed; carries the recorded error's fields.

    The same error is raised on the first run and on every replay, rebuilt from what was
    checkpointed, so code that handles it behaves identically in both.
    """

    __module__ = "durable_async"

    def __init__(
        self,
        message: str | None = None,
        *,
        error_type: str | None = None,
        data: str | None = None,
        stack_trace: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.data = data
        self.stack_trace = stack_trace

    @classmethod
    def from_error_object(cls, error: ErrorObject | None) -> DurableOperationError:
        """Rebuild the error recorded for an operation, as the most specific known class."""
        error = error or ErrorObject()
        target = _SPECIFIC.get(error.type or "", cls)
        if not issubclass(target, cls):
            target = cls
        return target(
            error.message,
            error_type=error.type,
            data=error.data,
            stack_trace=error.stack_trace,
        )

    def __str__(self) -> str:
        kind = f"{self.error_type}: " if self.error_type else ""
        return f"{kind}{self.message or ''}"


class BatchCompletionError(DurableOperationError):
    """Raised by ``BatchResult.throw_if_error`` when ``should_complete`` ended it as failed."""

    __module__ = "durable_async"


class StepError(DurableOperationError):
    """Raised when a step failed and its retry strategy gave up."""

    __module__ = "durable_async"


class StepInterruptedError(StepError):
    """Raised when an at-most-once step attempt was interrupted and not retried."""

    __module__ = "durable_async"


class ChildContextError(DurableOperationError):
    """Raised when a child context's body raised; ``__cause__`` rebuilds the inner error."""

    __module__ = "durable_async"


class InvokeError(DurableOperationError):
    """Raised when a chained invocation failed, timed out or was stopped."""

    __module__ = "durable_async"


class WaitForConditionError(DurableOperationError):
    """Raised when a condition check raised or the strategy ran out of attempts."""

    __module__ = "durable_async"


class CallbackError(DurableOperationError):
    """Raised when a callback did not deliver a result."""

    __module__ = "durable_async"


class CallbackFailedError(CallbackError):
    """Raised when the external system completed the callback with a failure."""

    __module__ = "durable_async"


class CallbackTimeoutError(CallbackError):
    """Raised when a callback timed out, or missed its heartbeat (``error_type`` says which)."""

    __module__ = "durable_async"


class CallbackSubmitterError(CallbackError):
    """Raised when ``wait_for_callback``'s submitter failed for good."""

    __module__ = "durable_async"


class NonDeterministicExecutionError(DurableError):
    """Raised when replay reaches an operation that differs from the recorded one.

    The handler code must issue the same operations in the same order on every replay;
    this error names what was recorded and what the code asked for.
    """

    __module__ = "durable_async"

    def __init__(self, message: str, operation_id: str | None = None) -> None:
        super().__init__(message)
        self.operation_id = operation_id


class UnawaitedOperationError(DurableError):
    """Raised when the handler ended while an operation it called was never awaited.

    ``ctx.step(f)`` without ``await`` does nothing, yet takes an operation ID; the
    execution fails instead of succeeding without the operation.
    """

    __module__ = "durable_async"


class InvocationTimeoutError(DurableError):
    """Raised when Lambda's timeout nears while steps still run and nothing else is pending.

    Queued checkpoints were sent first; the invocation fails, as a timeout would, so Lambda
    invokes again and the unfinished steps run again. (Ending ``PENDING`` is only valid
    while the service has something pending: a wait, a retry, a callback, an invoke.)
    """

    __module__ = "durable_async"


class BackendError(DurableError):
    """Raised when the durable-execution API fails.

    ``retryable`` tells whether a new invocation may succeed (throttling, 5xx, network,
    a stale checkpoint token) or whether the execution must fail (other 4xx errors).
    """

    __module__ = "durable_async"
    operation: ClassVar[str] = "durable-execution API"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        self.status_code = status_code


class CheckpointError(BackendError):
    """Raised when ``CheckpointDurableExecution`` fails."""

    __module__ = "durable_async"
    operation = "CheckpointDurableExecution"


class ExecutionStateError(BackendError):
    """Raised when ``GetDurableExecutionState`` fails."""

    __module__ = "durable_async"
    operation = "GetDurableExecutionState"


class CallbackSendError(BackendError):
    """Raised when completing, failing or heartbeating a callback fails.

    ``code`` and ``status_code`` are the service's; ``retryable`` says whether sending
    again may succeed (throttling, 5xx, network).
    """

    __module__ = "durable_async.callbacks"
    operation = "SendDurableExecutionCallback"


class CallbackNotFoundError(CallbackSendError):
    """Raised when the service knows no callback with that ID (or the ID is malformed)."""

    __module__ = "durable_async.callbacks"


class CallbackClosedError(CallbackSendError):
    """Raised when the callback already completed, timed out, or its execution ended.

    A webhook that is delivered twice gets this the second time; treat it as done.
    """

    __module__ = "durable_async.callbacks"


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
    failure = kind.from_error_object(error)
    cause = DurableOperationError.from_error_object(error)
    cause.__context__ = original
    failure.__cause__ = cause
    return failure  # type: ignore[return-value]


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
