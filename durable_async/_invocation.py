"""One invocation, start to finish: decode, page in state, run, settle, encode.

The handler runs as a task beside the checkpoint flush task. The invocation ends when
the handler returns or raises, or when every live branch is parked on the service (then
parked operations raise the private suspension signal and the handler unwinds). Before
the output is returned, every task that ran an operation of this invocation has finished
or been cancelled and awaited, and every queued checkpoint has been sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from durable_async._batcher import CheckpointBatcher
from durable_async._client.base import DurableExecutionClient
from durable_async._clock import epoch_millis
from durable_async._context import DurableContext, _current
from durable_async._deadline import (
    Deadline,
    before_hard_stop,
    close_before,
    wait_until_wind_down,
)
from durable_async._error_wire import error_object
from durable_async._errors import (
    BackendError,
    InvalidEventError,
    InvocationTimeoutError,
    SerDesError,
    UnawaitedOperationError,
)
from durable_async._event import (
    check_unique,
    decode_input,
    page_in,
    parse_event,
    updated_operation_ids,
)
from durable_async._failure_log import execution_failed
from durable_async._identity import OperationIdentity
from durable_async._logging import current_log_scope
from durable_async._operations._common import running_body
from durable_async._replay import OperationLog
from durable_async._runtime import InvocationRuntime
from durable_async._suspend import Suspended, SuspensionMonitor
from durable_async._tasks import (
    TaskInfo,
    TaskRegistry,
    cancel_and_settle,
    current_scope,
    current_task_info,
    install_task_factory,
    uninstall_task_factory,
)
from durable_async._wire.converter import to_wire
from durable_async._wire.enums import InvocationStatus, OperationAction, OperationType
from durable_async._wire.models import (
    ErrorObject,
    InvocationOutput,
    OperationUpdate,
)

#: Lambda's response limit, less room for the envelope (as AWS's SDK reserves).
RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024 - 50

if TYPE_CHECKING:
    import anyio

    from durable_async._plugins import PluginDispatcher

Handler = Callable[[Any, DurableContext], Awaitable[Any]]
T = TypeVar("T")


def _output(
    status: InvocationStatus, *, result: str | None = None, error: ErrorObject | None = None
) -> dict[str, Any]:
    if error is None:
        # The common outputs, built directly (what the converter makes of them): the
        # converter's generic path is a measurable part of a warm invocation's fixed cost.
        return (
            {"Status": status.value}
            if result is None
            else {"Status": status.value, "Result": result}
        )
    return to_wire(InvocationOutput(status=status, result=result, error=error))  # type: ignore[no-any-return]


def _only_suspension(error: BaseException) -> bool:
    """Whether ``error`` is the suspension signal, possibly grouped by a ``TaskGroup``."""
    if isinstance(error, Suspended):
        return True
    if isinstance(error, BaseExceptionGroup):
        return any(_only_suspension(e) for e in error.exceptions)
    return False


class Invocation:
    """Runs one durable invocation of ``handler``."""

    def __init__(
        self,
        handler: Handler,
        *,
        client: DurableExecutionClient,
        logger: logging.Logger,
        limiter: Callable[[], anyio.CapacityLimiter],
        plugins: tuple[object, ...] = (),
        pipelined: bool = False,
    ) -> None:
        self._handler = handler
        self._pipelined = pipelined
        self._plugins = plugins
        self._client = client
        self._logger = logger
        self._limiter = limiter

    async def run(self, event: Any, lambda_context: Any) -> dict[str, Any]:
        """Return the invocation output for ``event``; raise to make Lambda retry."""
        arn, token, raw_operations, marker = parse_event(event)
        updated = updated_operation_ids(event)
        seconds_left = _seconds_left(lambda_context)
        loop = asyncio.get_running_loop()
        deadline = None if seconds_left is None else Deadline(seconds_left, loop)
        log = OperationLog()
        try:
            log.apply_raw(raw_operations)
        except Exception as exc:
            msg = f"InitialExecutionState.Operations is malformed: {type(exc).__name__}: {exc}"
            raise InvalidEventError(msg) from None
        try:
            pages = (
                await before_hard_stop(
                    page_in(self._client, arn, token, marker, log, self._logger), deadline
                )
                if marker
                else 0
            )
        except BackendError as exc:
            if exc.retryable:
                raise
            return _output(InvocationStatus.FAILED, error=error_object(exc))
        check_unique(len(raw_operations) + pages, log, raw_operations)

        try:
            input_value = decode_input(log)
        except SerDesError as exc:
            return _output(InvocationStatus.FAILED, error=error_object(exc))

        plugins: PluginDispatcher | None = None
        if self._plugins:
            # Imported only when plugins are registered: nothing of it at cold start.
            from durable_async._plugins import PluginDispatcher

            plugins = PluginDispatcher.for_invocation(
                self._plugins,
                arn,
                lambda_context,
                first=not log.has_history,
                log=log,
                updated_operation_ids=updated,
            )
        tasks = TaskRegistry()
        monitor = SuspensionMonitor(tasks)
        batcher = CheckpointBatcher(
            self._client, arn, token, log, monitor, self._logger, context=_sdk_context()
        )
        if plugins is not None:
            batcher.merge_watcher = plugins.merge_watcher()
        rt = InvocationRuntime(
            arn=arn,
            log=log,
            batcher=batcher,
            monitor=monitor,
            tasks=tasks,
            limiter=self._limiter,
            lambda_context=lambda_context,
            logger=self._logger,
            plugins=plugins,
            pipelined=self._pipelined,
        )
        if plugins is None:
            return await self._run(rt, input_value, deadline)
        return await plugins.around_invocation(lambda: self._run(rt, input_value, deadline))

    async def _run(
        self, rt: InvocationRuntime, input_value: Any, deadline: Deadline | None
    ) -> dict[str, Any]:
        log = rt.log
        ctx = DurableContext(rt, replaying=log.has_history)
        loop = asyncio.get_running_loop()
        if deadline is not None:
            rt.batcher.on_call_latency = deadline.observe_call
        install_task_factory(loop)
        try:
            try:
                handler_task = self._start_handler(ctx, input_value)
                await self._until_done(rt, handler_task, deadline)
            except BaseException:
                rt.monitor.close()
                await _cancel_all(rt, _flusher_of(rt))
                # Cleanup code of the cancelled tasks may have queued the first update.
                await cancel_and_settle(_flusher_of(rt))
                rt.never_awaited()
                raise
            # The handler has ended: tasks it left behind are cancelled, and operations
            # their cleanup code calls are refused (they raise the suspension signal).
            rt.monitor.close()
            await _cancel_all(rt, [])
        finally:
            uninstall_task_factory(loop)
        return await self._finish(rt, handler_task, deadline)

    def _start_handler(self, ctx: DurableContext, input_value: Any) -> asyncio.Task[Any]:
        """Run the handler in a task of its own, the root of the invocation's tasks."""
        root = TaskInfo(ctx._rt.tasks, "")
        ctx._owner = root
        context = contextvars.copy_context()
        context.run(_current.set, ctx)
        context.run(current_log_scope.set, ctx)
        context.run(current_task_info.set, root)
        context.run(current_scope.set, "")
        # A handler run from inside another's step body (a nested invocation) is not in it.
        context.run(running_body.set, None)
        # Created directly, not through the loop's task factory: the handler task is the
        # root of the invocation's tasks, not a task spawned inside it.
        task = asyncio.Task(
            self._call_handler(input_value, ctx), name="durable_async handler", context=context
        )
        ctx._rt.tasks.add(task)
        ctx._rt.monitor.root = task
        return task

    async def _call_handler(self, input_value: Any, ctx: DurableContext) -> Any:
        result = self._handler(input_value, ctx)
        if not inspect.isawaitable(result):
            # Only a plain wrapper around an ``async def`` gets here (``durable_execution``
            # checks), one that did not hand back the coroutine.
            msg = (
                "the durable handler returned "
                f"{type(result).__name__}, not the coroutine of its `async def`"
            )
            raise TypeError(msg)
        return await result

    @staticmethod
    async def _until_done(
        rt: InvocationRuntime, handler_task: asyncio.Task[Any], deadline: Deadline | None
    ) -> None:
        """Wait for the handler, suspending it once all is parked or time runs out."""
        quiet = rt.monitor.quiescent
        try:
            await wait_until_wind_down(handler_task, quiet, deadline)
            if not handler_task.done():
                rt.monitor.release()
                if not quiet.done():
                    rt.deadline_left_nothing_pending = rt.monitor.parked == 0
                    rt.logger.warning(
                        "Lambda's timeout is near: winding the invocation down; "
                        "unfinished steps are taken up again in the next invocation (an "
                        "at-most-once attempt is not re-run: it fails or retries per its "
                        "strategy)",
                        extra={"executionArn": rt.arn},
                    )
                    await _cancel_all(rt, [])
                # Parked operations now raise the suspension signal and the handler unwinds.
                # Tasks left waiting on siblings that ended with it (an event never set)
                # are cancelled once nothing is busy; code that swallows the signal and
                # keeps busy gets until the deadline.
                drained = _sdk_task(rt.monitor.wait_drained(), "durable_async drain")
                try:
                    await asyncio.wait(
                        (handler_task, drained),
                        timeout=None if deadline is None else deadline.until_wind_down(),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    drained.cancel()
                    await asyncio.wait((drained,))
                if not handler_task.done():
                    await _cancel_all(rt, [])
        except BaseException:
            handler_task.cancel()
            raise
        finally:
            quiet.cancel()

    async def _finish(
        self,
        rt: InvocationRuntime,
        handler_task: asyncio.Task[Any],
        deadline: Deadline | None,
    ) -> dict[str, Any]:
        batcher = rt.batcher
        output: dict[str, Any] | None = None
        cancelled = handler_task.cancelled()
        error = None if cancelled else handler_task.exception()
        if rt.fatal is not None:
            # Decided before anything else, so no success is ever committed for it.
            output = _output(InvocationStatus.FAILED, error=error_object(rt.fatal))
        elif rt.monitor.released:
            # Suspension was signalled (or the deadline came): work is pending, whatever
            # the handler made of it.
            if not cancelled and (error is None or not _only_suspension(error)):
                rt.swallowed_suspension(None, "the handler")
            output = _output(InvocationStatus.PENDING)
        elif cancelled or isinstance(error, asyncio.CancelledError):
            # Nobody in the SDK cancelled it: a CancelledError escaped user code.
            cancelled_error = ErrorObject(
                message="the handler raised CancelledError", type="asyncio.CancelledError"
            )
            output = _output(InvocationStatus.FAILED, error=cancelled_error)
        elif error is not None and _only_suspension(error):
            output = _output(InvocationStatus.PENDING)
        elif error is None and (unawaited := rt.never_awaited()):
            output = self._failed(_unawaited_error(unawaited))
        elif error is None:
            output = await self._succeeded(rt, handler_task.result())
        elif isinstance(error, Exception):
            execution_failed(rt.arn, error)
            output = self._failed(error)
        rt.never_awaited()  # closes what was never awaited, so no warning is left behind
        await close_before(batcher, deadline)
        if error is not None and output is None:
            raise error  # KeyboardInterrupt, SystemExit and kin
        if batcher.failure is not None:
            if batcher.failure.retryable:
                raise batcher.failure
            return _output(InvocationStatus.FAILED, error=error_object(batcher.failure))
        if batcher.revoked:
            return _output(InvocationStatus.PENDING)
        if rt.deadline_left_nothing_pending:
            msg = (
                "Lambda's timeout came while steps were still running and nothing else was "
                "pending; their checkpoints are saved and the next invocation takes them up "
                "again (an at-most-once attempt is not re-run: it fails or retries per its "
                "strategy)"
            )
            raise InvocationTimeoutError(msg)
        assert output is not None
        return output

    async def _succeeded(self, rt: InvocationRuntime, result: Any) -> dict[str, Any]:
        if inspect.isawaitable(result):
            close = getattr(result, "close", None)
            if callable(close):
                close()  # never awaited: closed here so no RuntimeWarning follows it
            error = SerDesError(
                f"the handler returned {type(result).__name__} {_qualname(result)} instead of "
                "its value; await it (`return await ...`)"
            )
            return self._failed(error)
        try:
            encoded = json.dumps(result)
        except (TypeError, ValueError) as exc:
            error = SerDesError(f"the handler's result is not JSON-serializable: {exc}")
            return self._failed(error)
        if len(encoded) * 4 > RESPONSE_LIMIT_BYTES and len(encoded.encode()) > RESPONSE_LIMIT_BYTES:
            update = _execution_update(OperationAction.SUCCEED, payload=encoded)
            if not await _commit_quietly(rt, update):
                return _output(InvocationStatus.PENDING)
            return _output(InvocationStatus.SUCCEEDED, result="")
        return _output(InvocationStatus.SUCCEEDED, result=encoded)

    @staticmethod
    def _failed(error: Exception) -> dict[str, Any]:
        # ``error_object`` fits the error within the service's 32 KiB, far below Lambda's
        # response limit, so a failure always travels in the output itself.
        return _output(InvocationStatus.FAILED, error=error_object(error))


def _sdk_context() -> contextvars.Context:
    """A context for a task of the SDK's own: never one of the invocation's tasks."""
    context = contextvars.copy_context()
    context.run(current_task_info.set, None)
    return context


def _sdk_task(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """A task of the SDK's own: never one of the invocation's, even in a nested run."""
    return asyncio.get_running_loop().create_task(coro, name=name, context=_sdk_context())


def _flusher_of(rt: InvocationRuntime) -> list[asyncio.Task[Any]]:
    flusher = rt.batcher.flusher
    return [] if flusher is None else [flusher]


def _unawaited_error(unawaited: list[OperationIdentity]) -> UnawaitedOperationError:
    names = ", ".join(f"{op.type} {op.name or op.id!r}" for op in unawaited[:5])
    more = f" and {len(unawaited) - 5} more" if len(unawaited) > 5 else ""
    return UnawaitedOperationError(
        f"the handler ended while {len(unawaited)} operation(s) it called were never "
        f"awaited: {names}{more}; await every operation (or gather them)"
    )


def _qualname(awaitable: Any) -> str:
    name = getattr(awaitable, "__qualname__", None)
    return repr(name) if isinstance(name, str) else ""


def _seconds_left(lambda_context: Any) -> float | None:
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        millis = remaining()
    except Exception:  # a foreign context object: no deadline then
        return None
    if not isinstance(millis, int | float) or not math.isfinite(millis):
        return None  # no usable deadline: run without one
    return millis / 1000


def _execution_update(action: OperationAction, **fields: Any) -> OperationUpdate:
    return OperationUpdate(
        id=f"execution-result-{epoch_millis()}",
        type=OperationType.EXECUTION,
        action=action,
        **fields,
    )


async def _commit_quietly(rt: InvocationRuntime, update: OperationUpdate) -> bool:
    try:
        await rt.batcher.commit(update)
    except (Suspended, BackendError):
        return False
    return True


async def _cancel_all(rt: InvocationRuntime, extra: list[asyncio.Task[Any]]) -> None:
    current = asyncio.current_task()
    await cancel_and_settle(t for t in (*rt.tasks, *extra) if t is not current)


__all__ = ["ErrorObject", "Handler", "Invocation", "RESPONSE_LIMIT_BYTES"]
