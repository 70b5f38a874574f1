"""durable_async: an asyncio-native SDK for AWS Lambda durable functions."""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from durable_async._client.aiobotocore import AioBotocoreClient
from durable_async._client.base import DurableExecutionClient
from durable_async._config import (
    CallbackConfig,
    ChildConfig,
    InvokeConfig,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
    StepConfig,
    StepSemantics,
    WaitForCallbackConfig,
)
from durable_async._context import DurableContext, StepContext, current_context
from durable_async._duration import Duration
from durable_async._entry import DurableHandler, durable_execution
from durable_async._errors import (
    BackendError,
    BatchCompletionError,
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
from durable_async._serdes import (
    ExtendedTypeSerDes,
    JsonSerDes,
    PassThroughSerDes,
    SerDes,
    SerDesContext,
)
from durable_async._wire.enums import OperationStatus, OperationSubType, OperationType

if _TYPE_CHECKING:
    from durable_async._batch import BatchItem, BatchItemStatus, BatchResult
    from durable_async._completion import (
        CompletionConfig,
        CompletionDecision,
        CompletionItemStatus,
        CompletionOutcome,
        CompletionReason,
        CompletionStatus,
        complete_batch,
        continue_batch,
    )
    from durable_async._operations.callback import Callback
    from durable_async._operations.condition import WaitForConditionCheckContext
    from durable_async._plugin_loading import (
        PLUGIN_ENTRY_POINT_GROUP,
        PLUGIN_ENVIRONMENT_VARIABLE,
        PluginLoadError,
    )
    from durable_async._plugin_types import (
        DurableInstrumentationPlugin,
        DurableInstrumentationPluginFactory,
        InvocationEndInfo,
        InvocationStartInfo,
        InvocationStatus,
        OperationChangeInfo,
        OperationEndInfo,
        OperationInfo,
        OperationStartInfo,
        UserFunctionEndInfo,
        UserFunctionOutcome,
        UserFunctionStartInfo,
    )
    from durable_async._retry import (
        JitterStrategy,
        LinearRetryStrategyConfig,
        RetryDecision,
        RetryPresets,
        RetryStrategyConfig,
        create_linear_retry_strategy,
        create_retry_strategy,
    )
    from durable_async._waits import (
        WaitForConditionDecision,
        WaitStrategyConfig,
        create_wait_strategy,
    )


#: Public names imported on first use, by module: a cold start that only runs steps needs
#: none of them (instrumentation, callbacks, wait_for_condition, map/parallel results and
#: policies, retry strategies).
_LAZY_MODULES = {
    "durable_async._batch": ("BatchItem", "BatchItemStatus", "BatchResult"),
    "durable_async._completion": (
        "CompletionConfig",
        "CompletionDecision",
        "CompletionItemStatus",
        "CompletionOutcome",
        "CompletionReason",
        "CompletionStatus",
        "complete_batch",
        "continue_batch",
    ),
    "durable_async._operations.callback": ("Callback",),
    "durable_async._operations.condition": ("WaitForConditionCheckContext",),
    "durable_async._plugin_loading": (
        "PLUGIN_ENTRY_POINT_GROUP",
        "PLUGIN_ENVIRONMENT_VARIABLE",
        "PluginLoadError",
    ),
    "durable_async._plugin_types": (
        "DurableInstrumentationPlugin",
        "DurableInstrumentationPluginFactory",
        "InvocationEndInfo",
        "InvocationStartInfo",
        "InvocationStatus",
        "OperationChangeInfo",
        "OperationEndInfo",
        "OperationInfo",
        "OperationStartInfo",
        "UserFunctionEndInfo",
        "UserFunctionOutcome",
        "UserFunctionStartInfo",
    ),
    "durable_async._retry": (
        "JitterStrategy",
        "LinearRetryStrategyConfig",
        "RetryDecision",
        "RetryPresets",
        "RetryStrategyConfig",
        "create_linear_retry_strategy",
        "create_retry_strategy",
    ),
    "durable_async._waits": (
        "WaitForConditionDecision",
        "WaitStrategyConfig",
        "create_wait_strategy",
    ),
}


def __getattr__(name: str) -> object:
    """A public name not imported above: imported now, from its module (see ``_LAZY_MODULES``).

    Every name in ``__all__`` that reaches here is one of those modules'.
    """
    if name not in __all__:
        msg = f"module 'durable_async' has no attribute {name!r}"
        raise AttributeError(msg)
    from importlib import import_module

    module = next(module for module, names in _LAZY_MODULES.items() if name in names)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PLUGIN_ENTRY_POINT_GROUP",
    "PLUGIN_ENVIRONMENT_VARIABLE",
    "DurableInstrumentationPlugin",
    "DurableInstrumentationPluginFactory",
    "InvocationEndInfo",
    "InvocationStartInfo",
    "InvocationStatus",
    "OperationChangeInfo",
    "OperationEndInfo",
    "OperationInfo",
    "OperationStartInfo",
    "PluginLoadError",
    "UserFunctionEndInfo",
    "UserFunctionOutcome",
    "UserFunctionStartInfo",
    "OperationStatus",
    "OperationSubType",
    "OperationType",
    "AioBotocoreClient",
    "BackendError",
    "BatchCompletionError",
    "BatchItem",
    "BatchItemStatus",
    "BatchResult",
    "Callback",
    "CallbackConfig",
    "CallbackError",
    "CallbackFailedError",
    "CallbackSubmitterError",
    "CallbackTimeoutError",
    "CheckpointError",
    "ChildConfig",
    "ChildContextError",
    "CompletionConfig",
    "CompletionDecision",
    "CompletionItemStatus",
    "CompletionOutcome",
    "CompletionReason",
    "CompletionStatus",
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
    "MapConfig",
    "NestingType",
    "NonDeterministicExecutionError",
    "ParallelBranch",
    "ParallelConfig",
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
    "complete_batch",
    "continue_batch",
    "create_linear_retry_strategy",
    "create_retry_strategy",
    "create_wait_strategy",
    "current_context",
    "durable_execution",
]
