"""``DurableContext``: the handler's handle on durable operations.

Each method allocates its operation's ID synchronously, at call time, and returns a
coroutine. Order of IDs therefore follows the order of calls in the code, never the
order in which ``gather`` or a ``TaskGroup`` happens to run things.
"""

from __future__ import annotations

import functools
import sys
import uuid as _uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from durable_async._config import (
    CallbackConfig,
    ChildConfig,
    InvokeConfig,
    MapConfig,
    ParallelBranch,
    ParallelConfig,
    StepConfig,
    WaitForCallbackConfig,
)
from durable_async._duration import Duration, wait_seconds
from durable_async._errors import (
    NonDeterministicExecutionError,
    ValidationError,
)
from durable_async._identity import OperationIdentity, id_at, id_base, operation_id
from durable_async._logging import DurableLogger, LogScope, LogScopeSource, current_log_scope
from durable_async._operations._common import misuse_in_body, not_callable, running_body
from durable_async._operations.recorded import recorded_now, recorded_random, recorded_uuid4
from durable_async._operations.step import StepContext, replayed_result, run_step
from durable_async._operations.wait import run_wait
from durable_async._replay import NOT_REPLAYED, ExecutionStateView
from durable_async._runtime import InvocationRuntime
from durable_async._serdes import SerDes
from durable_async._suspend import Suspended
from durable_async._tasks import TaskInfo, current_scope, current_task_info
from durable_async._validation import validate_function_name, validate_name, validate_tenant_id
from durable_async._wire.enums import OperationSubType, OperationType
from durable_async._wire.models import Operation

if TYPE_CHECKING:
    # Imported where used: a handler that only runs steps never loads these operations.
    from durable_async._batch import BatchResult
    from durable_async._operations.callback import Callback
    from durable_async._waits import WaitStrategy, WaitStrategyConfig

T = TypeVar("T")
U = TypeVar("U")

_current: ContextVar[DurableContext | None] = ContextVar("durable_async_context", default=None)


def current_context() -> DurableContext:
    """The ``DurableContext`` of the running durable handler (raises outside one)."""
    ctx = _current.get()
    if ctx is None:
        msg = "not inside a durable handler"
        raise RuntimeError(msg)
    return ctx


def _resolve_name(name: str | None, func: Callable[..., Any]) -> str | None:
    """An explicit name; ``""`` for none; by default the function's ``__name__``."""
    if name is not None:
        return validate_name(name)
    default = getattr(func, "__name__", None)
    if default.__class__ is str and default in _DEFAULT_NAMES:
        return default  # checked before: replay calls the same functions again
    if isinstance(default, str) and default.isidentifier() and default.isascii():
        if len(_DEFAULT_NAMES) < 4096:
            _DEFAULT_NAMES.add(default)
        return default
    return None


_OUTLIVED = (
    "this DurableContext's invocation has ended: use a context only inside its handler "
    "(and the tasks it awaits) while the invocation runs, and keep no reference to it after"
)
_REFUSED = (
    "the invocation is suspending: operations called while it unwinds (in finally or "
    "except blocks) run in the invocation where the protected block really ends"
)

#: Function names already found usable as operation names. Bounded: a program has few.
_DEFAULT_NAMES: set[str] = set()


class _ReplayProbe(weakref.ref):  # type: ignore[type-arg]
    """A context's replay status for its log scope, without keeping the context alive.

    The scope lives in the context (once made); a bound method would make the pair a
    reference cycle that only the cyclic GC frees, so every finished branch of
    a large map would stay resident until the next full collection. A weak reference that
    answers the question itself is one object per context, not a closure's three.
    """

    __slots__ = ()

    def __call__(self) -> bool:
        live: DurableContext | None = super().__call__()
        return live is not None and live._is_replaying()


class DurableContext:
    """Durable operations for one (root or child) context of an execution.

    Not constructed by users: the ``durable_execution`` decorator passes one to the handler.
    """

    __slots__ = (
        "_id_base",
        "_log_fields",
        "_log_scope",
        "_logger",
        "_next_id",
        "_outer_ctx",
        "_outer_log_scope",
        "_outer_scope",
        "_owner",
        "_parent_id",
        "_position",
        "_prefix",
        "_replaying",
        "_rt",
        "_task_positions",
        "__weakref__",
    )

    def __init__(
        self,
        runtime: InvocationRuntime,
        *,
        parent_id: str | None = None,
        prefix: str | None = None,
        replaying: bool,
    ) -> None:
        self._rt = runtime
        self._parent_id = parent_id
        # The IDs of its operations derive from ``prefix``: the context's own operation, or
        # for a FLAT batch branch (which has none) the branch's virtual ID.
        self._prefix = prefix or parent_id
        self._id_base = id_base(self._prefix)
        self._position = 0
        self._next_id: str | None = None
        self._replaying = replaying
        #: The task whose operations get AWS's IDs: the one the context's body runs in.
        self._owner: TaskInfo | None = current_task_info.get()
        #: Positions of operations issued from other tasks, by task namespace.
        self._task_positions: dict[str, int] = {}
        fields: dict[str, object] = {"executionArn": runtime.arn}
        if parent_id:
            fields["parentId"] = parent_id
        self._log_fields = fields
        #: Made when first needed (``_make_log_scope``): most contexts never log.
        self._log_scope: LogScope | None = None
        #: Made on first use: most contexts (map branches, say) never log.
        self._logger: DurableLogger | None = None
        #: What ``_bind`` replaced, while the context's body runs.
        self._outer_ctx: DurableContext | None = None
        self._outer_log_scope: LogScope | LogScopeSource | None = None
        self._outer_scope = ""

    # -- facts about the execution -------------------------------------------------------

    @property
    def execution_arn(self) -> str:
        """The durable execution's ARN."""
        return self._rt.arn

    @property
    def lambda_context(self) -> Any:
        """The Lambda context object of this invocation."""
        return self._rt.lambda_context

    @property
    def logger(self) -> DurableLogger:
        """A logger tagged with the execution; silent while the handler replays."""
        logger = self._logger
        if logger is None:
            logger = self._logger = DurableLogger(self._rt.logger, self._make_log_scope())
        return logger

    # -- AWS Lambda Powertools compatibility ---------------------------------------------
    # Powertools (aws_lambda_powertools.shared.functions.is_durable_context) recognises a
    # durable context by duck typing: an object with both ``lambda_context`` (above) and
    # ``state``. It then reads the Lambda context from ``ctx.lambda_context``
    # (Logger.inject_lambda_context, Metrics.log_metrics), and ``@idempotent`` also treats
    # ``len(ctx.state.operations) > 1`` as "this invocation replays" (AWS's SDK counts the
    # EXECUTION operation, so a first invocation has exactly one). ``state`` is that much of
    # AWS's ``ExecutionState``, and nothing more.

    @property
    def state(self) -> ExecutionStateView:
        """The execution's recorded operations, as AWS's ``DurableContext.state`` has them."""
        return ExecutionStateView(self._rt.log)

    @property
    def is_replaying(self) -> bool:
        """Whether the code is re-running operations already recorded."""
        return self._is_replaying()

    def _is_replaying(self) -> bool:
        if self._replaying:
            next_id = self._next_id
            if next_id is None:
                next_id = self._next_id = id_at(self._id_base, self._position + 1)
            if next_id not in self._rt.log:
                self._replaying = False
        return self._replaying

    # -- identity ----------------------------------------------------------------------

    def _issue(
        self, type_: OperationType, sub_type: str, name: str | None
    ) -> tuple[OperationIdentity, Operation | None]:
        op_id = self._next_id_of_call()
        return self._check_identity(
            OperationIdentity(op_id, type_, sub_type, name, self._parent_id)
        )

    def _next_id_of_call(self) -> str:
        """The ID of an operation called now (refused inside a running body)."""
        if running_body.get() is not None:
            raise misuse_in_body()  # type: ignore[misc]  # not None inside a body
        task = current_task_info.get()
        if task is None or task is self._owner:
            # AWS's IDs: the context's own task numbers its operations in call order.
            self._position += 1
            op_id = self._next_id or id_at(self._id_base, self._position)
            self._next_id = None
            return op_id
        # Another task (gather, TaskGroup, create_task): its own deterministic sequence,
        # so results never depend on the order in which the tasks happen to run.
        key = task.namespace
        position = self._task_positions.get(key, 0) + 1
        self._task_positions[key] = position
        return operation_id(f"{self._prefix or ''}:{key}", position)

    def _check_identity(
        self, identity: OperationIdentity
    ) -> tuple[OperationIdentity, Operation | None]:
        """Match ``identity`` against the history; refuse new operations once suspending."""
        rt = self._rt
        try:
            recorded = rt.log.match(identity)
        except NonDeterministicExecutionError as error:
            rt.record_fatal(error)
            raise
        if recorded is None or not recorded.status.is_terminal:
            if rt.monitor.closed:
                task = current_task_info.get()
                if task is None or task.registry is not rt.tasks:
                    # Not code of the invocation unwinding: the context outlived it.
                    raise RuntimeError(_OUTLIVED)
                # The invocation is suspending (or over): cleanup and compensation code
                # that runs while it unwinds must not start operations; they run in the
                # invocation where the protected block really ends.
                if (
                    rt.monitor.released
                    and sys.exc_info()[1] is None
                    and rt.monitor.swallowed_by_current_task()
                ):
                    # Not unwinding: the body caught the suspension and went on.
                    rt.swallowed_suspension(self._parent_id, self._describe())
                raise Suspended(_REFUSED)
            self._replaying = False
        return identity, recorded

    def _describe(self) -> str:
        return "the handler" if self._parent_id is None else f"context {self._parent_id}"

    def _bind(self) -> None:
        """Make this the current context (and log scope) until ``_unbind()``.

        Calls around ``try``/``finally`` rather than a context manager, and what they
        replace kept in this context's slots: every branch of a large map is bound while
        its body waits, and a manager, its bound ``__exit__`` and a tuple of previous
        values would be three more objects each for the cyclic GC to walk. A context's
        body runs once at a time, so one set of slots is enough.
        """
        self._outer_ctx = _current.get()
        self._outer_log_scope = current_log_scope.get()
        self._outer_scope = current_scope.get()
        _current.set(self)
        current_log_scope.set(self)
        current_scope.set(self._prefix or "")

    def _unbind(self) -> None:
        """Put back what ``_bind`` replaced, when the body ends.

        The previous values, not ``set``'s tokens: all three variables have defaults, so
        restoring equals resetting.
        """
        current_scope.set(self._outer_scope)
        current_log_scope.set(self._outer_log_scope)
        _current.set(self._outer_ctx)
        self._outer_ctx = self._outer_log_scope = None

    def _make_log_scope(self) -> LogScope:
        """The log scope of this context (``LogScopeSource``): its fields and replay status."""
        scope = self._log_scope
        if scope is None:
            scope = self._log_scope = LogScope(self._log_fields, _ReplayProbe(self))
        return scope

    def _child(self, operation_id: str, *, replaying: bool) -> DurableContext:
        """The context of this context's child operation ``operation_id``."""
        return DurableContext(self._rt, parent_id=operation_id, replaying=replaying)

    # -- operations --------------------------------------------------------------------

    @overload
    def step(
        self,
        func: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[None, None, T]: ...

    @overload
    def step(
        self,
        func: Callable[..., T],
        /,
        *args: Any,
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[None, None, T]: ...

    def step(
        self,
        func: Callable[..., Any],
        /,
        *args: Any,
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[None, None, Any]:
        """Run ``func(step_context, *args)`` as a durable step and return its result.

        ``func`` may be ``async`` or plain; plain callables run in a worker thread. The
        result is checkpointed, so on replay ``func`` does not run again. Failures retry
        per ``config.retry_strategy`` (default: 6 attempts with backoff), each retry
        suspending the invocation until it is due.
        """
        if not callable(func):  # e.g. ``ctx.step(f(x))``: refused before it takes an ID
            msg = not_callable("ctx.step", func, "ctx.step({f}, arg)", "ctx.step({f}(arg))")
            raise TypeError(msg)
        config = config or _DEFAULT_STEP_CONFIG
        name = _resolve_name(name, func)
        sub_type = config.sub_type or _STEP_SUB_TYPE
        op_id = self._next_id_of_call()
        rt = self._rt
        if config.serdes is None and rt.plugins is None:
            # Replay's fast path: a step recorded as succeeded returns its result, decoded
            # when awaited, without its model, its identity object or the step machinery.
            payload = rt.log.replayed_success(op_id, sub_type, name, self._parent_id)
            if payload is not NOT_REPLAYED:
                return rt.issue(
                    replayed_result(payload, op_id),
                    (op_id, _STEP, sub_type, name, self._parent_id),
                )
        identity, recorded = self._check_identity(
            OperationIdentity(op_id, _STEP, sub_type, name, self._parent_id)
        )
        return rt.issue(
            run_step(rt, identity, recorded, func, args, config, self._log_fields),
            identity,
        )

    def wait(
        self,
        duration: Duration | timedelta | float | None = None,
        /,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        name: str | None = None,
    ) -> Coroutine[None, None, None]:
        """Wait durably: the invocation ends and the service resumes it when time is up.

        Give a ``Duration``, a ``timedelta`` or seconds positionally, or keyword units
        (``ctx.wait(minutes=5)``). At least one second.
        """
        total = wait_seconds(duration, days=days, hours=hours, minutes=minutes, seconds=seconds)
        identity, recorded = self._issue(
            OperationType.WAIT, OperationSubType.WAIT, validate_name(name)
        )
        return self._rt.issue(run_wait(self._rt, identity, recorded, total), identity)

    def run_in_child_context(
        self,
        func: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        name: str | None = None,
        config: ChildConfig | None = None,
    ) -> Coroutine[None, None, T]:
        """Run ``func(child_ctx, *args)`` with its own operation namespace; return its result.

        ``func`` is ``async`` (or returns an awaitable, like ``lambda c: sub(c, x)``). The
        result is checkpointed on a CONTEXT operation, so a finished child is not re-run on
        replay. A failure raises ``ChildContextError`` whose ``__cause__`` is the inner error.
        """
        from durable_async._operations.child import run_child

        if not callable(func):
            msg = not_callable(
                "ctx.run_in_child_context",
                func,
                "ctx.run_in_child_context({f}, arg)",
                "ctx.run_in_child_context({f}(ctx, arg))",
            )
            raise TypeError(msg)
        config = config or _DEFAULT_CHILD_CONFIG
        name = _resolve_name(name, func)
        identity, recorded = self._issue(
            OperationType.CONTEXT, config.sub_type or OperationSubType.RUN_IN_CHILD_CONTEXT, name
        )
        return self._rt.issue(
            run_child(self._rt, identity, recorded, self, func, args, config),
            identity,
        )

    def create_callback(
        self,
        *,
        name: str | None = None,
        timeout: Duration | timedelta | float | None = None,
        heartbeat_timeout: Duration | timedelta | float | None = None,
        serdes: SerDes[Any] | None = None,
        config: CallbackConfig | None = None,
    ) -> Coroutine[None, None, Callback[Any]]:
        """Create a callback; hand ``callback.callback_id`` out, then ``await callback.result()``.

        Options may be given directly or as a ``CallbackConfig``; a timeout of 0 means none.
        """
        from durable_async._operations.callback import create_callback

        if config is None:
            config = CallbackConfig(timeout or 0, heartbeat_timeout or 0, serdes)
        elif timeout is not None or heartbeat_timeout is not None or serdes is not None:
            msg = "give the callback's options either directly or as config, not both"
            raise ValidationError(msg)
        identity, recorded = self._issue(
            OperationType.CALLBACK,
            config.sub_type or OperationSubType.CALLBACK,
            validate_name(name),
        )
        return self._rt.issue(create_callback(self._rt, identity, recorded, config), identity)

    def wait_for_callback(
        self,
        submitter: Callable[[str, StepContext], Any],
        /,
        *,
        name: str | None = None,
        config: WaitForCallbackConfig | None = None,
    ) -> Coroutine[None, None, Any]:
        """Create a callback, run ``submitter(callback_id, step_context)`` as a step, await it.

        Runs in a child context (subtype ``WaitForCallback``). Raises the callback's
        ``CallbackError`` subclass, or ``CallbackSubmitterError`` if the submitter failed.
        """
        from durable_async._operations.callback import (
            surface_callback_failure,
            wait_for_callback_body,
        )
        from durable_async._operations.child import run_child

        if not callable(submitter):
            msg = not_callable(
                "ctx.wait_for_callback",
                submitter,
                "ctx.wait_for_callback({f})",
                "ctx.wait_for_callback({f}(...))",
                "pass the submitter itself (the SDK calls it with the callback ID)",
            )
            raise TypeError(msg)
        config = config or WaitForCallbackConfig()
        name = _resolve_name(name, submitter)

        identity, recorded = self._issue(
            OperationType.CONTEXT, OperationSubType.WAIT_FOR_CALLBACK, name
        )

        def child() -> Coroutine[None, None, Any]:
            return run_child(
                self._rt,
                identity,
                recorded,
                self,
                wait_for_callback_body,
                (submitter, f"{name} " if name else "", config),
                # The callback's serdes decodes its payload; the child stores the decoded
                # value in the default encoding, as AWS's SDK does.
                _DEFAULT_CHILD_CONFIG,
            )

        return self._rt.issue(surface_callback_failure(self._rt, identity.id, child), identity)

    def invoke(
        self,
        function_name: str,
        payload: Any = None,
        /,
        *,
        name: str | None = None,
        tenant_id: str | None = None,
        config: InvokeConfig | None = None,
    ) -> Coroutine[None, None, Any]:
        """Invoke another durable function with ``payload`` and return its result.

        The target runs as its own execution; this branch suspends until it ends. A failed,
        timed-out or stopped target raises ``InvokeError``. Never re-invoked on replay.
        """
        from durable_async._operations.invoke import run_invoke

        validate_function_name(function_name)
        config = config or InvokeConfig(tenant_id=tenant_id)
        if tenant_id is not None and config.tenant_id != tenant_id:
            msg = "give the tenant either directly or in config, not both"
            raise ValidationError(msg)
        validate_tenant_id(config.tenant_id)
        identity, recorded = self._issue(
            OperationType.CHAINED_INVOKE, OperationSubType.CHAINED_INVOKE, validate_name(name)
        )
        return self._rt.issue(
            run_invoke(self._rt, identity, recorded, function_name, payload, config), identity
        )

    def wait_for_condition(
        self,
        check: Callable[[T, Any], Awaitable[T]] | Callable[[T, Any], T],
        /,
        *,
        initial_state: T,
        strategy: WaitStrategy | WaitStrategyConfig[T],
        name: str | None = None,
        serdes: SerDes[Any] | None = None,
    ) -> Coroutine[None, None, T]:
        """Poll ``check(state, check_context)`` durably until ``strategy`` says stop.

        Each check's new state is checkpointed; between checks the invocation suspends
        for the strategy's delay. If the first check already satisfies the strategy,
        nothing suspends.
        """
        from durable_async._operations.condition import run_condition
        from durable_async._waits import WaitStrategyConfig, create_wait_strategy

        if isinstance(strategy, WaitStrategyConfig):
            strategy = create_wait_strategy(strategy)
        if not callable(check):
            # ValidationError, as this check always raised (other operations: TypeError).
            msg = not_callable(
                "ctx.wait_for_condition",
                check,
                "ctx.wait_for_condition({f}, initial_state=...)",
                "ctx.wait_for_condition({f}(state, ...), ...)",
                "pass the check itself (the SDK calls it with each state)",
            )
            raise ValidationError(msg)
        if not callable(strategy):
            msg = (
                "ctx.wait_for_condition needs a strategy (a WaitStrategyConfig or a function), "
                f"got {type(strategy).__name__}"
            )
            raise ValidationError(msg)
        identity, recorded = self._issue(
            OperationType.STEP, OperationSubType.WAIT_FOR_CONDITION, validate_name(name)
        )
        return self._rt.issue(
            run_condition(
                self._rt,
                identity,
                recorded,
                check,
                initial_state,
                strategy,
                serdes,
                dict(self._log_fields),
            ),
            identity,
        )

    def map(
        self,
        items: Sequence[U],
        func: Callable[[DurableContext, U, int, Sequence[U]], Awaitable[T]],
        /,
        *,
        name: str | None = None,
        config: MapConfig | None = None,
    ) -> Coroutine[None, None, BatchResult]:
        """Run ``func(item_ctx, item, index, items)`` for every item, each in its own context.

        Branches run as tasks on this loop (no thread per branch), at most
        ``config.max_concurrency`` at once; ``config.completion_config`` decides when the
        batch ends. Each branch's ID derives from its index, so results never depend on
        the order branches finish in. Returns a ``BatchResult`` in index order.
        """
        from durable_async._operations.batch import BatchKind, MapBranches, run_batch

        if not callable(func):
            msg = not_callable(
                "ctx.map",
                func,
                "ctx.map(items, {f})",
                "ctx.map(items, {f}(...))",
                "pass the item function itself (the SDK calls it once per item)",
            )
            raise TypeError(msg)
        items = list(items) if not isinstance(items, Sequence) else items
        if config is not None:
            config.completion_config.check_total(len(items))
        config = config or MapConfig()
        identity, recorded = self._issue(
            OperationType.CONTEXT, OperationSubType.MAP, validate_name(name)
        )
        plan = functools.partial(MapBranches, items, func, config.item_namer)
        return self._rt.issue(
            run_batch(self, identity, recorded, BatchKind.MAP, plan, config), identity
        )

    def parallel(
        self,
        branches: Sequence[Callable[[DurableContext], Awaitable[Any]] | ParallelBranch],
        /,
        *,
        name: str | None = None,
        config: ParallelConfig | None = None,
    ) -> Coroutine[None, None, BatchResult]:
        """Run each branch ``branch(branch_ctx)`` in its own context, concurrently.

        Like ``map`` (same concurrency bound, completion policy and result), for a fixed
        list of different functions; ``ParallelBranch(func, name=...)`` names one. By
        default every branch must succeed: the first failure ends the batch.
        """
        from durable_async._operations.batch import BatchKind, parallel_branches, run_batch

        branches = list(branches)
        refused = None
        for index, branch in enumerate(branches):
            func = branch.func if isinstance(branch, ParallelBranch) else branch
            if not callable(func):  # every coroutine among them is closed, not just one
                msg = not_callable(
                    f"ctx.parallel branch {index}",
                    func,
                    "ctx.parallel([{f}, ...])",
                    "ctx.parallel([{f}(...), ...])",
                    "pass each branch's function (bind arguments with lambda c: f(c, arg))",
                )
                refused = refused or msg
        if refused is not None:
            raise TypeError(refused)
        if config is not None:
            config.completion_config.check_total(len(branches))
        config = config or ParallelConfig()
        identity, recorded = self._issue(
            OperationType.CONTEXT, OperationSubType.PARALLEL, validate_name(name)
        )
        plan = functools.partial(parallel_branches, branches)
        return self._rt.issue(
            run_batch(self, identity, recorded, BatchKind.PARALLEL, plan, config), identity
        )

    def race(self, *operations: Awaitable[T], name: str | None = None) -> Coroutine[None, None, T]:
        """The result of the first operation to finish (raising if it failed), recorded.

        ``await ctx.race(ctx.wait_for_callback(ask), ctx.wait(hours=24))``: unlike
        ``asyncio.wait(..., FIRST_COMPLETED)``, replay returns the same winner. The others
        are cancelled once it is decided. A failed winner raises ``ChildContextError``.
        """
        return self._race("Race", operations, name)

    def any(self, *operations: Awaitable[T], name: str | None = None) -> Coroutine[None, None, T]:
        """The result of the first operation to succeed, recorded (see ``race``).

        If every operation fails, raises ``ChildContextError`` caused by the first failure.
        """
        return self._race("Any", operations, name)

    def all_settled(
        self, *operations: Awaitable[Any], name: str | None = None
    ) -> Coroutine[None, None, BatchResult]:
        """Every operation's outcome, in the order given, as a ``BatchResult``; recorded.

        Unlike ``gather(..., return_exceptions=True)``, a suspension is never returned as
        a value, and replay returns the recorded outcomes without awaiting the operations.
        """
        return self._race("AllSettled", operations, name)

    def _race(
        self,
        sub_type: str,
        operations: tuple[Awaitable[Any], ...],
        name: str | None,
    ) -> Coroutine[None, None, Any]:
        """Refuse what is not a race (``ValidationError``, at the call), or issue one."""
        from durable_async._operations.race import (
            RaceKind,
            check_operations,
            close_operations,
            run_race,
        )

        kind = RaceKind(sub_type)
        check_operations(kind, operations)  # refused at the call, before it takes an ID
        try:
            identity, recorded = self._issue(OperationType.CONTEXT, kind.value, validate_name(name))
        except BaseException:
            close_operations(operations)  # the race will not run them: none is left unawaited
            raise
        return self._rt.issue(run_race(self, identity, recorded, kind, operations), identity)

    # -- replay-safe helpers -------------------------------------------------------------

    def now(self) -> Coroutine[None, None, datetime]:
        """The current UTC time, recorded once so replays see the same value."""
        return self.step(recorded_now)

    def uuid4(self) -> Coroutine[None, None, _uuid.UUID]:
        """A random UUID, recorded once so replays see the same value."""
        return self.step(recorded_uuid4)

    def random(self) -> Coroutine[None, None, float]:
        """A float in [0, 1), recorded once so replays see the same value."""
        return self.step(recorded_random)


_DEFAULT_STEP_CONFIG = StepConfig()
#: Enum members read once: each class attribute lookup costs, and replay steps thousands.
_STEP = OperationType.STEP
_STEP_SUB_TYPE = OperationSubType.STEP
_DEFAULT_CHILD_CONFIG = ChildConfig()

__all__ = ["DurableContext", "StepContext", "current_context"]
