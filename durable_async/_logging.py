"""Durable logging: records tagged with execution and operation, silent while replaying.

``ctx.logger`` puts ``executionArn`` (and ``parentId`` inside child contexts) on each
record as attributes, which Lambda's JSON log format prints as top-level fields; a step's
``logger`` adds ``operationId``, ``attempt`` and, when the step has a name,
``operationName``. A field that does not apply is absent rather than null, as with AWS's
SDK. Code that logs through its own loggers gets the same fields by adding
``DurableLogFilter`` to a handler.
Nothing here touches global logging state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any, Protocol

import attrs


def _never() -> bool:
    return False


@attrs.frozen
class LogScope:
    """Fields for records emitted in one context or step, and its replay status."""

    fields: Mapping[str, object]
    is_replaying: Callable[[], bool] = _never


class LogScopeSource(Protocol):
    """What ``current_log_scope`` holds instead of a ``LogScope`` while a context's body runs.

    The durable context itself: it makes its scope when a record needs one. Most contexts
    (every branch of a large map) never log, and a scope object each would be one more
    object per waiting branch for the cyclic GC to walk.
    """

    def _make_log_scope(self) -> LogScope: ...


current_log_scope: ContextVar[LogScope | LogScopeSource | None] = ContextVar(
    "durable_async_log_scope", default=None
)


def scope_now() -> LogScope | None:
    """The log scope of the code running now, if it runs inside a durable handler."""
    scope = current_log_scope.get()
    if scope is None or isinstance(scope, LogScope):
        return scope
    return scope._make_log_scope()


class DurableLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A ``LoggerAdapter`` that adds durable fields and drops records during replay."""

    def __init__(self, logger: logging.Logger, scope: LogScope) -> None:
        super().__init__(logger, dict(scope.fields))
        self.scope = scope

    def with_replay_logging(self) -> DurableLogger:
        """A copy of this logger that also emits during replay (to observe re-runs)."""
        return DurableLogger(self.logger, attrs.evolve(self.scope, is_replaying=_never))

    @property
    def is_replaying(self) -> bool:
        """Whether records are being dropped because the code is replaying."""
        return self.scope.is_replaying()

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Merge the durable fields under any ``extra`` the caller passed."""
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self.extra, **extra} if extra else self.extra  # type: ignore[dict-item]
        return msg, kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log unless replaying; the caller's frame is reported as the source."""
        if self.scope.is_replaying():
            return
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        super().log(level, msg, *args, **kwargs)


class DurableLogFilter(logging.Filter):
    """Stamps records with the current durable fields; optionally drops replayed ones.

    Add it to a handler (``handler.addFilter(DurableLogFilter())``) so records from any
    logger, emitted inside a durable handler, carry ``executionArn`` and, inside a step,
    ``operationId``/``operationName``/``attempt``. Outside a durable handler it passes
    records through unchanged.
    """

    def __init__(self, *, drop_replayed: bool = True) -> None:
        super().__init__()
        self.drop_replayed = drop_replayed

    def filter(self, record: logging.LogRecord) -> bool:
        """Add missing fields; return ``False`` for records emitted while replaying."""
        scope = scope_now()
        if scope is None:
            return True
        if self.drop_replayed and scope.is_replaying():
            return False
        attributes = record.__dict__
        for key, value in scope.fields.items():
            attributes.setdefault(key, value)
        return True
