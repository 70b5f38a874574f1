"""``DurableContext``: the handler's handle on durable operations.

Each method allocates its operation's ID synchronously, at call time, and returns a
coroutine. Order of IDs therefore follows the order of calls in the code, never the
order in which ``gather`` or a ``TaskGroup`` happens to run things.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, TypeVar, overload

from durable_async._config import StepConfig
from durable_async._duration import Duration
from durable_async._errors import NonDeterministicExecutionError, ValidationError
from durable_async._identity import OperationIdentity, operation_id
from durable_async._logging import DurableLogger, LogScope
from durable_async._operations.step import StepContext, run_step
from durable_async._operations.wait import run_wait
from durable_async._runtime import InvocationRuntime
from durable_async._validation import validate_name
from durable_async._wire.enums import OperationSubType, OperationType
from durable_async._wire.models import Operation

T = TypeVar("T")

_current: ContextVar[DurableContext | None] = ContextVar("durable_async_context", default=None)


def current_context() -> DurableContext:
    """The ``DurableContext`` of the running durable handler (raises outside one)."""
    ctx = _current.get()
    if ctx is None:
        msg = "not inside a durable handler"
        raise RuntimeError(msg)
    return ctx


def _default_name(func: Callable[..., Any]) -> str | None:
    name = getattr(func, "__name__", None)
    if isinstance(name, str) and name.isidentifier() and name.isascii():
        return name
    return None


class DurableContext:
    """Durable operations for one (root or child) context of an execution.

    Not constructed by users: the ``durable_execution`` decorator passes one to the handler.
    """

    __slots__ = ("_logger", "_next_id", "_parent_id", "_position", "_prefix", "_replaying", "_rt")

    def __init__(
        self,
        runtime: InvocationRuntime,
        *,
        parent_id: str | None = None,
        replaying: bool,
    ) -> None:
        self._rt = runtime
        self._parent_id = parent_id
        self._prefix = parent_id
        self._position = 0
        self._next_id: str | None = None
        self._replaying = replaying
        fields: dict[str, object] = {"executionArn": runtime.arn}
        if parent_id:
            fields["parentId"] = parent_id
        self._logger = DurableLogger(runtime.logger, LogScope(fields, self._is_replaying))

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
        return self._logger

    @property
    def is_replaying(self) -> bool:
        """Whether the code is re-running operations already recorded."""
        return self._is_replaying()

    def _is_replaying(self) -> bool:
        if self._replaying:
            next_id = self._next_id
            if next_id is None:
                next_id = self._next_id = operation_id(self._prefix, self._position + 1)
            if self._rt.log.get(next_id) is None:
                self._replaying = False
        return self._replaying

    # -- identity ----------------------------------------------------------------------

    def _issue(
        self, type_: OperationType, sub_type: str, name: str | None
    ) -> tuple[OperationIdentity, Operation | None]:
        self._position += 1
        op_id = self._next_id or operation_id(self._prefix, self._position)
        self._next_id = None
        identity = OperationIdentity(op_id, type_, sub_type, name, self._parent_id)
        try:
            recorded = self._rt.log.match(identity)
        except NonDeterministicExecutionError as error:
            self._rt.record_fatal(error)
            raise
        if recorded is None or not recorded.status.is_terminal:
            self._replaying = False
        self._rt.monitor.touch()
        return identity, recorded

    # -- operations --------------------------------------------------------------------

    @overload
    def step(
        self,
        func: Callable[..., Awaitable[T]],
        /,
        *args: Any,
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[Any, Any, T]: ...

    @overload
    def step(
        self,
        func: Callable[..., T],
        /,
        *args: Any,
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[Any, Any, T]: ...

    def step(
        self,
        func: Callable[..., Any],
        /,
        *args: Any,
        name: str | None = None,
        config: StepConfig | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """Run ``func(step_context, *args)`` as a durable step and return its result.

        ``func`` may be ``async`` or plain; plain callables run in a worker thread. The
        result is checkpointed, so on replay ``func`` does not run again. Failures retry
        per ``config.retry_strategy`` (default: 6 attempts with backoff), each retry
        suspending the invocation until it is due.
        """
        config = config or _DEFAULT_STEP_CONFIG
        name = validate_name(name) if name is not None else _default_name(func)
        identity, recorded = self._issue(
            OperationType.STEP, config.sub_type or OperationSubType.STEP, name
        )
        return run_step(self._rt, identity, recorded, func, args, config, self._logger.scope.fields)  # type: ignore[arg-type]

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
    ) -> Coroutine[Any, Any, None]:
        """Wait durably: the invocation ends and the service resumes it when time is up.

        Give a ``Duration``, a ``timedelta`` or seconds positionally, or keyword units
        (``ctx.wait(minutes=5)``). At least one second.
        """
        if duration is not None:
            if seconds or minutes or hours or days:
                msg = "give the wait's duration either positionally or as keywords, not both"
                raise ValidationError(msg)
            if isinstance(duration, timedelta):
                raw = duration.total_seconds()
            elif isinstance(duration, Duration):
                raw = duration.seconds
            else:
                raw = Duration.coerce(duration).seconds and float(duration)
        else:
            raw = days * 86400 + hours * 3600 + minutes * 60 + seconds
        if raw < 1:
            msg = f"a wait must last at least 1 second (got {raw:g} s)"
            raise ValidationError(msg)
        total = Duration.of(seconds=raw).seconds
        identity, recorded = self._issue(
            OperationType.WAIT, OperationSubType.WAIT, validate_name(name)
        )
        return run_wait(self._rt, identity, recorded, total)


_DEFAULT_STEP_CONFIG = StepConfig()

__all__ = ["DurableContext", "StepContext", "current_context"]
