"""Run durable handlers locally: an in-memory backend, a time-skipping runner, a fake context.

The fake service lives here, not beside the real transport: it is test infrastructure.
"""

from durable_async._wire.enums import InvocationStatus
from durable_async._wire.models import ErrorObject
from durable_async.testing._clock import RealClock, VirtualClock
from durable_async.testing._history import (
    History,
    HistoryFormatError,
    HistoryOperation,
    InvocationRecord,
)
from durable_async.testing._memory import MemoryBackend, MemoryExecution
from durable_async.testing._runner import ExecutionResult, FakeLambdaContext, LocalRunner

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
    "VirtualClock",
]
