"""What every operation needs: updates of its own operation, and calling user code."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from durable_async._identity import OperationIdentity
from durable_async._wire.enums import OperationAction
from durable_async._wire.models import OperationUpdate

if TYPE_CHECKING:
    from durable_async._runtime import InvocationRuntime


#: Set while user code of an operation (a step body, a condition check) runs: durable
#: operations cannot nest inside it, since its result is all that replay knows of it.
running_body: ContextVar[str | None] = ContextVar("durable_async_running_body", default=None)


def update(identity: OperationIdentity, action: OperationAction, **fields: Any) -> OperationUpdate:
    """An update of the operation ``identity`` names, carrying its identity fields."""
    return OperationUpdate(
        id=identity.id,
        type=identity.type,
        action=action,
        parent_id=identity.parent_id,
        name=identity.name,
        sub_type=identity.sub_type,
        **fields,
    )


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns a coroutine (functions, partials, ``__call__``)."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def call_user(rt: InvocationRuntime, func: Callable[..., Any], *args: Any) -> Any:
    """Run user code: ``async`` on the loop, plain in a worker thread (contextvars copied).

    Worker threads come from the SDK's limiter, so a wide ``gather`` of plain steps never
    uses more than its threads. A plain function that returns an awaitable is awaited.
    Cancellation (the invocation winding down before Lambda's timeout) does not wait for
    a thread that is still running: its result is abandoned, as the step re-runs anyway.
    """
    reset = running_body.set(getattr(func, "__name__", None) or repr(func))
    try:
        if is_async_callable(func):
            return await func(*args)
        result = await anyio.to_thread.run_sync(
            functools.partial(func, *args), limiter=rt.limiter, abandon_on_cancel=True
        )
        if inspect.isawaitable(result):
            result = await result
        return result
    finally:
        running_body.reset(reset)
