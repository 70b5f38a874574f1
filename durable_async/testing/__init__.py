"""Run durable handlers locally: an in-memory backend, a time-skipping runner, a fake context."""

from durable_async._client.memory import MemoryBackend, MemoryExecution
from durable_async._wire.enums import InvocationStatus
from durable_async._wire.models import ErrorObject
from durable_async.testing._runner import ExecutionResult, FakeLambdaContext, LocalRunner

__all__ = [
    "ErrorObject",
    "ExecutionResult",
    "FakeLambdaContext",
    "InvocationStatus",
    "LocalRunner",
    "MemoryBackend",
    "MemoryExecution",
]
