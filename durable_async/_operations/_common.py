"""What every operation needs: updates of its own operation, and calling user code."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from durable_async._error_wire import error_object
from durable_async._errors import ValidationError
from durable_async._identity import OperationIdentity
from durable_async._tasks import current_scope
from durable_async._wire.enums import OperationAction, OperationStatus
from durable_async._wire.models import ErrorObject, Operation, OperationUpdate

if TYPE_CHECKING:
    from durable_async._runtime import InvocationRuntime


class RunningBody:
    """User code of an operation (a step body, a condition check) while it runs.

    Durable operations cannot nest inside it, since its result is all that replay knows of
    it. Calling one is a programming error that no retry can fix, so it is remembered here
    (the body may catch the error) and the operation fails at once, without retrying.
    """

    __slots__ = ("misuse", "name", "plugin_hook")

    def __init__(self, name: str, *, plugin_hook: bool = False) -> None:
        self.name = name
        self.misuse: ValidationError | None = None
        #: An instrumentation plugin's hook, not an operation's body (see ``misuse_in_body``).
        self.plugin_hook = plugin_hook


running_body: ContextVar[RunningBody | None] = ContextVar(
    "durable_async_running_body", default=None
)


_BODY_SCOPE = "<body>"


def misuse_in_body() -> ValidationError | None:
    """The error for an operation called inside a running body (remembered by the body)."""
    body = running_body.get()
    if body is None:
        return None
    if body.plugin_hook:
        # Hooks do not fire for replayed history, so an operation one started would shift
        # the IDs of the handler's own on replay; from the checkpoint flush it would wait
        # for the flush that runs the hook. Plugins observe; they take no part.
        return ValidationError(
            f"durable operations cannot run inside an instrumentation plugin's hook "
            f"({body.name} is running)"
        )
    body.misuse = ValidationError(
        f"durable operations cannot run inside a step body or condition check "
        f"({body.name!r} is running); group operations with run_in_child_context instead"
    )
    return body.misuse


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


def not_callable(
    what: str,
    value: object,
    right: str,
    wrong: str,
    lead: str = "pass the function and its arguments",
) -> str:
    """What to say of ``value``, given to ``what`` where it takes a function.

    A coroutine (the function called instead of passed, a common slip) is closed, so that
    neither a "never awaited" warning nor, for an operation's coroutine, an
    ``UnawaitedOperationError`` follows; the message says what to do (``lead``) and shows
    the call both ways (``right`` and ``wrong``, with ``{f}`` for the function's name).
    Called only once ``callable()`` has said no: the common path pays nothing for it.
    """
    if inspect.isawaitable(value):
        got = type(value).__name__
        name = "f"
        if inspect.iscoroutine(value) and inspect.getcoroutinestate(value) == "CORO_CREATED":
            frame = value.cr_frame
            module = "" if frame is None else str(frame.f_globals.get("__name__", ""))
            if not module.startswith("durable_async."):  # an operation's: not the user's name
                name = value.__name__
                got = f"{got} {name}(...)"
            value.close()  # never awaited, and never will be: no RuntimeWarning for it
        return (
            f"{what} needs a function, not an awaitable ({got}): {lead}, "
            f"{right.format(f=name)}, not {wrong.format(f=name)}"
        )
    return f"{what} needs a function, got {type(value).__name__}"


def is_async_callable(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` returns a coroutine (functions, partials, ``__call__``)."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def call_user(
    rt: InvocationRuntime, func: Callable[..., Any], *args: Any, body: RunningBody | None = None
) -> Any:
    """Run user code: ``async`` on the loop, plain in a worker thread (contextvars copied).

    Worker threads come from the SDK's limiter, so a wide ``gather`` of plain steps never
    uses more than its threads. A plain function that returns an awaitable is awaited.
    Cancellation (the invocation winding down before Lambda's timeout) does not wait for
    a thread that is still running: its result is abandoned, as the step re-runs anyway.
    """
    if body is None:
        body = RunningBody(getattr(func, "__name__", None) or repr(func))
    reset = running_body.set(body)
    # Tasks a body creates are counted apart: bodies do not run on replay, so their tasks
    # must not shift the namespaces of tasks the orchestration code creates after them.
    reset_scope = current_scope.set(_BODY_SCOPE)
    try:
        with rt.monitor.running_body():
            if is_async_callable(func):
                return await func(*args)
            import anyio.to_thread  # only plain bodies need it: async-only handlers skip anyio

            result = await anyio.to_thread.run_sync(
                functools.partial(func, *args), limiter=rt.limiter, abandon_on_cancel=True
            )
            if inspect.isawaitable(result):
                result = await result
            return result
    finally:
        current_scope.reset(reset_scope)
        running_body.reset(reset)


async def until_ready(rt: InvocationRuntime, identity: OperationIdentity) -> None:
    """Park until the service marks the operation ``READY`` for its next attempt.

    A retry or poll that falls due while sibling branches still run (a checkpoint
    response shows it ``READY``) goes on in this invocation; otherwise it suspends.
    """

    def due() -> bool:
        op = rt.log.get(identity.id)
        return op is not None and op.status is OperationStatus.READY

    await rt.monitor.park_until(due, identity)


async def report_start(
    rt: InvocationRuntime, identity: OperationIdentity, *, is_replayed: bool
) -> None:
    """Tell instrumentation plugins an operation begins (or resumes) in this invocation."""
    if rt.plugins is not None:
        from durable_async._plugin_types import OperationStartInfo

        await rt.plugins.operation_event(
            "on_operation_start",
            OperationStartInfo,
            identity,
            OperationStatus.STARTED,
            is_replayed=is_replayed,
            attempt=None,
        )


class BodyHooks:
    """``on_user_function_start`` / ``_end`` around one run of user code other than a step's.

    As AWS's SDK reports them for a child context's body (map items and parallel branches
    among them; attempt 1 on the first run, None when it runs again: a started context
    resumed, or a large result rebuilt, ``is_replay_children``) and for a condition check
    (its attempt). A body cut short by suspension or cancellation ends ``INCOMPLETE``; it
    runs again later.
    """

    __slots__ = ("_attempt", "_identity", "_replayed", "_replay_children", "_rt")

    def __init__(
        self,
        rt: InvocationRuntime,
        identity: OperationIdentity,
        *,
        is_replayed: bool,
        attempt: int | None,
        replay_children: bool = False,
    ) -> None:
        self._rt = rt
        self._identity = identity
        self._replayed = is_replayed
        self._replay_children = replay_children
        self._attempt = attempt

    async def __aenter__(self) -> None:
        plugins = self._rt.plugins
        if plugins is not None and plugins.wants("on_user_function_start"):
            from durable_async._plugin_types import UserFunctionStartInfo

            await plugins.operation_event(
                "on_user_function_start",
                UserFunctionStartInfo,
                self._identity,
                OperationStatus.STARTED,
                is_replayed=self._replayed,
                attempt=self._attempt,
                is_replay_children=self._replay_children,
            )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        plugins = self._rt.plugins
        if plugins is None or not plugins.wants("on_user_function_end"):
            return
        from durable_async._plugin_types import UserFunctionEndInfo, UserFunctionOutcome

        if error is None:
            outcome, failure = UserFunctionOutcome.SUCCEEDED, None
        elif isinstance(error, Exception):
            outcome, failure = UserFunctionOutcome.FAILED, error_object(error)
        else:
            outcome, failure = UserFunctionOutcome.INCOMPLETE, None
        await plugins.operation_event(
            "on_user_function_end",
            UserFunctionEndInfo,
            self._identity,
            OperationStatus.STARTED,
            is_replayed=self._replayed,
            attempt=self._attempt,
            is_replay_children=self._replay_children,
            outcome=outcome,
            error=failure,
        )


#: What ``body_hooks`` gives when no plugin is registered: one shared, stateless no-op.
_NO_HOOKS: contextlib.nullcontext[None] = contextlib.nullcontext()


def body_hooks(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    *,
    is_replayed: bool,
    attempt: int | None,
    replay_children: bool = False,
) -> contextlib.AbstractAsyncContextManager[None]:
    """``BodyHooks`` for a run of user code, or a shared no-op when no plugin is registered.

    A large map runs a child body per item: without plugins they cost nothing new.
    """
    if rt.plugins is None:
        return _NO_HOOKS
    return BodyHooks(
        rt,
        identity,
        is_replayed=is_replayed,
        attempt=attempt,
        replay_children=replay_children,
    )


async def report_replayed(rt: InvocationRuntime, recorded: Operation) -> None:
    """Tell instrumentation plugins of a terminal operation replay reached.

    Only one that another party ended while the execution was suspended (a wait, a
    callback, an invoke) is reported, as ended; replayed history is not.
    """
    if rt.plugins is not None:
        await rt.plugins.replayed(recorded)


async def report_end(
    rt: InvocationRuntime,
    identity: OperationIdentity,
    status: OperationStatus,
    error: ErrorObject | None = None,
    *,
    attempt: int | None = None,
) -> None:
    """Tell instrumentation plugins an operation ended, as this invocation saw it end."""
    if rt.plugins is not None:
        from durable_async._plugin_types import OperationEndInfo

        await rt.plugins.operation_event(
            "on_operation_end",
            OperationEndInfo,
            identity,
            status,
            is_replayed=False,
            attempt=attempt,
            error=error,
        )
