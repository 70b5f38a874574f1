"""``Duration``: whole seconds, as the service counts them.

Every place that takes a duration (``ctx.wait``, retry and wait strategy configs, their
decisions, callback timeouts) accepts the same inputs and applies the same rules:

* a ``Duration``, a ``datetime.timedelta`` or a number of seconds (``int`` or ``float``);
* fractions round up to whole seconds, so nothing waits too little (``1.2`` -> 2 s);
* negative, infinite or NaN values, ``bool``, strings and other types raise
  ``ValidationError`` where the value is given, never later during an execution.

``ctx.wait`` adds one rule of its own: a wait lasts at least 1 second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from types import FunctionType
from typing import Any

import attrs

from durable_async._errors import ValidationError


def _whole_seconds(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = (
            f"Duration() takes whole seconds, got {value!r}; "
            "use Duration.from_seconds() or Duration.coerce() to round a fraction up"
        )
        raise ValidationError(msg)
    if value < 0:
        msg = f"a duration cannot be negative (got {value} s)"
        raise ValidationError(msg)


def _checked_total(total: float) -> float:
    """``total`` seconds if finite and not negative, else ``ValidationError``."""
    try:
        finite = math.isfinite(total)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        msg = f"a duration must be a finite number of seconds (got {total})"
        raise ValidationError(msg)
    if total < 0:
        msg = f"a duration cannot be negative (got {total:g} s)"
        raise ValidationError(msg)
    return total


def _raw_seconds(value: object) -> float:
    """Exact seconds of a ``Duration``, ``timedelta`` or number, checked but not rounded."""
    if isinstance(value, Duration):
        return value.seconds
    if isinstance(value, timedelta):
        return _checked_total(value.total_seconds())
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = (
            "expected a Duration, timedelta or number of seconds, "
            f"got {type(value).__qualname__} {value!r}"
        )
        raise ValidationError(msg)
    return _checked_total(value)


def _round_up(total: float) -> int:
    # Round away float noise first: 8.3 minutes is 498 s, not 498.00000000000006 -> 499.
    return math.ceil(round(total, 6))


@attrs.frozen
class Duration:
    """A span of time in whole seconds.

    ``Duration(n)`` takes a non-negative ``int``; the builders (``of``, ``from_seconds``,
    ``coerce``, ...) take fractions and round them up so nothing waits too little.
    """

    seconds: int = attrs.field(default=0, validator=_whole_seconds)

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
        return cls(_round_up(_checked_total(total)))

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
        """Accept a ``Duration``, a ``timedelta`` or a number of seconds (rounded up)."""
        if isinstance(value, Duration):
            return value
        return cls(_round_up(_raw_seconds(value)))

    def to_seconds(self) -> int:
        """Total whole seconds."""
        return self.seconds


def to_duration(value: Duration | timedelta | float) -> Duration:
    """Convert a duration field's value (an attrs converter); the module docstring has the rules."""
    return Duration.coerce(value)


def name_invalid_fields(
    cls: type, fields: list[attrs.Attribute[Any]]
) -> list[attrs.Attribute[Any]]:
    """Make a converter's ``ValidationError`` name its field (an attrs ``field_transformer``).

    mypy reads the plain converter (``to_duration``) for the constructor's argument types;
    at runtime each converter is wrapped so the message says ``Class.field: ...``.
    """
    return [
        field.evolve(converter=_naming(f"{cls.__name__}.{field.name}", field.converter))
        if isinstance(field.converter, FunctionType)
        else field
        for field in fields
    ]


def _naming(label: str, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def converter(value: Any) -> Any:
        try:
            return convert(value)
        except ValidationError as error:
            raise ValidationError(f"{label}: {error}") from None

    return converter


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
        raw = _raw_seconds(duration)
    else:
        raw = _checked_total(days * 86400 + hours * 3600 + minutes * 60 + seconds)
    if raw < 1:
        msg = f"a wait must last at least 1 second (got {raw:g} s)"
        raise ValidationError(msg)
    return _round_up(raw)
