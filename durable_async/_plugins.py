"""Running an invocation's plugins: which hooks each defines, when each fires, and what it sees.

A hook may be ``async def`` (it is awaited on the loop, by the task whose event it reports,
so a slow hook delays only that task). A hook that raises is logged on
``durable_async.plugins`` and ignored: a plugin never changes an execution's outcome. The
hooks and their infos are described in ``_plugin_types``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from durable_async._clock import utc_now
from durable_async._error_wire import error_object
from durable_async._identity import OperationIdentity
from durable_async._operations._common import RunningBody, running_body
from durable_async._tasks import current_task_info
from durable_async._wire.converter import from_wire
from durable_async._wire.enums import OperationStatus, OperationType
from durable_async._wire.models import ErrorObject, Operation

if TYPE_CHECKING:
    from durable_async._plugin_changes import MergeWatcher
    from durable_async._replay import OperationLog

from durable_async._plugin_types import (
    HOOK_NAMES,
    DurableInstrumentationPlugin,
    InvocationEndInfo,
    InvocationStartInfo,
    InvocationStatus,
    OperationEndInfo,
    OperationInfo,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
    is_factory,
)

_logger = logging.getLogger("durable_async.plugins")


def _hook(plugin: object, name: str) -> Any:
    """``plugin``'s hook ``name``, or None when absent or the base class's no-op."""
    method = getattr(plugin, name, None)
    if not callable(method):
        return None
    if getattr(method, "__func__", None) is getattr(DurableInstrumentationPlugin, name):
        return None
    return method


def _describe(plugin: object) -> str:
    return type(plugin).__qualname__


class PluginDispatcher:
    """One invocation's plugins: calls their hooks, awaits async ones, contains failures.

    Exists only when a plugin is registered; call sites check ``rt.plugins is not None``.
    """

    __slots__ = ("_attempt_starts", "_ended", "_hooks", "_log", "_updated", "start_info")

    def __init__(
        self,
        entries: Sequence[object],
        start_info: InvocationStartInfo,
        log: OperationLog | None = None,
        updated_operation_ids: Iterable[str] = (),
    ) -> None:
        self.start_info = start_info
        #: What the service has recorded, for the infos' times and results.
        self._log = log
        #: Operations changed while the execution was suspended whose end (if they ended)
        #: is still to be reported: each leaves the set when it is.
        updated = tuple(updated_operation_ids)
        self._updated = set(updated)
        #: Of those, the ones already ended as the invocation starts, in the input's order:
        #: what is left of them unreported when it ends, replay never reached.
        self._ended = tuple(
            op.id
            for op_id in updated
            if log is not None
            and (op := log.get(op_id)) is not None
            and op.status.is_terminal
            and op.type is not OperationType.EXECUTION
        )
        #: When each run of user code in progress started, by operation ID and attempt.
        self._attempt_starts: dict[tuple[str, int | None], datetime] = {}
        plugins: list[object] = []
        for entry in entries:
            if not is_factory(entry):
                plugins.append(entry)
                continue
            try:
                plugin = entry.create_plugin(start_info)  # type: ignore[attr-defined]
            except Exception:
                _logger.exception("plugin factory %s raised; plugin skipped", _describe(entry))
                continue
            if plugin is None:
                _logger.error("plugin factory %s returned None; skipped", _describe(entry))
                continue
            plugins.append(plugin)
        self._hooks: dict[str, list[tuple[object, Any]]] = {}
        for name in HOOK_NAMES:
            bound = [(p, h) for p in plugins if (h := _hook(p, name)) is not None]
            if bound:
                self._hooks[name] = bound

    @classmethod
    def for_invocation(
        cls,
        entries: Sequence[object],
        arn: str,
        lambda_context: Any,
        *,
        first: bool,
        log: OperationLog | None = None,
        updated_operation_ids: Iterable[str] = (),
    ) -> PluginDispatcher:
        """The dispatcher of one invocation of the execution ``arn``."""
        execution = log.execution if log is not None else None
        start = InvocationStartInfo(
            execution_arn=arn,
            request_id=getattr(lambda_context, "aws_request_id", None),
            is_first_invocation=first,
            execution_start_time=execution.start_timestamp if execution is not None else None,
        )
        return cls(entries, start, log, updated_operation_ids)

    async def around_invocation(
        self, run: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Run an invocation between its start and end hooks; ``run`` returns its output.

        The end hook gets the output's status, or ``RETRY`` when the invocation raises (so
        that Lambda retries it).
        """
        await self.emit("on_invocation_start", self.start_info)
        try:
            output = await run()
        except BaseException as exc:
            await self._unreached_updates()
            await self.emit("on_invocation_end", self._end_info(InvocationStatus.RETRY, exc))
            raise
        await self._unreached_updates()
        error = output.get("Error")
        await self.emit(
            "on_invocation_end",
            self._end_info(
                InvocationStatus(output["Status"]),
                from_wire(error, ErrorObject) if error is not None else None,
            ),
        )
        return output

    def _end_info(
        self, status: InvocationStatus, error: ErrorObject | BaseException | None
    ) -> InvocationEndInfo:
        start = self.start_info
        return InvocationEndInfo(
            execution_arn=start.execution_arn,
            request_id=start.request_id,
            is_first_invocation=start.is_first_invocation,
            execution_start_time=start.execution_start_time,
            status=status,
            error=error_object(error) if isinstance(error, BaseException) else error,
        )

    def wants(self, hook: str) -> bool:
        """Whether any plugin defines ``hook`` (to skip building its info otherwise)."""
        return hook in self._hooks

    async def operation_event(
        self,
        hook: str,
        info_type: type[OperationInfo],
        identity: OperationIdentity,
        status: OperationStatus,
        *,
        is_replayed: bool,
        attempt: int | None,
        **extra: Any,
    ) -> None:
        """Build an operation info of ``info_type`` for ``identity`` and emit ``hook``."""
        if hook not in self._hooks:
            return
        if issubclass(info_type, UserFunctionStartInfo | UserFunctionEndInfo):
            self._time_attempt(info_type, identity.id, attempt, extra)
        recorded = self._log.get(identity.id) if self._log is not None else None
        if recorded is not None:
            extra.setdefault("start_time", recorded.start_timestamp)
            extra.setdefault("end_time", recorded.end_timestamp)
            extra.setdefault("result", recorded.recorded_result)
        info = info_type(
            operation_id=identity.id,
            operation_type=identity.type,
            sub_type=identity.sub_type,
            name=identity.name,
            parent_id=identity.parent_id,
            status=status,
            is_replayed=is_replayed,
            attempt=attempt,
            **extra,
        )
        await self.emit(hook, info)

    def _time_attempt(
        self,
        info_type: type[OperationInfo],
        operation_id: str,
        attempt: int | None,
        extra: dict[str, Any],
    ) -> None:
        """Give a run of user code its own wall-clock times, as AWS's attempt infos have.

        The operation's recorded times would be the same for every attempt of a step.
        """
        now = utc_now()
        key = (operation_id, attempt)
        if info_type is UserFunctionStartInfo:
            self._attempt_starts[key] = now
            extra.update(start_time=now, end_time=None)
        else:
            extra.update(start_time=self._attempt_starts.pop(key, None), end_time=now)
        extra.setdefault("result", None)

    async def replayed(self, operation: Operation) -> None:
        """Report the end of ``operation``, reached by replay, if it ended while suspended.

        Another party ended it (a wait elapsed, a callback was answered, an invoke
        finished) after the last invocation saw it, so no invocation has reported its end:
        this one does, once, as an update rather than as replayed history.
        """
        if not self.take_update(operation.id):
            return
        if operation.status.is_terminal and operation.type is not OperationType.EXECUTION:
            await self.emit("on_operation_end", OperationEndInfo.from_operation(operation))

    async def _unreached_updates(self) -> None:
        """Report the ends listed as updated that replay never reached, as the invocation ends.

        Replay skips a finished child context, so an operation inside it that another party
        ended later (a race's loser, a branch a completion policy left behind) is reached by
        no invocation; the next input does not list it again.
        """
        if self._log is None or "on_operation_end" not in self._hooks:
            return
        for operation_id in self._ended:
            operation = self._log.get(operation_id)
            if operation is not None and operation_id in self._updated:
                await self.replayed(operation)

    def merge_watcher(self) -> MergeWatcher | None:
        """What the batcher tells of each checkpoint response, if a plugin wants it."""
        if self._log is None or not (
            "on_operation_change" in self._hooks or "on_operation_end" in self._hooks
        ):
            return None
        from durable_async._plugin_changes import MergeWatcher

        return MergeWatcher(self, self._log)

    def take_update(self, operation_id: str) -> bool:
        """Whether ``operation_id`` changed while suspended, not yet reported; now it is."""
        if operation_id in self._updated:
            self._updated.discard(operation_id)
            return True
        return False

    async def emit(self, hook: str, info: object) -> None:
        """Call ``hook`` on every plugin in registration order; log what they raise.

        Durable operations called while a hook runs raise ``ValidationError``, and a task
        a hook creates is the plugin's, not the invocation's: the invocation neither waits
        for it before suspending (a plugin's background loop would hold it until Lambda's
        timeout) nor cancels it.
        """
        hooked = self._hooks.get(hook)
        if hooked is None:
            return
        guard = running_body.set(RunningBody(hook, plugin_hook=True))
        outside = current_task_info.set(None)
        try:
            await self._call(hook, hooked, info)
        finally:
            current_task_info.reset(outside)
            running_body.reset(guard)

    @staticmethod
    async def _call(hook: str, hooked: list[tuple[object, Any]], info: object) -> None:
        for plugin, method in hooked:
            try:
                result = method(info)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _logger.exception(
                    "instrumentation plugin %s raised in %s; ignored", _describe(plugin), hook
                )
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the task running the hook is cancelled: that is not the plugin's
                # The hook's own (a future it awaited was cancelled): a plugin failure like
                # any other, or it would cancel the operation or the invocation it reports.
                _logger.exception(
                    "instrumentation plugin %s raised CancelledError in %s; ignored",
                    _describe(plugin),
                    hook,
                )


__all__ = ["PluginDispatcher"]
