"""``LocalRunner``: drives an execution to its end on ``MemoryBackend``, skipping time.

Each invocation gets the event Lambda would send; when the handler suspends, the runner
jumps the backend's virtual clock to the next timer and invokes again, so a handler that
waits an hour runs in milliseconds. Nothing sleeps (unless the clock is a ``RealClock``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from durable_async._clock import clock_override
from durable_async._entry import DurableHandler
from durable_async._errors import BackendError, InvocationTimeoutError
from durable_async._wire.converter import from_wire, to_wire
from durable_async._wire.enums import InvocationStatus, OperationStatus, OperationType
from durable_async._wire.models import ErrorObject, InvocationOutput, Operation
from durable_async.testing._clock import Clock
from durable_async.testing._history import History, InvocationRecord
from durable_async.testing._memory import MemoryBackend, MemoryExecution


@attrs.define
class FakeLambdaContext:
    """The parts of Lambda's context object that handlers commonly read."""

    function_name: str = "local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:local"
    memory_limit_in_mb: int = 128
    aws_request_id: str = attrs.Factory(lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    tenant_id: str | None = None
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left (fixed: the runner has no deadline)."""
        return self.remaining_ms


@attrs.frozen
class ExecutionResult:
    """How a local execution ended, and what it recorded on the way."""

    status: InvocationStatus
    result: Any
    error: ErrorObject | None
    #: How many invocations this ``run``/``resume`` call made (0 when nothing was due).
    invocations: int
    outputs: tuple[InvocationOutput, ...]
    operations: tuple[Operation, ...]
    arn: str
    #: Every operation by name, index and ID, and every invocation of the execution so far.
    history: History
    #: IDs of callbacks still waiting for an answer (``runner.complete_callback``).
    open_callbacks: tuple[str, ...] = ()

    def __str__(self) -> str:
        head = f"{self.status.value}"
        if self.status is InvocationStatus.SUCCEEDED:
            head += f": {json.dumps(self.result)}"
        elif self.error is not None:
            head += f": {self.error.type or 'Error'}: {self.error.message or ''}"
        return f"{head}\n{self.history}"


_TERMINAL = {
    InvocationStatus.SUCCEEDED: OperationStatus.SUCCEEDED,
    InvocationStatus.FAILED: OperationStatus.FAILED,
}
#: Kinds of operation an invocation can be suspended on (what the service waits for).
_WAITING = {
    OperationType.WAIT: OperationStatus.STARTED,
    OperationType.STEP: OperationStatus.PENDING,
    OperationType.CALLBACK: OperationStatus.STARTED,
    OperationType.CHAINED_INVOKE: OperationStatus.STARTED,
}

#: The service fails a chained invocation whose target returns more than 1 MiB.
_INVOKE_RESULT_LIMIT = 1024 * 1024


class LocalRunner:
    """Runs a ``DurableHandler`` against a ``MemoryBackend`` until it ends or stalls.

    Shaped after Temporal's time-skipping test environment: ``run`` skips time to each
    next timer; ``run_until_suspension`` stops where the handler first waits for time
    or for the outside world, so a test can look, answer callbacks, and ``resume``.
    """

    def __init__(
        self,
        handler: DurableHandler[Any],
        backend: MemoryBackend | None = None,
        *,
        functions: Mapping[str, DurableHandler[Any]] | None = None,
        max_invocations: int = 100,
        pause_on_callbacks: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if backend is not None and clock is not None and backend.clock is not clock:
            msg = "pass the clock to the MemoryBackend: a run has one clock"
            raise ValueError(msg)
        self.handler = handler
        self.backend = backend if backend is not None else MemoryBackend(clock=clock)
        #: Targets of ``ctx.invoke`` by function name; each runs as its own execution.
        self.functions = dict(functions or {})
        self.max_invocations = max_invocations
        #: Return instead of skipping time while a callback awaits an answer, so the test
        #: can answer it (then ``resume``); by default time jumps to its timeout.
        self.pause_on_callbacks = pause_on_callbacks
        self._tenant_id: str | None = None

    @property
    def clock(self) -> Clock:
        """The run's one clock (the backend's)."""
        return self.backend.clock

    def register(self, function_name: str, handler: DurableHandler[Any]) -> None:
        """Make ``handler`` the target of ``ctx.invoke(function_name, ...)``."""
        self.functions[function_name] = handler

    # -- the outside world --------------------------------------------------------------

    def complete_callback(
        self, callback_id: str, result: Any = None, *, raw: str | None = None
    ) -> None:
        """Answer a callback with ``result`` (JSON-encoded) or a ``raw`` payload."""
        payload = raw if raw is not None else None if result is None else json.dumps(result)
        self.backend.complete_callback(callback_id, payload)

    def fail_callback(
        self,
        callback_id: str,
        message: str,
        *,
        error_type: str | None = None,
        data: str | None = None,
    ) -> None:
        """Answer a callback with a failure, as ``SendDurableExecutionCallbackFailure``."""
        error = ErrorObject(message=message, type=error_type, data=data)
        self.backend.fail_callback(callback_id, error)

    def heartbeat_callback(self, callback_id: str) -> None:
        """Push back a callback's heartbeat deadline."""
        self.backend.heartbeat_callback(callback_id)

    # -- running ------------------------------------------------------------------------

    def event(self, arn: str) -> dict[str, Any]:
        """The invocation input Lambda would send now, first page inline."""
        execution = self.backend.executions[arn]
        self.backend.take_wakeup(arn)  # this invocation sees everything changed so far
        updated = self.backend.take_updated_operation_ids(arn)
        page = self.backend.page(execution, None)
        state: dict[str, Any] = {"Operations": [_json_operation(op) for op in page.operations]}
        if page.next_marker:
            state["NextMarker"] = page.next_marker
        return {
            "DurableExecutionArn": arn,
            "CheckpointToken": execution.token,
            "InitialExecutionState": state,
            "UpdatedOperationIds": updated,
        }

    async def run(self, input_value: Any = None, *, arn: str | None = None) -> ExecutionResult:
        """Start an execution with ``input_value`` and drive it to a terminal state."""
        return await self.resume(self.start(input_value, arn=arn))

    async def run_until_suspension(
        self, input_value: Any = None, *, arn: str | None = None
    ) -> ExecutionResult:
        """Start an execution and run it until it waits on time or the outside world."""
        return await self.resume(self.start(input_value, arn=arn), skip_time=False)

    def start(self, input_value: Any = None, *, arn: str | None = None) -> str:
        """Create the execution (input JSON-encoded) without invoking it; its ARN."""
        payload = None if input_value is None else json.dumps(input_value)
        return self.backend.start_execution(payload, arn=arn)

    async def resume(self, arn: str, *, skip_time: bool = True) -> ExecutionResult:
        """Invoke ``arn`` whenever the service would, until it ends or nothing is due.

        As on the service, a new execution is invoked at once, and after that only when
        something is due: a callback was answered, a chained invoke ended, a timer fired (a
        wait ended, a retry came due, a callback timed out), or an invocation failed. With
        ``skip_time`` (the default) the clock jumps to the next timer when nothing else is
        due; with ``skip_time=False`` it never moves, so only timers already due count.

        When nothing is due, or the execution has already ended, the handler is not invoked:
        the result describes the execution as it stands (``invocations == 0``, no
        ``outputs``; status PENDING, or how it ended). A failed invocation (a retryable
        backend error, a timeout) is retried as Lambda would; if the last allowed
        invocation fails too, its error is raised.
        """
        if _ended(self.backend.executions[arn]):
            return self._result(arn, None, 0, [])
        outputs: list[InvocationOutput] = []
        invocations = 0
        failure: Exception | None = None
        while invocations < self.max_invocations and await self._due(arn, skip_time):
            invocations += 1
            try:
                output = await self._invoke_once(arn)
            except (BackendError, InvocationTimeoutError) as error:
                failure = error
                self.backend.executions[arn].woken = True  # Lambda retries a failed invocation
                continue
            failure = None
            outputs.append(output)
            if output.status is not InvocationStatus.PENDING:
                self.backend.end_execution(arn, _TERMINAL[output.status], outcome=output)
                return self._result(arn, output, invocations, outputs)
        if failure is not None:
            raise failure
        return self._result(arn, outputs[-1] if outputs else None, invocations, outputs)

    async def _due(self, arn: str, skip_time: bool) -> bool:
        """Whether the service would invoke ``arn`` now.

        With ``skip_time``, when nothing else is due, the clock first jumps to the next timer.
        """
        if await self._run_invoked(arn, skip_time) or self.backend.take_wakeup(arn):
            return True  # changed from outside (maybe by another runner's jump), or failed
        if not _suspended_on(self.backend.executions[arn]):
            return True  # new, or its last invocation ended before anything had to wait
        if self.pause_on_callbacks and self.backend.open_callbacks(arn):
            return False
        due = self.backend.next_due(arn)
        if due is None or (not skip_time and due > self.clock.now()):
            return False
        await self.clock.wait_until(due)
        self.backend.fire_due()
        return True

    async def _invoke_once(self, arn: str) -> InvocationOutput:
        execution = self.backend.executions[arn]
        resumed_by = tuple(execution.changed_outside)
        started = self.clock.now()
        event = self.event(arn)
        token = clock_override.set(self.clock.now)
        try:
            raw = await self.handler.invoke_async(
                event, FakeLambdaContext(tenant_id=self._tenant_id), client=self.backend
            )
        finally:
            clock_override.reset(token)
        output = from_wire(raw, InvocationOutput)
        suspended_on: tuple[str, ...] = ()
        if output.status is InvocationStatus.PENDING:
            suspended_on = _suspended_on(execution)
        self.backend.record_invocation(
            arn,
            InvocationRecord(
                index=len(self.backend.invocation_records.get(arn, ())) + 1,
                started=started,
                ended=self.clock.now(),
                status=output.status,
                resumed_by=resumed_by,
                suspended_on=suspended_on,
            ),
        )
        return output

    async def _run_invoked(self, arn: str, skip_time: bool) -> bool:
        """Drive registered targets of pending chained invocations; report any that ended.

        Each target runs as its own execution with the invoke's tenant, and is resumed (not
        restarted) on later calls; while it waits (say, on a callback) the invoke stays
        STARTED, as on the service.
        """
        ended = False
        for pending in self.backend.pending_invokes(arn):
            target = self._target(pending.function_name)
            if target is None:
                continue
            runner = LocalRunner(
                target,
                self.backend,
                functions=self.functions,
                max_invocations=self.max_invocations,
                pause_on_callbacks=self.pause_on_callbacks,
            )
            runner._tenant_id = pending.tenant_id
            key = (arn, pending.operation_id)
            child_arn = self.backend.invoked.get(key)
            if child_arn is None:
                child_arn = self.backend.invoked[key] = self.backend.start_execution(
                    pending.payload
                )
            outcome = await runner.resume(child_arn, skip_time=skip_time)
            if outcome.status is InvocationStatus.SUCCEEDED:
                raw = None if outcome.result is None else json.dumps(outcome.result)
                if raw is not None and len(raw.encode("utf-8")) > _INVOKE_RESULT_LIMIT:
                    error = ErrorObject(
                        message="the invoked function's result is larger than 1 MiB",
                        type="PayloadTooLarge",
                    )
                    self.backend.complete_invoke(arn, pending.operation_id, error=error)
                else:
                    self.backend.complete_invoke(arn, pending.operation_id, result=raw)
            elif outcome.status is InvocationStatus.FAILED:
                error = outcome.error or ErrorObject(message="the invoked execution failed")
                self.backend.complete_invoke(arn, pending.operation_id, error=error)
            else:
                continue  # the target waits; so does the invoke
            ended = True
        return ended

    def _target(self, function_name: str) -> DurableHandler[Any] | None:
        """The registered target for a name, ``name:qualifier`` or (partial) ARN."""
        functions = self.functions
        if function_name in functions:
            return functions[function_name]
        tail = function_name.split(":function:")[-1]  # "name" or "name:qualifier"
        return functions.get(tail) or functions.get(tail.split(":")[0])

    def _result(
        self,
        arn: str,
        output: InvocationOutput | None,
        invocations: int,
        outputs: list[InvocationOutput],
    ) -> ExecutionResult:
        execution = self.backend.executions[arn]
        if output is None:
            output = execution.outcome  # an execution that had ended before this call
        status = output.status if output else _status(execution)
        result: Any = None
        raw = output.result if output else None
        if not raw and execution.result_update is not None:
            raw = execution.result_update.payload
        if raw:
            result = json.loads(raw)
        error = output.error if output else None
        if error is None and execution.result_update is not None:
            error = execution.result_update.error
        operations = tuple(execution.operations.values())
        return ExecutionResult(
            status=status,
            result=result,
            error=error,
            invocations=invocations,
            outputs=tuple(outputs),
            operations=operations,
            arn=arn,
            history=History(operations, self.backend.invocation_records.get(arn, ()), arn=arn),
            open_callbacks=tuple(self.backend.open_callbacks(arn)),
        )


def _suspended_on(execution: MemoryExecution) -> tuple[str, ...]:
    """The operations the service waits on before it invokes the function again."""
    return tuple(
        op.id for op in execution.operations.values() if _WAITING.get(op.type) is op.status
    )


def _ended(execution: MemoryExecution) -> bool:
    return any(
        op.type is OperationType.EXECUTION and op.status.is_terminal
        for op in execution.operations.values()
    )


def _status(execution: MemoryExecution) -> InvocationStatus:
    """How the execution stands, read from its EXECUTION operation."""
    for op in execution.operations.values():
        if op.type is OperationType.EXECUTION and op.status.is_terminal:
            if op.status is OperationStatus.SUCCEEDED:
                return InvocationStatus.SUCCEEDED
            return InvocationStatus.FAILED
    return InvocationStatus.PENDING


def _json_operation(op: Operation) -> dict[str, Any]:
    """An operation as Lambda's JSON event carries it: timestamps in epoch milliseconds."""
    data: dict[str, Any] = to_wire(op)
    for holder, key in (
        (data, "StartTimestamp"),
        (data, "EndTimestamp"),
        (data.get("StepDetails"), "NextAttemptTimestamp"),
        (data.get("WaitDetails"), "ScheduledEndTimestamp"),
    ):
        if holder is not None and key in holder:
            holder[key] = int(holder[key].timestamp() * 1000)
    return data
