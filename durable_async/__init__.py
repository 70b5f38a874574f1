"""durable_async: an asyncio-native SDK for AWS Lambda durable functions."""

from durable_async._client.aiobotocore import AioBotocoreClient
from durable_async._client.base import DurableExecutionClient
from durable_async._config import StepConfig, StepSemantics
from durable_async._context import DurableContext, StepContext, current_context
from durable_async._duration import Duration
from durable_async._entry import DurableHandler, durable_execution
from durable_async._errors import (
    BackendError,
    CheckpointError,
    DurableError,
    DurableOperationError,
    ExecutionStateError,
    InvalidEventError,
    NonDeterministicExecutionError,
    PayloadTooLargeError,
    SerDesError,
    StepError,
    StepInterruptedError,
    ValidationError,
)
from durable_async._logging import DurableLogFilter, DurableLogger
from durable_async._retry import (
    JitterStrategy,
    LinearRetryStrategyConfig,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    create_linear_retry_strategy,
    create_retry_strategy,
)
from durable_async._serdes import (
    ExtendedTypeSerDes,
    JsonSerDes,
    PassThroughSerDes,
    SerDes,
    SerDesContext,
)

__all__ = [
    "AioBotocoreClient",
    "BackendError",
    "CheckpointError",
    "DurableContext",
    "DurableError",
    "DurableExecutionClient",
    "DurableHandler",
    "DurableLogFilter",
    "DurableLogger",
    "DurableOperationError",
    "Duration",
    "ExecutionStateError",
    "ExtendedTypeSerDes",
    "InvalidEventError",
    "JitterStrategy",
    "JsonSerDes",
    "LinearRetryStrategyConfig",
    "NonDeterministicExecutionError",
    "PassThroughSerDes",
    "PayloadTooLargeError",
    "RetryDecision",
    "RetryPresets",
    "RetryStrategyConfig",
    "SerDes",
    "SerDesContext",
    "SerDesError",
    "StepConfig",
    "StepContext",
    "StepError",
    "StepInterruptedError",
    "StepSemantics",
    "ValidationError",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "current_context",
    "durable_execution",
]
