"""Instrumentation plugins: hooks that observe invocations, operations and step attempts.

The hook names, the info objects' fields and the ``DURABLE_EXECUTION_PLUGINS`` loading
rules follow AWS's Python SDK (``plugin.py`` / ``plugin_discovery.py`` of
aws-durable-execution-sdk-python 3.0), so a plugin written against their shape ports by
changing imports. Differences: a hook may be ``async def`` (it is awaited on the loop,
by the task whose event it reports, so a slow hook delays only that task), and a plugin
*instance* may be registered as well as a factory.

Hooks (all optional; define only what you need):

``on_invocation_start(InvocationStartInfo)``
    Before the handler runs, once per invocation.
``on_invocation_end(InvocationEndInfo)``
    After the invocation's outcome is settled and its checkpoints are sent.
``on_operation_start(OperationStartInfo)``
    When an operation begins (its START is queued) or an open one is resumed
    (``is_replayed``); a step's each attempt.
``on_operation_end(OperationEndInfo)``
    When an operation reaches a terminal status: one this invocation ended (its terminal
    checkpoint), or one another party ended (a wait that elapsed, a callback answered, a
    chained invoke that finished), either in a checkpoint response during the invocation
    or, for what ended while the execution was suspended (the invocation input's
    ``UpdatedOperationIds``), when replay first reaches it (``is_replayed`` is False), or
    as the invocation ends if replay never does (it skips a finished child context, such
    as a race whose loser ended later). An operation replayed from terminal history an
    earlier invocation saw is not reported.
``on_operation_change(OperationChangeInfo)``
    After a checkpoint response that changed some operation's status: the changed ones
    and the whole operation map (both by ID). It runs in the checkpoint flush task, so the
    next checkpoint call waits for it; keep it quick.
``on_user_function_start(UserFunctionStartInfo)`` / ``on_user_function_end(...)``
    Around each run of user code ("attempt" hooks): a step body or a condition check,
    with the 1-based attempt number, and a child context's body (map items and parallel
    branches too; attempt 1, or None when it runs again); the end has the outcome.

Operation infos carry the service's ``start_time`` / ``end_time`` and the serialized
``result`` once the service has recorded them (``None`` before that, as for a pipelined
step whose result is still in flight); attempt infos carry the wall-clock start and end of
that run of user code instead, as AWS's do.

A hook that raises is logged on ``durable_async.plugins`` and ignored: a plugin never
changes an execution's outcome. With no plugin registered the SDK does no plugin work.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from durable_async._clock import utc_now
from durable_async._error_wire import error_object
from durable_async._errors import ValidationError
from durable_async._identity import OperationIdentity
from durable_async._operations._common import RunningBody, running_body
from durable_async._tasks import current_task_info
from durable_async._wire.converter import from_wire
from durable_async._wire.enums import OperationStatus, OperationType
from durable_async._wire.models import ErrorObject, Operation

if TYPE_CHECKING:
    from typing import Self

    from durable_async._plugin_changes import MergeWatcher
    from durable_async._replay import OperationLog

#: Comma-separated plugin names (entry points of ``PLUGIN_ENTRY_POINT_GROUP``) or
#: ``module:attribute`` references, each naming a plugin factory or a plugin instance.
PLUGIN_ENVIRONMENT_VARIABLE = "DURABLE_EXECUTION_PLUGINS"
#: The entry-point group AWS's SDK discovers plugin factories in.
PLUGIN_ENTRY_POINT_GROUP = "aws_durable_execution.plugins"

_logger = logging.getLogger("durable_async.plugins")

HOOK_NAMES = (
    "on_invocation_start",
    "on_invocation_end",
    "on_operation_start",
    "on_operation_end",
    "on_operation_change",
    "on_user_function_start",
    "on_user_function_end",
)


class PluginLoadError(ValidationError):
    """A configured plugin could not be loaded or is not a plugin or factory."""

    __module__ = "durable_async"


class InvocationStatus(enum.StrEnum):
    """How an invocation ended, as ``on_invocation_end`` reports it."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: Suspended: the execution continues in a later invocation.
    PENDING = "PENDING"
    #: The invocation raised (a retryable service error, Lambda's timeout): Lambda retries it.
    RETRY = "RETRY"


class UserFunctionOutcome(enum.StrEnum):
    """How one run of a step body ended."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    #: Cancelled before it finished (the invocation wound down); it runs again later.
    INCOMPLETE = "INCOMPLETE"


@attrs.frozen(kw_only=True)
class InvocationStartInfo:
    execution_arn: str
    request_id: str | None
    #: True when the execution has no recorded operation yet (besides itself).
    is_first_invocation: bool
    #: When the execution started (its EXECUTION operation's start), as AWS's SDK has it.
    execution_start_time: datetime | None = None


@attrs.frozen(kw_only=True)
class InvocationEndInfo:
    execution_arn: str
    request_id: str | None
    is_first_invocation: bool
    execution_start_time: datetime | None = None
    #: What the invocation reported to Lambda, or RETRY when it raised.
    status: InvocationStatus
    error: ErrorObject | None = None


@attrs.frozen(kw_only=True)
class OperationInfo:
    operation_id: str
    operation_type: OperationType
    sub_type: str | None
    name: str | None
    parent_id: str | None
    status: OperationStatus
    #: Whether the operation was recorded by an earlier invocation or attempt.
    is_replayed: bool
    attempt: int | None = None
    #: When the service recorded the operation's start and end, once it has.
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: The serialized result, once recorded.
    result: str | None = None
    #: The recorded error of an operation that failed.
    error: ErrorObject | None = None

    @classmethod
    def from_operation(cls, operation: Operation, *, is_replayed: bool = False) -> Self:
        """The info of ``operation`` as the service recorded it."""
        step = operation.step_details
        return cls(
            operation_id=operation.id,
            operation_type=operation.type,
            sub_type=operation.sub_type,
            name=operation.name,
            parent_id=operation.parent_id,
            status=operation.status,
            is_replayed=is_replayed,
            attempt=step.attempt if step is not None else None,
            start_time=operation.start_timestamp,
            end_time=operation.end_timestamp,
            result=operation.recorded_result,
            error=operation.recorded_error,
        )


@attrs.frozen(kw_only=True)
class OperationStartInfo(OperationInfo):
    pass


@attrs.frozen(kw_only=True)
class OperationEndInfo(OperationInfo):
    pass


@attrs.frozen(kw_only=True)
class OperationChangeInfo:
    """The operations a checkpoint response changed, and all operations after it."""

    execution_arn: str
    #: The operations whose status the response changed (or that it reported first).
    updated_operations: Mapping[str, OperationInfo]
    #: Every operation known after the response, the updated ones included.
    operations: Mapping[str, OperationInfo]


@attrs.frozen(kw_only=True)
class UserFunctionStartInfo(OperationInfo):
    #: The body of a child context runs again to rebuild a result too large to store.
    is_replay_children: bool = False


@attrs.frozen(kw_only=True)
class UserFunctionEndInfo(OperationInfo):
    outcome: UserFunctionOutcome
    is_replay_children: bool = False


class DurableInstrumentationPlugin:
    """Optional base class: every hook is a no-op; override (sync or ``async``) any of them.

    Subclassing is not required; any object with some of the hook methods is a plugin.
    Hooks inherited unchanged from this class are never called.
    """

    def on_invocation_start(self, info: InvocationStartInfo) -> Awaitable[None] | None:
        return None

    def on_invocation_end(self, info: InvocationEndInfo) -> Awaitable[None] | None:
        return None

    def on_operation_start(self, info: OperationStartInfo) -> Awaitable[None] | None:
        return None

    def on_operation_end(self, info: OperationEndInfo) -> Awaitable[None] | None:
        return None

    def on_operation_change(self, info: OperationChangeInfo) -> Awaitable[None] | None:
        return None

    def on_user_function_start(self, info: UserFunctionStartInfo) -> Awaitable[None] | None:
        return None

    def on_user_function_end(self, info: UserFunctionEndInfo) -> Awaitable[None] | None:
        return None


class DurableInstrumentationPluginFactory(Protocol):
    """Builds the plugin that observes one invocation (called once per invocation)."""

    def create_plugin(self, info: InvocationStartInfo, /) -> Any: ...


def _is_factory(value: object) -> bool:
    return callable(getattr(value, "create_plugin", None))


def _check_entry(value: object, where: str) -> object:
    if isinstance(value, type) and not _is_factory(value):
        msg = (
            f"{where}: {value.__qualname__} is a class; register an instance of it "
            "(a plugin, or a factory with create_plugin(info))"
        )
        raise PluginLoadError(msg)
    if not _is_factory(value) and not any(callable(getattr(value, h, None)) for h in HOOK_NAMES):
        msg = (
            f"{where}: {value!r} is neither a plugin (no on_* hook method) nor a plugin "
            "factory (no create_plugin method)"
        )
        raise PluginLoadError(msg)
    return value


def _parse_names(raw: str | None) -> list[str]:
    if raw is None or not raw.strip():
        return []
    names = [name.strip() for name in raw.split(",")]
    if not all(names):
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE} must hold non-empty, comma-separated names"
        raise PluginLoadError(msg)
    if len(set(names)) != len(names):
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE} names a plugin twice: {raw!r}"
        raise PluginLoadError(msg)
    return names


def _resolve_name(name: str) -> object:
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except Exception as exc:
            msg = f"{PLUGIN_ENVIRONMENT_VARIABLE}: cannot load {name!r}: {exc!r}"
            raise PluginLoadError(msg) from exc
        return target
    from importlib import metadata  # only when a plugin is named by entry point: cold start

    found = [ep for ep in metadata.entry_points(group=PLUGIN_ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        msg = (
            f"{PLUGIN_ENVIRONMENT_VARIABLE}: no plugin named {name!r} in entry-point group "
            f"{PLUGIN_ENTRY_POINT_GROUP!r} (or use a module:attribute reference)"
        )
        raise PluginLoadError(msg)
    if len(found) > 1:
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE}: several entry points are named {name!r}"
        raise PluginLoadError(msg)
    try:
        return found[0].load()
    except Exception as exc:
        msg = f"{PLUGIN_ENVIRONMENT_VARIABLE}: cannot load {name!r} ({found[0].value}): {exc!r}"
        raise PluginLoadError(msg) from exc


def load_plugins(
    explicit: Iterable[object] | None, environment: Mapping[str, str] | None = None
) -> tuple[object, ...]:
    """The registered plugins and factories: ``explicit`` ones, then the environment's.

    An entry named in the environment that is already registered explicitly (the same
    object) is skipped. Raises ``PluginLoadError`` for anything that cannot be loaded.
    """
    entries = [_check_entry(e, f"plugins[{i}]") for i, e in enumerate(explicit or ())]
    env = os.environ if environment is None else environment
    for name in _parse_names(env.get(PLUGIN_ENVIRONMENT_VARIABLE)):
        entry = _check_entry(_resolve_name(name), f"{PLUGIN_ENVIRONMENT_VARIABLE} {name!r}")
        if any(entry is e for e in entries):
            _logger.warning("plugin %r is already registered; not adding it again", name)
            continue
        entries.append(entry)
    return tuple(entries)


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
            if not _is_factory(entry):
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


__all__ = [
    "DurableInstrumentationPlugin",
    "DurableInstrumentationPluginFactory",
    "InvocationEndInfo",
    "InvocationStartInfo",
    "InvocationStatus",
    "OperationChangeInfo",
    "OperationEndInfo",
    "OperationInfo",
    "OperationStartInfo",
    "PLUGIN_ENTRY_POINT_GROUP",
    "PLUGIN_ENVIRONMENT_VARIABLE",
    "PluginDispatcher",
    "PluginLoadError",
    "UserFunctionEndInfo",
    "UserFunctionOutcome",
    "UserFunctionStartInfo",
    "load_plugins",
]
