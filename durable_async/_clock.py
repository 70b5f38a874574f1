"""The one place the SDK reads the wall clock (ruff bans direct reads elsewhere).

Durable code must not depend on when it runs; the few places that need the time (the ID of
an execution-result checkpoint, ``ctx.now()`` inside its step) ask here, so tests and the
local runner can see every read in one module.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def epoch_millis() -> int:
    """Milliseconds since the Unix epoch."""
    return int(utc_now().timestamp() * 1000)
