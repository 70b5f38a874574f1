"""``ctx.create_callback`` and ``ctx.wait_for_callback``: results delivered by other systems.

The service assigns the callback ID when it records the START, so creating a callback
awaits that checkpoint. Its result is read from the operation log; until it arrives the
awaiting branch parks, and the service re-invokes once the callback completes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from durable_async._config import CallbackConfig, StepConfig, WaitForCallbackConfig
from durable_async._error_wire import STEP_ERROR_TYPES
from durable_async._errors import (
    CallbackError,
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    StepError,
)
from durable_async._identity import OperationIdentity, operation_id
from durable_async._operations._common import (
    call_user,
    report_replayed,
    report_start,
    running_body,
    update,
)
from durable_async._operations.step import StepContext
from durable_async._serdes import PassThroughSerDes, SerDes, SerDesContext, deserialize
from durable_async._wire.enums import OperationAction, OperationStatus
from durable_async._wire.models import CallbackOptions, Operation

if TYPE_CHECKING:
    from durable_async._context import DurableContext
    from durable_async._runtime import InvocationRuntime

T = TypeVar("T")
_RAW = PassThroughSerDes()


class Callback(Generic[T]):
    """A callback an external system completes with ``SendDurableExecutionCallback*``."""

    __slots__ = ("_identity", "_rt", "_serdes", "callback_id", "operation_id")

    def __init__(
        self,
        rt: InvocationRuntime,
        identity: OperationIdentity,
        callback_id: str,
        serdes: SerDes[Any] | None,
    ) -> None:
        self._rt = rt
        self._identity = identity
        self.operation_id = identity.id
        #: The ID to hand to the external system.
        self.callback_id = callback_id
        self._serdes = serdes

    def __repr__(self) -> str:
        # Not the ID itself: whoever reads it (in a log line, say) can complete the callback.
        return f"Callback(operation_id={self.operation_id!r}, callback_id=<redacted>)"

    def _answered(self) -> bool:
        op = self._rt.log.get(self.operation_id)
        return op is not None and op.status.is_terminal

    async def result(self) -> T:
        """The callback's result; suspends the invocation until it has arrived.

        Raises ``CallbackFailedError`` if the external system reported a failure and
        ``CallbackTimeoutError`` if it timed out (``error_type`` is ``Callback.Timeout``
        or ``Callback.Heartbeat``).
        """
        rt = self._rt
        # The answer reaches plugins from the checkpoint response that carries it.
        await rt.monitor.park_until(self._answered, self._identity)
        op = rt.log.get(self.operation_id)
        assert op is not None  # park_until returned: the operation has ended
        details = op.callback_details
        if op.status is OperationStatus.SUCCEEDED:
            payload = details.result if details else None
            if payload is None:
                return None  # type: ignore[return-value]
            context = SerDesContext(self.operation_id, rt.arn)
            return await deserialize(self._serdes or _RAW, payload, context)  # type: ignore[no-any-return]
        raise callback_error(op)


def callback_error(op: Operation) -> CallbackError:
    """The error a callback that ended without success raises, from its recorded details."""
    details = op.callback_details
    error = details.error if details else None
    kind: type[CallbackError]
    if op.status is OperationStatus.TIMED_OUT:
        kind, default = CallbackTimeoutError, "callback timed out"
    else:
        kind, default = CallbackFailedError, f"callback ended as {op.status}"
    return kind(
        (error.message if error else None) or default,
        error_type=error.type if error else None,
        data=error.data if error else None,
        stack_trace=error.stack_trace if error else None,
    )


async def create_callback(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    config: CallbackConfig,
) -> Callback[Any]:
    """Replay or start a callback operation and return its handle."""
    if recorded is None or not recorded.status.is_terminal:
        await report_start(rt, identity, is_replayed=recorded is not None)
    else:
        await report_replayed(rt, recorded)
    if recorded is None:
        await rt.batcher.commit(
            update(
                identity,
                OperationAction.START,
                callback_options=CallbackOptions(config.timeout, config.heartbeat_timeout),
            )
        )
        recorded = rt.log.get(identity.id)
    details = recorded.callback_details if recorded is not None else None
    if details is None or not details.callback_id:
        msg = f"the service returned no callback ID for operation {identity.id}"
        raise CallbackError(msg)
    return Callback(rt, identity, details.callback_id, config.serdes)


async def wait_for_callback_body(
    child: DurableContext,
    submitter: Callable[[str, StepContext], Any],
    prefix: str,
    config: WaitForCallbackConfig,
) -> Any:
    """The child context of ``wait_for_callback``: callback, submitter step, result.

    The inner operations are named as AWS's SDK names them; a name so long that they would
    exceed the service's 256 characters is shortened for them (only for them).
    """
    prefix = prefix[: 256 - len("create callback id")]
    callback = await child.create_callback(
        name=f"{prefix}create callback id", config=config.callback_config()
    )

    async def submit(step: StepContext) -> Any:
        # The submitter is the step's body: an operation called in it fails the step.
        body = running_body.get()
        return await call_user(child._rt, submitter, callback.callback_id, step, body=body)

    await child.step(
        submit,
        name=f"{prefix}submitter",
        config=StepConfig(retry_strategy=config.retry_strategy, serdes=config.serdes),
    )
    return await callback.result()


async def surface_callback_failure(
    rt: InvocationRuntime,
    context_operation_id: str,
    child: Callable[[], Coroutine[Any, Any, Any]],
) -> Any:
    """Raise a failed ``wait_for_callback`` as the callback error it is, not as a child's.

    The error is rebuilt from the inner operation that failed (the callback, the child's
    first operation, or the submitter step, its second): the child's recorded failure names
    only the error's class, not the ``error_type`` the callback ended with
    (``Callback.Timeout``, what the external system reported) or the submitter raised, so
    first run and replay raise the same, complete error.
    """
    try:
        return await child()
    except ChildContextError as failure:
        inner = failure.__cause__
        if isinstance(inner, CallbackError):
            op = rt.log.get(operation_id(context_operation_id, 1))
            if (
                op is not None
                and op.status.is_terminal
                and op.status is not OperationStatus.SUCCEEDED
            ):
                raise callback_error(op) from None
            raise inner from None
        if isinstance(inner, StepError) or failure.error_type in STEP_ERROR_TYPES:
            submitter = rt.log.get(operation_id(context_operation_id, 2))
            details = submitter.step_details if submitter is not None else None
            error = details.error if details is not None and details.error else None
            raise CallbackSubmitterError(
                (error.message if error else None) or failure.message or "the submitter failed",
                error_type=error.type if error else failure.error_type,
                data=error.data if error else failure.data,
                stack_trace=error.stack_trace if error else failure.stack_trace,
            ) from failure
        raise
