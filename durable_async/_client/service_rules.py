"""What the service does with a checkpointed update: its rules and status transitions.

Kept apart from ``MemoryBackend``'s bookkeeping (executions, tokens, the virtual clock) so
the service's behaviour reads in one place.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import attrs

from durable_async._errors import CheckpointError
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async._wire.models import (
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointRequest,
    ContextDetails,
    Operation,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)


def transition(current: Operation | None, update: OperationUpdate, now: datetime) -> Operation:
    """The operation as the service records it after ``update`` (at time ``now``)."""
    base = current or Operation(
        id=update.id,
        type=update.type,
        status=OperationStatus.STARTED,
        parent_id=update.parent_id,
        name=update.name,
        sub_type=update.sub_type,
        start_timestamp=now,
    )
    action = update.action
    if update.type is OperationType.WAIT and action is OperationAction.START:
        seconds = update.wait_options.wait_seconds if update.wait_options else 1
        return attrs.evolve(
            base,
            status=OperationStatus.STARTED,
            wait_details=WaitDetails(now + timedelta(seconds=seconds)),
        )
    if update.type is OperationType.STEP:
        attempt = base.step_details.attempt if base.step_details else 0
        if action is OperationAction.START:
            return attrs.evolve(
                base,
                status=OperationStatus.STARTED,
                step_details=StepDetails(attempt=attempt),
            )
        if action is OperationAction.RETRY:
            delay = update.step_options.next_attempt_delay_seconds if update.step_options else 0
            return attrs.evolve(
                base,
                status=OperationStatus.PENDING,
                step_details=StepDetails(
                    attempt=attempt + 1,
                    next_attempt_timestamp=now + timedelta(seconds=delay),
                    result=update.payload,
                    error=update.error,
                ),
            )
        status = (
            OperationStatus.SUCCEEDED
            if action is OperationAction.SUCCEED
            else OperationStatus.FAILED
        )
        return attrs.evolve(
            base,
            status=status,
            end_timestamp=now,
            step_details=StepDetails(
                attempt=attempt + 1, result=update.payload, error=update.error
            ),
        )
    if update.type is OperationType.CALLBACK and action is OperationAction.START:
        return attrs.evolve(base, callback_details=CallbackDetails(uuid.uuid4().hex))
    if update.type is OperationType.CHAINED_INVOKE and action is OperationAction.START:
        return attrs.evolve(base, chained_invoke_details=ChainedInvokeDetails())
    if update.type is OperationType.CONTEXT and action is not OperationAction.START:
        replay_children = bool(update.context_options and update.context_options.replay_children)
        return attrs.evolve(
            base,
            status=OperationStatus.SUCCEEDED
            if action is OperationAction.SUCCEED
            else OperationStatus.FAILED,
            end_timestamp=now,
            context_details=ContextDetails(replay_children, update.payload, update.error),
        )
    status = {
        OperationAction.START: OperationStatus.STARTED,
        OperationAction.SUCCEED: OperationStatus.SUCCEEDED,
        OperationAction.FAIL: OperationStatus.FAILED,
        OperationAction.CANCEL: OperationStatus.CANCELLED,
    }.get(action, base.status)
    return attrs.evolve(base, status=status, end_timestamp=now if status.is_terminal else None)


def timer(op: Operation) -> datetime | None:
    """When the service changes ``op`` by itself (a wait ends, a retry is due), if ever."""
    if op.type is OperationType.WAIT and op.status is OperationStatus.STARTED:
        return op.wait_details.scheduled_end_timestamp if op.wait_details else None
    if op.type is OperationType.STEP and op.status is OperationStatus.PENDING:
        return op.step_details.next_attempt_timestamp if op.step_details else None
    return None


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[\x20-\x7e]{1,256}")
_SUB_TYPE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PAYLOAD_LIMIT = 256 * 1024


def validate(params: CheckpointRequest) -> None:
    """Reject a request the service would reject, before recording anything."""
    for update in params.updates:
        problems = []
        if _ID.fullmatch(update.id) is None:
            problems.append(f"Id {update.id!r}")
        if update.parent_id is not None and _ID.fullmatch(update.parent_id) is None:
            problems.append(f"ParentId {update.parent_id!r}")
        if update.name is not None and _NAME.fullmatch(update.name) is None:
            problems.append(f"Name {update.name!r}")
        if update.sub_type is not None and _SUB_TYPE.fullmatch(update.sub_type) is None:
            problems.append(f"SubType {update.sub_type!r}")
        if (
            update.type is not OperationType.EXECUTION
            and update.payload is not None
            and len(update.payload.encode("utf-8")) > _PAYLOAD_LIMIT
        ):
            problems.append("Payload larger than 256 KiB")
        if problems:
            raise CheckpointError(
                f"CheckpointDurableExecution failed: InvalidParameterValueException: "
                f"invalid {', '.join(problems)}",
                retryable=False,
                code="InvalidParameterValueException",
                status_code=400,
            )
