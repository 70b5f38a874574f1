"""durable_async: an asyncio-native SDK for AWS Lambda durable functions."""

from durable_async._client.aiobotocore import AioBotocoreClient
from durable_async._client.base import DurableExecutionClient
from durable_async._config import (
    CallbackConfig,
    ChildConfig,
    InvokeConfig,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
)
from durable_async._context import DurableContext, StepContext, current_context
from durable_async._duration import Duration
from durable_async._entry import DurableHandler, durable_execution
from durable_async._errors import (
    BackendError,
    CallbackError,
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    CheckpointError,
    ChildContextError,
    DurableError,
    DurableOperationError,
    ExecutionStateError,
    InvalidEventError,
    InvocationTimeoutError,
    InvokeError,
    NonDeterministicExecutionError,
    PayloadTooLargeError,
    SerDesError,
    StepError,
    StepInterruptedError,
    UnawaitedOperationError,
    ValidationError,
    WaitForConditionError,
)
from durable_async._logging import DurableLogFilter, DurableLogger
from durable_async._operations.callback import Callback
from durable_async._operations.condition import WaitForConditionCheckContext
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
from durable_async._waits import (
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)

__all__ = [
    "AioBotocoreClient",
    "BackendError",
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackFailedError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildConfig",
    "ChildContextError",
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
    "InvocationTimeoutError",
    "InvokeConfig",
    "InvokeError",
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
    "UnawaitedOperationError",
    "ValidationError",
    "WaitForCallbackConfig",
    "WaitForConditionCheckContext",
    "WaitForConditionDecision",
    "WaitForConditionError",
    "WaitStrategyConfig",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "create_wait_strategy",
    "current_context",
    "durable_execution",
]
