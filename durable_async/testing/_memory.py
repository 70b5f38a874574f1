"""An in-memory backend that records operations the way the service does.

For tests and local runs: it chains checkpoint tokens, applies updates with the service's
status transitions, keeps time on an injected clock (virtual by default: it only moves when
told to), and can be told to withdraw a token or fail a call, so SDK logic is testable
without I/O.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from durable_async._client.base import DurableExecutionClient
from durable_async._errors import CheckpointError, ExecutionStateError
from durable_async._wire.enums import (
    OperationAction,
    OperationStatus,
    OperationType,
)
from durable_async._wire.models import (
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointRequest,
    CheckpointResponse,
    ErrorObject,
    ExecutionDetails,
    ExecutionStatePage,
    GetExecutionStateRequest,
    InvocationOutput,
    Operation,
    OperationUpdate,
)
from durable_async.testing._clock import Clock, VirtualClock
from durable_async.testing._history import InvocationRecord
from durable_async.testing._service_rules import timer, transition, validate

_ARN_PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:local:$LATEST/durable-execution/local"


@attrs.define
class MemoryExecution:
    """One execution's recorded state."""

    arn: str
    token: str
    operations: dict[str, Operation]
    #: Terminal update of the EXECUTION operation, if one was checkpointed.
    result_update: OperationUpdate | None = None
    #: Every update accepted, in order (the raw material of a history).
    updates: list[OperationUpdate] = attrs.Factory(list)
    #: Callback timers by operation ID: (deadline, heartbeat deadline).
    callback_timers: dict[str, tuple[datetime | None, datetime | None]] = attrs.Factory(dict)
    #: Heartbeat timeout in seconds of each callback with one.
    heartbeat_seconds: dict[str, int] = attrs.Factory(dict)
    #: Operations changed from outside (timers, callbacks, invokes) that no checkpoint
    #: response or invocation input has carried yet; the next one carries them, as the
    #: service's do (an input lists them as ``UpdatedOperationIds``).
    changed_outside: set[str] = attrs.Factory(set)
    #: Something changed from outside since the last invocation began, or that invocation
    #: failed: the service would invoke the function again (cleared by ``take_wakeup``).
    woken: bool = False
    #: How the execution ended (its last invocation's output), once it has.
    outcome: InvocationOutput | None = None


@attrs.frozen
class PendingInvoke:
    """A chained invocation the backend has started but not finished."""

    arn: str
    operation_id: str
    function_name: str
    payload: str | None
    tenant_id: str | None


class MemoryBackend(DurableExecutionClient):
    """``DurableExecutionClient`` kept in a dict, with a virtual clock."""

    def __init__(self, *, page_size: int = 1000, clock: Clock | None = None) -> None:
        self.executions: dict[str, MemoryExecution] = {}
        #: The one clock of a local run: operation timestamps, timers, ``ctx.now()``.
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.page_size = page_size
        #: Every ``checkpoint`` request received, in order.
        self.checkpoint_calls: list[CheckpointRequest] = []
        self.state_calls: list[GetExecutionStateRequest] = []
        self._faults: list[Callable[[CheckpointRequest], CheckpointResponse | None]] = []
        #: The local runner's bookkeeping, kept here so any runner on this backend (or a
        #: later process, for a stored backend) continues it: invocations per execution,
        #: and the execution started for each chained invoke (caller ARN, operation ID).
        self.invocation_records: dict[str, list[InvocationRecord]] = {}
        self.invoked: dict[tuple[str, str], str] = {}

    # -- setting up -------------------------------------------------------------------

    def start_execution(self, input_payload: str | None, *, arn: str | None = None) -> str:
        """Create an execution and return its ARN."""
        arn = arn or f"{_ARN_PREFIX}/{uuid.uuid4().hex}"
        execution_op = Operation(
            id=uuid.uuid4().hex,
            type=OperationType.EXECUTION,
            status=OperationStatus.STARTED,
            start_timestamp=self.now,
            execution_details=ExecutionDetails(input_payload=input_payload),
        )
        self.executions[arn] = MemoryExecution(
            arn=arn, token=self._new_token(), operations={execution_op.id: execution_op}
        )
        return arn

    def revoke_next_checkpoint(self) -> None:
        """Answer the next checkpoint without a token after recording it."""

        def fault(request: CheckpointRequest) -> CheckpointResponse | None:
            self._apply(request)
            return CheckpointResponse(checkpoint_token=None)

        self._faults.append(fault)

    def fail_next_checkpoint(self, error: CheckpointError) -> None:
        """Fail the next checkpoint call with ``error`` without recording anything."""

        def fault(request: CheckpointRequest) -> CheckpointResponse | None:
            raise error

        self._faults.append(fault)

    # -- the clock --------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The clock's current time."""
        return self.clock.now()

    def next_due(self, arn: str) -> datetime | None:
        """When the earliest timer (wait end, retry, callback timeout) fires."""
        execution = self.executions[arn]
        due = [when for op in execution.operations.values() if (when := timer(op)) is not None]
        for op_id, (deadline, heartbeat) in execution.callback_timers.items():
            if execution.operations[op_id].status is OperationStatus.STARTED:
                due.extend(when for when in (deadline, heartbeat) if when is not None)
        return min(due, default=None)

    def advance_to(self, when: datetime) -> None:
        """Move the clock to ``when`` and fire every timer due by then."""
        self.clock.advance_to(when)
        self.fire_due()

    def fire_due(self) -> None:
        """Fire every timer due by now, in every execution (each is woken for it)."""
        for execution in self.executions.values():
            for op_id, op in list(execution.operations.items()):
                due = timer(op)
                if due is None or due > self.now:
                    continue
                if op.type is OperationType.WAIT:
                    execution.operations[op_id] = attrs.evolve(
                        op, status=OperationStatus.SUCCEEDED, end_timestamp=self.now
                    )
                else:
                    execution.operations[op_id] = attrs.evolve(op, status=OperationStatus.READY)
                execution.changed_outside.add(op_id)
                execution.woken = True
            for op_id, (deadline, heartbeat) in list(execution.callback_timers.items()):
                if execution.operations[op_id].status is not OperationStatus.STARTED:
                    continue
                if heartbeat is not None and heartbeat <= self.now:
                    self._end_callback(execution, op_id, timed_out="Callback.Heartbeat")
                elif deadline is not None and deadline <= self.now:
                    self._end_callback(execution, op_id, timed_out="Callback.Timeout")

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.advance_to(self.now + timedelta(seconds=seconds))

    def record_invocation(self, arn: str, record: InvocationRecord) -> None:
        """Keep the runner's record of one invocation of ``arn``."""
        self.invocation_records.setdefault(arn, []).append(record)

    def take_wakeup(self, arn: str) -> bool:
        """Whether ``arn`` changed from outside since last asked (and clear the mark).

        Runners sharing a backend need it: one runner's clock jump fires every
        execution's due timers, and the others must invoke again, not look for a timer.
        """
        execution = self.executions[arn]
        woken, execution.woken = execution.woken, False
        return woken

    def take_updated_operation_ids(self, arn: str) -> list[str]:
        """The next invocation input's ``UpdatedOperationIds``, now delivered (forgotten).

        What changed from outside that no checkpoint response or earlier input carried: as
        the service's, they let the SDK tell an operation another party ended while the
        execution was suspended from history an earlier invocation already saw.
        """
        execution = self.executions[arn]
        updated = sorted(execution.changed_outside)
        execution.changed_outside.clear()
        return updated

    # -- the outside world ------------------------------------------------------------

    def _callback(self, callback_id: str) -> tuple[MemoryExecution, str]:
        for execution in self.executions.values():
            for op in execution.operations.values():
                details = op.callback_details
                if details is not None and details.callback_id == callback_id:
                    return execution, op.id
        msg = "no callback with that ID"  # the ID is a bearer token: never quoted
        raise KeyError(msg)

    def open_callbacks(self, arn: str) -> list[str]:
        """IDs of the execution's callbacks that still await an answer."""
        return [
            op.callback_details.callback_id
            for op in self.executions[arn].operations.values()
            if op.callback_details is not None
            and op.callback_details.callback_id
            and op.status is OperationStatus.STARTED
        ]

    def complete_callback(self, callback_id: str, result: str | None = None) -> None:
        """Deliver a success, as ``SendDurableExecutionCallbackSuccess`` would."""
        execution, op_id = self._callback(callback_id)
        self._end_callback(execution, op_id, result=result)

    def fail_callback(self, callback_id: str, error: ErrorObject) -> None:
        """Deliver a failure, as ``SendDurableExecutionCallbackFailure`` would."""
        execution, op_id = self._callback(callback_id)
        self._end_callback(execution, op_id, error=error)

    def heartbeat_callback(self, callback_id: str) -> None:
        """Push the heartbeat deadline back, as ``SendDurableExecutionCallbackHeartbeat``."""
        execution, op_id = self._callback(callback_id)
        op = execution.operations[op_id]
        if op.status is not OperationStatus.STARTED:
            raise _ended(op)  # the service: ResourceNotFound
        deadline, _ = execution.callback_timers[op_id]
        seconds = execution.heartbeat_seconds.get(op_id)
        if seconds:
            execution.callback_timers[op_id] = (deadline, self.now + timedelta(seconds=seconds))

    def _end_callback(
        self,
        execution: MemoryExecution,
        op_id: str,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
        timed_out: str | None = None,
    ) -> None:
        op = execution.operations[op_id]
        if op.status is not OperationStatus.STARTED:
            raise _ended(op)
        callback_id = op.callback_details.callback_id if op.callback_details else None
        if timed_out is not None:
            status = OperationStatus.TIMED_OUT
            error = ErrorObject(message="Callback timed out", type=timed_out)
        else:
            status = OperationStatus.FAILED if error is not None else OperationStatus.SUCCEEDED
        execution.operations[op_id] = attrs.evolve(
            op,
            status=status,
            end_timestamp=self.now,
            callback_details=CallbackDetails(callback_id, result, error),
        )
        execution.changed_outside.add(op_id)
        execution.woken = True

    def pending_invokes(self, arn: str) -> list[PendingInvoke]:
        """Chained invocations of ``arn`` that were started and have not ended."""
        execution = self.executions[arn]
        started = {
            u.id: u
            for u in execution.updates
            if u.type is OperationType.CHAINED_INVOKE and u.action is OperationAction.START
        }
        return [
            PendingInvoke(
                arn,
                op_id,
                update.chained_invoke_options.function_name
                if update.chained_invoke_options
                else "",
                update.payload,
                update.chained_invoke_options.tenant_id if update.chained_invoke_options else None,
            )
            for op_id, update in started.items()
            if execution.operations[op_id].status is OperationStatus.STARTED
        ]

    def complete_invoke(
        self,
        arn: str,
        operation_id: str,
        *,
        result: str | None = None,
        error: ErrorObject | None = None,
    ) -> None:
        """Record a chained invocation's outcome, as the service does when the target ends."""
        execution = self.executions[arn]
        op = execution.operations[operation_id]
        status = OperationStatus.FAILED if error is not None else OperationStatus.SUCCEEDED
        execution.operations[operation_id] = attrs.evolve(
            op,
            status=status,
            end_timestamp=self.now,
            chained_invoke_details=ChainedInvokeDetails(result, error),
        )
        execution.changed_outside.add(operation_id)
        execution.woken = True

    def end_execution(
        self, arn: str, status: OperationStatus, *, outcome: InvocationOutput | None = None
    ) -> None:
        """Close the EXECUTION operation as the service does when the invocation returns.

        ``outcome``, the invocation's output, is kept as the execution's result.
        """
        execution = self.executions[arn]
        if outcome is not None:
            execution.outcome = outcome
        for op_id, op in execution.operations.items():
            if op.type is OperationType.EXECUTION and not op.status.is_terminal:
                execution.operations[op_id] = attrs.evolve(
                    op, status=status, end_timestamp=self.now
                )

    # -- the contract -----------------------------------------------------------------

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        """Apply the updates like the service and chain a new token."""
        self.checkpoint_calls.append(params)
        execution = self.executions.get(params.durable_execution_arn)
        if execution is None:
            raise CheckpointError(
                "CheckpointDurableExecution failed: ResourceNotFoundException",
                retryable=False,
                code="ResourceNotFoundException",
                status_code=404,
            )
        if params.checkpoint_token != execution.token:
            raise CheckpointError(
                "CheckpointDurableExecution failed: Invalid checkpoint token",
                retryable=True,
                code="InvalidParameterValueException",
                status_code=400,
            )
        validate(params, execution.operations)
        if self._faults:
            faulted = self._faults.pop(0)(params)
            if faulted is not None:
                execution.token = self._new_token()
                return faulted
        changed = self._apply(params)
        execution.token = self._new_token()
        if execution.result_update is not None:
            return CheckpointResponse(
                checkpoint_token=None, new_execution_state=ExecutionStatePage(tuple(changed))
            )
        state = ExecutionStatePage(tuple(changed))
        if len(changed) > self.page_size:
            # Too many to answer inline: the first page, and a marker from which
            # GetDurableExecutionState serves the whole (current) state.
            state = ExecutionStatePage(tuple(changed[: self.page_size]), next_marker="0")
        return CheckpointResponse(checkpoint_token=execution.token, new_execution_state=state)

    async def get_execution_state(
        self, params: GetExecutionStateRequest, logger: logging.Logger
    ) -> ExecutionStatePage:
        """Page through the operations in insertion order."""
        self.state_calls.append(params)
        execution = self.executions.get(params.durable_execution_arn)
        if execution is None or params.checkpoint_token != execution.token:
            raise ExecutionStateError(
                "GetDurableExecutionState failed: Invalid checkpoint token",
                retryable=True,
                code="InvalidParameterValueException",
                status_code=400,
            )
        return self.page(execution, params.marker, params.max_items)

    def page(
        self, execution: MemoryExecution, marker: str | None, max_items: int | None = None
    ) -> ExecutionStatePage:
        """One page of operations starting at ``marker`` (an index)."""
        ops = list(execution.operations.values())
        start = int(marker or 0)
        end = start + min(max_items or self.page_size, self.page_size)
        return ExecutionStatePage(tuple(ops[start:end]), str(end) if end < len(ops) else None)

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _new_token() -> str:
        return uuid.uuid4().hex

    def _apply(self, params: CheckpointRequest) -> list[Operation]:
        execution = self.executions[params.durable_execution_arn]
        changed: dict[str, Operation] = {
            op_id: execution.operations[op_id] for op_id in execution.changed_outside
        }
        execution.changed_outside.clear()
        for update in params.updates:
            execution.updates.append(update)
            if update.type is OperationType.EXECUTION:
                execution.result_update = update
                continue
            op = transition(execution.operations.get(update.id), update, self.now)
            if update.type is OperationType.CALLBACK and update.action is OperationAction.START:
                options = update.callback_options
                timeout = options.timeout_seconds if options else 0
                heartbeat = options.heartbeat_timeout_seconds if options else 0
                execution.callback_timers[op.id] = (
                    self.now + timedelta(seconds=timeout) if timeout else None,
                    self.now + timedelta(seconds=heartbeat) if heartbeat else None,
                )
                if heartbeat:
                    execution.heartbeat_seconds[op.id] = heartbeat
            execution.operations[update.id] = op
            changed[op.id] = op
        return list(changed.values())


class CallbackEndedError(ValueError):
    """The callback was answered, or timed out, already (the service: ResourceNotFound)."""


def _ended(op: Operation) -> CallbackEndedError:
    """Why the callback of ``op`` cannot be answered; names the operation, never the ID."""
    which = f"operation {op.name!r}" if op.name else f"operation ID {op.id}"
    return CallbackEndedError(f"this callback ({which}) already ended ({op.status.value})")
