"""Run durable handlers locally: an in-memory backend, a time-skipping runner, a fake context.

The fake service lives here, not beside the real transport: it is test infrastructure.
"""

from durable_async._wire.enums import InvocationStatus
from durable_async._wire.models import ErrorObject
from durable_async.testing._assertions import (
    assert_failed,
    assert_operation,
    assert_operation_names,
    assert_succeeded,
)
from durable_async.testing._clock import RealClock, VirtualClock
from durable_async.testing._history import (
    History,
    HistoryFormatError,
    HistoryOperation,
    InvocationRecord,
)
from durable_async.testing._memory import MemoryBackend, MemoryExecution
from durable_async.testing._replayer import ReplayOutcome, replay
from durable_async.testing._runner import ExecutionResult, FakeLambdaContext, LocalRunner
from durable_async.testing._sqlite import SqliteBackend, StoreConflictError, StoreError

__all__ = [
    "ErrorObject",
    "ExecutionResult",
    "FakeLambdaContext",
    "History",
    "HistoryFormatError",
    "HistoryOperation",
    "InvocationRecord",
    "InvocationStatus",
    "LocalRunner",
    "MemoryBackend",
    "MemoryExecution",
    "RealClock",
    "ReplayOutcome",
    "SqliteBackend",
    "StoreConflictError",
    "StoreError",
    "VirtualClock",
    "assert_failed",
    "assert_operation",
    "assert_operation_names",
    "assert_succeeded",
    "replay",
]
