"""What instrumentation plugins see: the hooks, their info objects, the base class.

The hook names, the info objects' fields and the ``DURABLE_EXECUTION_PLUGINS`` loading
rules follow AWS's Python SDK (``plugin.py`` / ``plugin_discovery.py`` of
aws-durable-execution-sdk-python 3.0), so a plugin written against their shape ports by
changing imports. Differences: a hook may be ``async def`` (it is awaited on the loop,
by the task whose event it reports, so a slow hook delays only that task), and a plugin
*instance* may be registered as well as a factory.

Hooks (all optional; define only what you need):

``on_invocation_start(InvocationStartInfo)``
    Before the handler runs, once per invocation.
``on_invocation_end(InvocationEndInfo)``
    After the invocation's outcome is settled and its checkpoints are sent.
``on_operation_start(OperationStartInfo)``
    When an operation begins (its START is queued) or an open one is resumed
    (``is_replayed``); a step's each attempt.
``on_operation_end(OperationEndInfo)``
    When an operation reaches a terminal status: one this invocation ended (its terminal
    checkpoint), or one another party ended (a wait that elapsed, a callback answered, a
    chained invoke that finished), either in a checkpoint response during the invocation
    or, for what ended while the execution was suspended (the invocation input's
    ``UpdatedOperationIds``), when replay first reaches it (``is_replayed`` is False), or
    as the invocation ends if replay never does (it skips a finished child context, such
    as a race whose loser ended later). An operation replayed from terminal history an
    earlier invocation saw is not reported.
``on_operation_change(OperationChangeInfo)``
    After a checkpoint response that changed some operation's status: the changed ones
    and the whole operation map (both by ID). It runs in the checkpoint flush task, so the
    next checkpoint call waits for it; keep it quick.
``on_user_function_start(UserFunctionStartInfo)`` / ``on_user_function_end(...)``
    Around each run of user code ("attempt" hooks): a step body or a condition check,
    with the 1-based attempt number, and a child context's body (map items and parallel
    branches too; attempt 1, or None when it runs again); the end has the outcome.

Operation infos carry the service's ``start_time`` / ``end_time`` and the serialized
``result`` once the service has recorded them (``None`` before that, as for a pipelined
step whose result is still in flight); attempt infos carry the wall-clock start and end of
that run of user code instead, as AWS's do.

A hook that raises is logged on ``durable_async.plugins`` and ignored: a plugin never
changes an execution's outcome. With no plugin registered the SDK does no plugin work.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from durable_async._wire.enums import OperationStatus, OperationType
from durable_async._wire.models import ErrorObject, Operation

if TYPE_CHECKING:
    from typing import Self

HOOK_NAMES = (
    "on_invocation_start",
    "on_invocation_end",
    "on_operation_start",
    "on_operation_end",
    "on_operation_change",
    "on_user_function_start",
    "on_user_function_end",
)


class InvocationStatus(enum.StrEnum):
    """How an invocation ended, as ``on_invocation_end`` reports it."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: Suspended: the execution continues in a later invocation.
    PENDING = "PENDING"
    #: The invocation raised (a retryable service error, Lambda's timeout): Lambda retries it.
    RETRY = "RETRY"


class UserFunctionOutcome(enum.StrEnum):
    """How one run of a step body ended."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: Cancelled before it finished (the invocation wound down); it runs again later.
    INCOMPLETE = "INCOMPLETE"


@attrs.frozen(kw_only=True)
class InvocationStartInfo:
    execution_arn: str
    request_id: str | None
    #: True when the execution has no recorded operation yet (besides itself).
    is_first_invocation: bool
    #: When the execution started (its EXECUTION operation's start), as AWS's SDK has it.
    execution_start_time: datetime | None = None


@attrs.frozen(kw_only=True)
class InvocationEndInfo:
    execution_arn: str
    request_id: str | None
    is_first_invocation: bool
    execution_start_time: datetime | None = None
    #: What the invocation reported to Lambda, or RETRY when it raised.
    status: InvocationStatus
    error: ErrorObject | None = None


@attrs.frozen(kw_only=True)
class OperationInfo:
    operation_id: str
    operation_type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None
    status: OperationStatus
    #: Whether the operation was recorded by an earlier invocation or attempt.
    is_replayed: bool
    attempt: int | None = None
    #: When the service recorded the operation's start and end, once it has.
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: The serialized result, once recorded.
    result: str | None = None
    #: The recorded error of an operation that failed.
    error: ErrorObject | None = None

    @classmethod
    def from_operation(cls, operation: Operation, *, is_replayed: bool = False) -> Self:
        """The info of ``operation`` as the service recorded it."""
        step = operation.step_details
        return cls(
            operation_id=operation.id,
            operation_type=operation.type,
            sub_type=operation.sub_type,
            name=operation.name,
            parent_id=operation.parent_id,
            status=operation.status,
            is_replayed=is_replayed,
            attempt=step.attempt if step is not None else None,
            start_time=operation.start_timestamp,
            end_time=operation.end_timestamp,
            result=operation.recorded_result,
            error=operation.recorded_error,
        )


@attrs.frozen(kw_only=True)
class OperationStartInfo(OperationInfo):
    pass


@attrs.frozen(kw_only=True)
class OperationEndInfo(OperationInfo):
    pass


@attrs.frozen(kw_only=True)
class OperationChangeInfo:
    """The operations a checkpoint response changed, and all operations after it."""

    execution_arn: str
    #: The operations whose status the response changed (or that it reported first).
    updated_operations: Mapping[str, OperationInfo]
    #: Every operation known after the response, the updated ones included.
    operations: Mapping[str, OperationInfo]


@attrs.frozen(kw_only=True)
class UserFunctionStartInfo(OperationInfo):
    #: The body of a child context runs again to rebuild a result too large to store.
    is_replay_children: bool = False


@attrs.frozen(kw_only=True)
class UserFunctionEndInfo(OperationInfo):
    outcome: UserFunctionOutcome
    is_replay_children: bool = False


class DurableInstrumentationPlugin:
    """Optional base class: every hook is a no-op; override (sync or ``async``) any of them.

    Subclassing is not required; any object with some of the hook methods is a plugin.
    Hooks inherited unchanged from this class are never called.
    """

    def on_invocation_start(self, info: InvocationStartInfo) -> Awaitable[None] | None:
        return None

    def on_invocation_end(self, info: InvocationEndInfo) -> Awaitable[None] | None:
        return None

    def on_operation_start(self, info: OperationStartInfo) -> Awaitable[None] | None:
        return None

    def on_operation_end(self, info: OperationEndInfo) -> Awaitable[None] | None:
        return None

    def on_operation_change(self, info: OperationChangeInfo) -> Awaitable[None] | None:
        return None

    def on_user_function_start(self, info: UserFunctionStartInfo) -> Awaitable[None] | None:
        return None

    def on_user_function_end(self, info: UserFunctionEndInfo) -> Awaitable[None] | None:
        return None


class DurableInstrumentationPluginFactory(Protocol):
    """Builds the plugin that observes one invocation (called once per invocation)."""

    def create_plugin(self, info: InvocationStartInfo, /) -> Any: ...


def is_factory(value: object) -> bool:
    """Whether a registered entry is a plugin factory (it has ``create_plugin``)."""
    return callable(getattr(value, "create_plugin", None))
