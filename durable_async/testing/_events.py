"""Operations rebuilt from a ``GetDurableExecutionHistory`` event list.

The API reports an execution's past as events (``StepStarted``, ``StepFailed`` with retry
details, ``WaitSucceeded``...); the history view and the replayer work on operations, as
``GetDurableExecutionState`` reports them. Folding the events in order gives each
operation's latest state. Imported only when a history file holds events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from durable_async._wire.converter import from_wire
from durable_async._wire.enums import OperationStatus, OperationType
from durable_async._wire.models import (
    CallbackDetails,
    ChainedInvokeDetails,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    Operation,
    StepDetails,
    WaitDetails,
)

_TYPES = {
    "Execution": OperationType.EXECUTION,
    "Context": OperationType.CONTEXT,
    "Wait": OperationType.WAIT,
    "Step": OperationType.STEP,
    "ChainedInvoke": OperationType.CHAINED_INVOKE,
    "Callback": OperationType.CALLBACK,
}
_OUTCOMES = {
    "Started": OperationStatus.STARTED,
    "Succeeded": OperationStatus.SUCCEEDED,
    "Failed": OperationStatus.FAILED,
    "TimedOut": OperationStatus.TIMED_OUT,
    "Stopped": OperationStatus.STOPPED,
    "Cancelled": OperationStatus.CANCELLED,
}


def _split(event_type: str) -> tuple[OperationType, OperationStatus] | None:
    for prefix, op_type in _TYPES.items():
        rest = event_type.removeprefix(prefix)
        if rest != event_type and rest in _OUTCOMES:
            return op_type, _OUTCOMES[rest]
    return None  # InvocationCompleted, ExecutionPaused...: not an operation's change


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float):  # the API's JSON: epoch seconds
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    msg = f"not a timestamp: {value!r}"
    raise ValueError(msg)


def _payload(details: Mapping[str, Any], key: str) -> Any:
    holder = details.get(key)
    return holder.get("Payload") if isinstance(holder, Mapping) else None


def operations_from_events(events: Iterable[Mapping[str, Any]]) -> list[Operation]:
    """Each operation's state after the last of its events, in order of first event."""
    from durable_async.testing._history import HistoryFormatError

    ops: dict[str, Operation] = {}
    for event in events:
        event_type = str(event.get("EventType", ""))
        kind = _split(event_type)
        if kind is None:
            continue
        op_type, status = kind
        op_id = event.get("Id")
        if not op_id:
            msg = f"event {event.get('EventId')} ({event_type}) has no operation Id"
            raise HistoryFormatError(msg)
        when = _when(event.get("EventTimestamp"))
        details: Mapping[str, Any] = event.get(f"{event_type}Details") or {}
        result = _payload(details, "Result")
        raw_error = _payload(details, "Error")
        error = from_wire(raw_error, ErrorObject) if raw_error else None
        op = ops.get(op_id) or Operation(
            id=op_id,
            type=op_type,
            status=status,
            parent_id=event.get("ParentId"),
            name=event.get("Name"),
            sub_type=event.get("SubType"),
            start_timestamp=when,
        )
        end = when if status.is_terminal else None
        op = attrs.evolve(op, status=status, end_timestamp=end)
        if op_type is OperationType.EXECUTION and status is OperationStatus.STARTED:
            op = attrs.evolve(op, execution_details=ExecutionDetails(_payload(details, "Input")))
        elif op_type is OperationType.STEP:
            retry = details.get("RetryDetails") or {}
            attempt = op.step_details.attempt if op.step_details else 0
            if status is not OperationStatus.STARTED:  # an attempt ended
                attempt = retry.get("CurrentAttempt", attempt + 1)
            delay = retry.get("NextAttemptDelaySeconds")
            if status is OperationStatus.FAILED and delay is not None and when is not None:
                op = attrs.evolve(op, status=OperationStatus.PENDING, end_timestamp=None)
                next_at: datetime | None = when + timedelta(seconds=delay)
            else:
                next_at = None
            op = attrs.evolve(op, step_details=StepDetails(attempt, next_at, result, error))
        elif op_type is OperationType.WAIT and status is OperationStatus.STARTED:
            op = attrs.evolve(
                op, wait_details=WaitDetails(_when(details.get("ScheduledEndTimestamp")))
            )
        elif op_type is OperationType.CALLBACK:
            previous = op.callback_details.callback_id if op.callback_details else None
            op = attrs.evolve(
                op,
                callback_details=CallbackDetails(
                    details.get("CallbackId", previous), result, error
                ),
            )
        elif op_type is OperationType.CHAINED_INVOKE and status.is_terminal:
            op = attrs.evolve(op, chained_invoke_details=ChainedInvokeDetails(result, error))
        elif op_type is OperationType.CONTEXT and status.is_terminal:
            op = attrs.evolve(op, context_details=ContextDetails(False, result, error))
        ops[op_id] = op
    return list(ops.values())
