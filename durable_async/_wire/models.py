"""Wire models of the durable-execution API: data only, shaped by ``converter``.

Field names are snake_case; ``converter`` maps them to the service's PascalCase keys.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from durable_async._wire.enums import (
    InvocationStatus,
    OperationAction,
    OperationStatus,
    OperationType,
)


def _hidden(value: object) -> str:
    """The repr of a secret (a checkpoint token, a callback ID): never its value."""
    return "<redacted>" if value else repr(value)


@attrs.frozen
class ErrorObject:
    """An error as the service stores it (``ErrorMessage``/``ErrorType``/...)."""

    message: str | None = None
    type: str | None = None
    data: str | None = None
    stack_trace: tuple[str, ...] | None = None


@attrs.frozen
class ExecutionDetails:
    input_payload: str | None = None


@attrs.frozen
class ContextDetails:
    replay_children: bool = False
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class StepDetails:
    attempt: int = 0
    next_attempt_timestamp: datetime | None = None
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class WaitDetails:
    scheduled_end_timestamp: datetime | None = None


@attrs.frozen
class CallbackDetails:
    callback_id: str | None = attrs.field(default=None, repr=_hidden)
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class ChainedInvokeDetails:
    result: str | None = None
    error: ErrorObject | None = None


@attrs.frozen
class Operation:
    """One operation of an execution as the service reports it."""

    id: str
    type: OperationType
    status: OperationStatus
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    start_timestamp: datetime | None = None
    end_timestamp: datetime | None = None
    execution_details: ExecutionDetails | None = None
    context_details: ContextDetails | None = None
    step_details: StepDetails | None = None
    wait_details: WaitDetails | None = None
    callback_details: CallbackDetails | None = None
    chained_invoke_details: ChainedInvokeDetails | None = None

    @property
    def recorded_result(self) -> str | None:
        """The serialized result the service recorded, whatever the operation's kind."""
        return next((d.result for d in self._outcome_details() if d.result is not None), None)

    @property
    def recorded_error(self) -> ErrorObject | None:
        """The error the service recorded, whatever the operation's kind."""
        return next((d.error for d in self._outcome_details() if d.error is not None), None)

    def _outcome_details(
        self,
    ) -> list[StepDetails | ContextDetails | CallbackDetails | ChainedInvokeDetails]:
        details = (
            self.step_details,
            self.context_details,
            self.callback_details,
            self.chained_invoke_details,
        )
        return [d for d in details if d is not None]


@attrs.frozen
class StepOptions:
    next_attempt_delay_seconds: int


@attrs.frozen
class WaitOptions:
    wait_seconds: int


@attrs.frozen
class ContextOptions:
    replay_children: bool = False


@attrs.frozen
class CallbackOptions:
    timeout_seconds: int = 0
    heartbeat_timeout_seconds: int = 0


@attrs.frozen
class ChainedInvokeOptions:
    function_name: str
    tenant_id: str | None = None


@attrs.frozen
class OperationUpdate:
    """One change the SDK asks the service to record (an element of ``Updates``)."""

    id: str
    type: OperationType
    action: OperationAction
    parent_id: str | None = None
    name: str | None = None
    sub_type: str | None = None
    payload: str | None = None
    error: ErrorObject | None = None
    context_options: ContextOptions | None = None
    step_options: StepOptions | None = None
    wait_options: WaitOptions | None = None
    callback_options: CallbackOptions | None = None
    chained_invoke_options: ChainedInvokeOptions | None = None


@attrs.frozen
class ExecutionStatePage:
    """A page of operations: initial state, checkpoint response state, or a state read."""

    operations: tuple[Operation, ...] = ()
    next_marker: str | None = None


@attrs.frozen
class CheckpointRequest:
    """Parameters of ``CheckpointDurableExecution``."""

    durable_execution_arn: str
    checkpoint_token: str = attrs.field(repr=_hidden)
    updates: tuple[OperationUpdate, ...]
    client_token: str | None = None


@attrs.frozen
class CheckpointResponse:
    """Result of ``CheckpointDurableExecution``; no token means revoked or completed."""

    checkpoint_token: str | None = attrs.field(default=None, repr=_hidden)
    new_execution_state: ExecutionStatePage = ExecutionStatePage()


@attrs.frozen
class GetExecutionStateRequest:
    """Parameters of ``GetDurableExecutionState``."""

    durable_execution_arn: str
    checkpoint_token: str = attrs.field(repr=_hidden)
    marker: str | None = None
    max_items: int = 1000


@attrs.frozen
class InvocationInput:
    """The event Lambda hands a durable function."""

    durable_execution_arn: str
    checkpoint_token: str = attrs.field(repr=_hidden)
    initial_execution_state: ExecutionStatePage = ExecutionStatePage()


@attrs.frozen
class InvocationOutput:
    """What a durable function returns to Lambda."""

    status: InvocationStatus
    result: str | None = None
    error: ErrorObject | None = None
