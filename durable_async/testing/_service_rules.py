"""What the service does with a checkpointed update: its rules and status transitions.

Kept apart from ``MemoryBackend``'s bookkeeping (executions, tokens, the virtual clock) so
the service's behaviour reads in one place.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NoReturn

import attrs

from durable_async._errors import CheckpointError
from durable_async._wire.converter import to_wire
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
_INVOKE_PAYLOAD_LIMIT = 1024 * 1024
_ERROR_LIMIT = 32 * 1024


def _reject(problem: str) -> NoReturn:
    raise CheckpointError(
        f"CheckpointDurableExecution failed: InvalidParameterValueException: {problem}",
        retryable=False,
        code="InvalidParameterValueException",
        status_code=400,
    )


_VALID_ACTIONS = {
    OperationType.STEP: {
        OperationAction.START,
        OperationAction.SUCCEED,
        OperationAction.FAIL,
        OperationAction.RETRY,
    },
    OperationType.CONTEXT: {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL},
    OperationType.WAIT: {OperationAction.START, OperationAction.CANCEL},
    OperationType.CALLBACK: {OperationAction.START},
    OperationType.CHAINED_INVOKE: {OperationAction.START},
    OperationType.EXECUTION: {OperationAction.SUCCEED, OperationAction.FAIL},
}
#: Statuses an existing operation may be in for each (type, action); absent means "must
#: not exist yet" for START and "any non-terminal" otherwise.
_FROM = {
    (OperationType.STEP, OperationAction.START): {OperationStatus.READY},
    (OperationType.STEP, OperationAction.SUCCEED): {OperationStatus.STARTED, OperationStatus.READY},
    (OperationType.STEP, OperationAction.FAIL): {OperationStatus.STARTED, OperationStatus.READY},
    (OperationType.STEP, OperationAction.RETRY): {OperationStatus.STARTED, OperationStatus.READY},
    (OperationType.CONTEXT, OperationAction.SUCCEED): {OperationStatus.STARTED},
    (OperationType.CONTEXT, OperationAction.FAIL): {OperationStatus.STARTED},
    (OperationType.WAIT, OperationAction.CANCEL): {OperationStatus.STARTED},
}


def validate(params: CheckpointRequest, operations: Mapping[str, Operation]) -> None:
    """Reject a request the service would reject, before recording anything.

    The rules of AWS's local backend (which mirrors the service): field formats and sizes,
    one EXECUTION update and only last, one update per operation per batch (except a
    STEP's or CONTEXT's START followed by its outcome), parents that are contexts, actions
    valid for the type and for the operation's current status, metadata that matches.
    """
    updates = params.updates
    executions = [u for u in updates if u.type is OperationType.EXECUTION]
    if len(executions) > 1 or (executions and updates[-1] is not executions[0]):
        _reject("the EXECUTION update must be the only one of its kind and the last")
    started: dict[str, OperationUpdate] = {}
    last: dict[str, OperationUpdate] = {}
    for update in updates:
        _validate_fields(update)
        previous = last.get(update.id)
        if previous is not None and not (
            previous.type in (OperationType.STEP, OperationType.CONTEXT)
            and previous.action is OperationAction.START
            and update.action is not OperationAction.START
        ):
            _reject(f"operation {update.id} is updated twice in one batch")
        if update.parent_id is not None:
            parent = started.get(update.parent_id) or operations.get(update.parent_id)
            if parent is None or parent.type is not OperationType.CONTEXT:
                _reject(f"invalid parent operation id {update.parent_id!r}")
        if update.action is OperationAction.START:
            started[update.id] = update
        last[update.id] = update
        _validate_transition(update, operations.get(update.id))


def _validate_transition(update: OperationUpdate, current: Operation | None) -> None:
    action = update.action
    if action not in _VALID_ACTIONS[update.type]:
        _reject(f"invalid action {action} for a {update.type} operation")
    if action is OperationAction.FAIL and update.payload is not None:
        _reject("a FAIL update carries no payload")
    if action is OperationAction.SUCCEED and update.error is not None:
        _reject("a SUCCEED update carries no error")
    if update.type is OperationType.STEP and action is OperationAction.RETRY:
        if update.step_options is None:
            _reject("a RETRY update needs StepOptions")
        if update.error is not None and update.payload is not None:
            _reject("a RETRY update carries an error or a payload, not both")
    if update.type is OperationType.CHAINED_INVOKE and update.chained_invoke_options is None:
        _reject("a CHAINED_INVOKE START needs ChainedInvokeOptions")
    if update.type is OperationType.WAIT and action is OperationAction.CANCEL and current is None:
        _reject("cannot cancel a WAIT that does not exist")
    if update.type is OperationType.EXECUTION or current is None:
        return
    if (
        current.type is not update.type
        or (update.sub_type is not None and update.sub_type != current.sub_type)
        or (update.name is not None and update.name != current.name)
        or (update.parent_id is not None and update.parent_id != current.parent_id)
    ):
        _reject(f"operation {update.id} does not match the recorded operation")
    allowed = _FROM.get((update.type, action))
    if allowed is None or current.status not in allowed:
        _reject(f"cannot {action} a {update.type} operation that is {current.status}")


def _validate_fields(update: OperationUpdate) -> None:
    problems = []
    if _ID.fullmatch(update.id) is None:
        problems.append(f"Id {update.id!r}")
    if update.parent_id is not None and _ID.fullmatch(update.parent_id) is None:
        problems.append(f"ParentId {update.parent_id!r}")
    if update.name is not None and _NAME.fullmatch(update.name) is None:
        problems.append(f"Name {update.name!r}")
    if update.sub_type is not None and _SUB_TYPE.fullmatch(update.sub_type) is None:
        problems.append(f"SubType {update.sub_type!r}")
    limit = _INVOKE_PAYLOAD_LIMIT if update.type is OperationType.CHAINED_INVOKE else _PAYLOAD_LIMIT
    if (
        update.type is not OperationType.EXECUTION
        and update.payload is not None
        and len(update.payload.encode("utf-8")) > limit
    ):
        problems.append(f"Payload larger than {limit // 1024} KiB")
    if update.error is not None and len(json.dumps(to_wire(update.error))) > _ERROR_LIMIT:
        problems.append("Error object larger than 32 KiB")
    if problems:
        _reject(f"invalid {', '.join(problems)}")
