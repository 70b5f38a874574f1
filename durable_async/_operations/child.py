"""``ctx.run_in_child_context``: a body with its own ID namespace, checkpointed as one result.

A result too large to store (over the per-operation limit) is not stored: the CONTEXT
operation is marked ``ReplayChildren`` and its body re-runs on replay, rebuilding the
result from its children's checkpoints, as AWS's SDK does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from inspect import isawaitable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, NoReturn

from durable_async._config import ChildConfig
from durable_async._error_wire import error_object, rebuild_failure
from durable_async._errors import (
    BackendError,
    ChildContextError,
    DurableOperationError,
    NonDeterministicExecutionError,
    SerDesError,
)
from durable_async._failure_log import operation_failed
from durable_async._identity import OperationIdentity
from durable_async._operations._common import body_hooks, report_end, report_start, update
from durable_async._serdes import PAYLOAD_LIMIT_BYTES, SerDesContext, deserialize, serialize
from durable_async._suspend import Suspended
from durable_async._wire.enums import OperationAction, OperationStatus, OperationSubType
from durable_async._wire.models import ContextOptions, Operation

if TYPE_CHECKING:
    from durable_async._context import DurableContext
    from durable_async._runtime import InvocationRuntime

#: The options of a child's SUCCEED, shared (frozen): one object fewer per map branch.
_REPLAY_CHILDREN = ContextOptions(replay_children=True)
_RESULT_STORED = ContextOptions(replay_children=False)

#: Errors that say the invocation itself is broken; a child records no failure for them.
_NOT_CHILD_FAILURES = (NonDeterministicExecutionError, BackendError)


async def run_child(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    recorded: Operation | None,
    parent: DurableContext,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    config: ChildConfig,
    *,
    match: bool = False,
) -> Any:
    """Replay or run a child context and return its result.

    ``match``: first match ``identity`` against the history (``recorded`` is then
    ignored), in the task that runs the child: a batch branch's task runs this coroutine
    directly, with no wrapper of its own.
    """
    if match:
        identity, recorded = parent._check_identity(identity)
    replay_children = False
    if recorded is not None:
        details = recorded.context_details
        status = recorded.status
        if status is OperationStatus.SUCCEEDED:
            if details is not None and details.replay_children:
                replay_children = True
            else:
                payload = details.result if details else None
                if payload is None:
                    return None
                context = SerDesContext(identity.id, rt.arn)
                return await deserialize(config.serdes, payload, context)
        elif status is OperationStatus.FAILED:
            raise rebuild_failure(ChildContextError, details.error if details else None)
        elif status is not OperationStatus.STARTED:
            msg = f"child context {identity.name or identity.id} ended as {status}"
            raise ChildContextError(msg, error_type=f"Context.{status}")
    else:
        rt.batcher.enqueue(update(identity, OperationAction.START))

    if not replay_children:
        await report_start(rt, identity, is_replayed=recorded is not None)
    child = parent._child(identity.id, replaying=recorded is not None)
    try:
        if rt.plugins is None:
            # No hooks to hold: a large map has this frame suspended in every branch.
            child._bind()
            try:
                body = start_body(identity, func, child, args)
                del func, args  # the body holds what it needs
                result = await body
            finally:
                child._unbind()
        else:
            async with body_hooks(
                rt,
                identity,
                is_replayed=recorded is not None,
                attempt=None if recorded is not None else 1,
                replay_children=replay_children,
            ):
                child._bind()
                try:
                    result = await start_body(identity, func, child, args)
                finally:
                    child._unbind()
    except _NOT_CHILD_FAILURES:
        raise
    except Exception as error:
        if rt.monitor.released:
            _refuse_completion(rt, identity)
        if not isinstance(error, DurableOperationError):
            # Raised by the body's own code; an operation's failure was logged where it failed.
            fields: dict[str, object] = {"executionArn": rt.arn, "operationId": identity.id}
            if identity.parent_id:
                fields["parentId"] = identity.parent_id
            if identity.name:
                fields["operationName"] = identity.name
            operation_failed("child context", identity.name, identity.id, fields, error)
        recorded_error = error_object(error)
        if not replay_children:
            await rt.batcher.commit(update(identity, OperationAction.FAIL, error=recorded_error))
            await report_end(rt, identity, OperationStatus.FAILED, recorded_error)
        raise rebuild_failure(ChildContextError, recorded_error, error)  # noqa: B904

    if rt.monitor.released:
        _refuse_completion(rt, identity)
    try:
        # Made here, not held through the body: a map has every branch's body in flight.
        serdes_context = SerDesContext(identity.id, rt.arn)
        payload = await serialize(config.serdes, result, serdes_context)
        value = (
            None if payload is None else await deserialize(config.serdes, payload, serdes_context)
        )
    except SerDesError as error:
        if not replay_children:
            failed = update(identity, OperationAction.FAIL, error=error_object(error))
            await rt.batcher.commit(failed)
        raise
    if replay_children:
        return value
    stored = payload
    too_large = payload is not None and (
        len(payload) * 4 > PAYLOAD_LIMIT_BYTES
        and len(payload.encode("utf-8")) > PAYLOAD_LIMIT_BYTES
    )
    if too_large:
        stored = config.summary_generator(result) if config.summary_generator else ""
    await rt.batcher.commit(
        update(
            identity,
            OperationAction.SUCCEED,
            payload=stored,
            context_options=_REPLAY_CHILDREN if too_large else _RESULT_STORED,
        )
    )
    await report_end(rt, identity, OperationStatus.SUCCEEDED)
    return value


def start_body(
    identity: OperationIdentity,
    func: Callable[..., Any],
    ctx: DurableContext,
    args: tuple[Any, ...],
) -> Awaitable[Any]:
    """Call a child's (or a FLAT branch's) body function; what it returns, to await.

    Plain functions that return an awaitable (``lambda c: sub(c, x)``) are bodies as good
    as ``async def`` ones, so a plain function is refused (``TypeError``) only by what it
    returns. The type test comes first: bodies are coroutines, and map branches are many.
    """
    body = func(ctx, *args)
    if type(body) is not CoroutineType and not isawaitable(body):
        raise TypeError(_not_awaitable(identity, func, body))
    return body


def _not_awaitable(identity: OperationIdentity, func: Callable[..., Any], returned: object) -> str:
    """What to say of a child's body that returned ``returned``, which cannot be awaited."""
    what = _OPERATIONS.get(identity.sub_type or "", "ctx.run_in_child_context")
    name = getattr(func, "__name__", None) or repr(func)
    got = "None" if returned is None else type(returned).__name__
    return f"{what} needs an async function (or one returning an awaitable); {name} returned {got}"


#: The operation a child of each subtype is run for, to name it in an error.
_OPERATIONS: dict[str, str] = {
    OperationSubType.MAP_ITERATION: "ctx.map",
    OperationSubType.PARALLEL_BRANCH: "ctx.parallel",
}


def _refuse_completion(rt: InvocationRuntime, identity: OperationIdentity) -> NoReturn:
    """The body went on past a suspension it swallowed: complete nothing, suspend."""
    rt.swallowed_suspension(
        identity.id, f"the body of child context {identity.name or identity.id!r}"
    )
    raise Suspended
