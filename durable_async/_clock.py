"""The one place the SDK reads the wall clock (ruff bans direct reads elsewhere).

Durable code must not depend on when it runs; the few places that need the time (the ID of
an execution-result checkpoint, ``ctx.now()`` inside its step) ask here, so tests and the
local runner can see every read in one module, and can swap the clock for a virtual one
(``durable_async.testing``'s runner sets ``clock_override`` for its invocations, so
``ctx.now()`` agrees with the fake service's timers).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

#: A replacement for the wall clock in the current context (a local runner's clock).
clock_override: ContextVar[Callable[[], datetime] | None] = ContextVar(
    "durable_async_clock", default=None
)


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC (the injected clock's, if any)."""
    override = clock_override.get()
    return override() if override is not None else datetime.now(UTC)


def epoch_millis() -> int:
    """Milliseconds since the Unix epoch."""
    return int(utc_now().timestamp() * 1000)
