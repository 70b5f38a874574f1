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

How these errors are recorded on the wire and rebuilt from a history is
``_error_wire``'s job; this module only defines what can be raised and caught.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from durable_async._wire.models import ErrorObject


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
        # The wire names live with the recording half, which imports this module; only a
        # failed operation gets here, so the import is off the hot path.
        from durable_async._error_wire import read_error

        return read_error(cls, error)

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
    invokes again and the unfinished steps are taken up again: an at-least-once step runs
    again, an at-most-once attempt is not re-run (it fails with ``StepInterruptedError`` or
    retries per its strategy). (Ending ``PENDING`` is only valid while the service has
    something pending: a wait, a retry, a callback, an invoke.)
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
