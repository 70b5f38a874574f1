"""``Duration``: whole seconds, as the service counts them."""

from __future__ import annotations

import math
from datetime import timedelta

import attrs

from durable_async._errors import ValidationError


def _non_negative(_: object, __: object, value: int) -> None:
    if value < 0:
        msg = f"a duration cannot be negative (got {value} s)"
        raise ValidationError(msg)


@attrs.frozen
class Duration:
    """A span of time in whole seconds; fractions round up so nothing waits too little."""

    seconds: int = attrs.field(default=0, validator=_non_negative)

    @classmethod
    def of(
        cls,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> Duration:
        """Build from any mix of units."""
        total = days * 86400 + hours * 3600 + minutes * 60 + seconds
        if not math.isfinite(total):
            msg = f"a duration must be a finite number of seconds (got {total})"
            raise ValidationError(msg)
        # Round away float noise first: 8.3 minutes is 498 s, not 498.00000000000006 -> 499.
        return cls(math.ceil(round(total, 6)))

    @classmethod
    def from_seconds(cls, value: float) -> Duration:
        """Build from seconds."""
        return cls.of(seconds=value)

    @classmethod
    def from_minutes(cls, value: float) -> Duration:
        """Build from minutes."""
        return cls.of(minutes=value)

    @classmethod
    def from_hours(cls, value: float) -> Duration:
        """Build from hours."""
        return cls.of(hours=value)

    @classmethod
    def from_days(cls, value: float) -> Duration:
        """Build from days."""
        return cls.of(days=value)

    @classmethod
    def coerce(cls, value: Duration | timedelta | float) -> Duration:
        """Accept a ``Duration``, a ``timedelta`` or a number of seconds."""
        if isinstance(value, Duration):
            return value
        if isinstance(value, timedelta):
            return cls.of(seconds=value.total_seconds())
        if isinstance(value, bool) or not isinstance(value, int | float):
            msg = f"expected a Duration, timedelta or seconds, got {type(value).__qualname__}"
            raise ValidationError(msg)
        return cls.of(seconds=value)

    def to_seconds(self) -> int:
        """Total whole seconds."""
        return self.seconds


def wait_seconds(
    duration: Duration | timedelta | float | None,
    *,
    days: float = 0,
    hours: float = 0,
    minutes: float = 0,
    seconds: float = 0,
) -> int:
    """Whole seconds of a durable wait, given positionally or as units; at least one."""
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
    if not math.isfinite(raw):
        msg = f"a wait must last a finite number of seconds (got {raw})"
        raise ValidationError(msg)
    if raw < 1:
        msg = f"a wait must last at least 1 second (got {raw:g} s)"
        raise ValidationError(msg)
    return Duration.of(seconds=raw).seconds
