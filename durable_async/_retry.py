"""Retry strategies with the semantics of AWS's SDKs (names, defaults, jitter, rounding).

A strategy is any callable ``(error, attempts_made) -> RetryDecision``. The decision's delay
is checkpointed with the failed attempt, so randomness here never breaks replay.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum

import attrs

from durable_async._duration import Duration, name_invalid_fields, to_duration


class JitterStrategy(StrEnum):
    """How much randomness spreads out retries (see AWS's backoff-and-jitter article)."""

    NONE = "NONE"
    FULL = "FULL"  # uniform in [0, delay]
    HALF = "HALF"  # uniform in [delay / 2, delay]

    def apply(self, delay: float) -> float:
        """Return ``delay`` with this jitter applied."""
        if self is JitterStrategy.NONE:
            return delay
        if self is JitterStrategy.HALF:
            return delay / 2 + random.random() * delay / 2
        return random.random() * delay

    def finalize(self, base_delay: float) -> int:
        """Apply jitter, round up, and never go below the service's minimum of 1 s."""
        return max(1, math.ceil(self.apply(base_delay)))


@attrs.frozen(field_transformer=name_invalid_fields)
class RetryDecision:
    """Whether to retry, and after how long.

    ``delay`` takes a ``Duration``, a ``timedelta`` or seconds, rounded up to whole seconds;
    the step waits at least the service's minimum of 1 s whatever the delay.
    """

    should_retry: bool
    delay: Duration = attrs.field(default=Duration(), converter=to_duration)

    @property
    def delay_seconds(self) -> int:
        """The delay in whole seconds."""
        return self.delay.seconds

    @classmethod
    def retry(cls, delay: Duration | timedelta | float) -> RetryDecision:
        """Retry after ``delay``: a ``Duration``, a ``timedelta`` or seconds."""
        return cls(True, delay)

    @classmethod
    def no_retry(cls) -> RetryDecision:
        """Give up."""
        return cls(False)


RetryStrategy = Callable[[Exception, int], RetryDecision]
ErrorPattern = str | re.Pattern[str]


@attrs.frozen(field_transformer=name_invalid_fields)
class RetryStrategyConfig:
    """Exponential backoff: ``initial_delay * backoff_rate ** (attempt - 1)``, capped.

    ``initial_delay`` and ``max_delay`` take a ``Duration``, a ``timedelta`` or a number of
    seconds, as ``ctx.wait`` does, and are stored as ``Duration``. The service counts delays
    in whole seconds, so fractions round up (``0.5`` -> 1 s, ``1.2`` -> 2 s); unlike a wait,
    a delay below 1 s (even ``0``) is allowed, since every computed delay is raised to the
    service's minimum of 1 s. Negative, infinite or non-numeric values raise
    ``ValidationError`` here, not when a step fails.

    ``retryable_errors`` (substrings or regexes of the message) and ``retryable_error_types``
    restrict which errors retry; with neither set, every error does.
    """

    max_attempts: int = 3
    initial_delay: Duration = attrs.field(default=Duration(5), converter=to_duration)
    max_delay: Duration = attrs.field(default=Duration(300), converter=to_duration)
    backoff_rate: float = 2.0
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: Sequence[ErrorPattern] | None = None
    retryable_error_types: Sequence[type[Exception]] | None = None


@attrs.frozen(field_transformer=name_invalid_fields)
class LinearRetryStrategyConfig:
    """Linear backoff: ``initial_delay + increment * (attempt - 1)``, capped.

    The delays take a ``Duration``, a ``timedelta`` or seconds, with the rules of
    ``RetryStrategyConfig``.
    """

    max_attempts: int = 6
    initial_delay: Duration = attrs.field(default=Duration(1), converter=to_duration)
    increment: Duration = attrs.field(default=Duration(1), converter=to_duration)
    max_delay: Duration = attrs.field(default=Duration(300), converter=to_duration)
    jitter_strategy: JitterStrategy = JitterStrategy.FULL
    retryable_errors: Sequence[ErrorPattern] | None = None
    retryable_error_types: Sequence[type[Exception]] | None = None


def _error_filter(
    patterns: Sequence[ErrorPattern] | None, types: Sequence[type[Exception]] | None
) -> Callable[[Exception], bool]:
    if patterns is None and types is None:
        return lambda _: True
    if isinstance(patterns, str | re.Pattern):
        patterns = [patterns]  # one pattern, not a sequence of characters
    if isinstance(types, type):
        types = [types]
    pattern_list = list(patterns or ())
    type_tuple = tuple(types or ())

    def matches(error: Exception) -> bool:
        if type_tuple and isinstance(error, type_tuple):
            return True
        text = str(error)
        return any(
            p.search(text) is not None if isinstance(p, re.Pattern) else p in text
            for p in pattern_list
        )

    return matches


def create_retry_strategy(config: RetryStrategyConfig | None = None) -> RetryStrategy:
    """Build an exponential-backoff strategy from ``config``."""
    cfg = config or RetryStrategyConfig()
    retryable = _error_filter(cfg.retryable_errors, cfg.retryable_error_types)

    def strategy(error: Exception, attempts_made: int) -> RetryDecision:
        if attempts_made >= cfg.max_attempts or not retryable(error):
            return RetryDecision.no_retry()
        base = cfg.initial_delay.seconds * cfg.backoff_rate ** (attempts_made - 1)
        base = min(base, cfg.max_delay.seconds)
        return RetryDecision.retry(Duration(cfg.jitter_strategy.finalize(base)))

    return strategy


def create_linear_retry_strategy(config: LinearRetryStrategyConfig | None = None) -> RetryStrategy:
    """Build a linear-backoff strategy from ``config``."""
    cfg = config or LinearRetryStrategyConfig()
    retryable = _error_filter(cfg.retryable_errors, cfg.retryable_error_types)

    def strategy(error: Exception, attempts_made: int) -> RetryDecision:
        if attempts_made >= cfg.max_attempts or not retryable(error):
            return RetryDecision.no_retry()
        base = cfg.initial_delay.seconds + cfg.increment.seconds * (attempts_made - 1)
        base = min(base, cfg.max_delay.seconds)
        return RetryDecision.retry(Duration(cfg.jitter_strategy.finalize(base)))

    return strategy


class RetryPresets:
    """Ready-made strategies with AWS's names and parameters."""

    @staticmethod
    def none() -> RetryStrategy:
        """A single attempt."""
        return create_retry_strategy(RetryStrategyConfig(max_attempts=1))

    @staticmethod
    def default() -> RetryStrategy:
        """Used when a step has no strategy: 6 attempts, 5 s, x2, 60 s cap, full jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=6,
                initial_delay=Duration(5),
                max_delay=Duration(60),
                backoff_rate=2,
                jitter_strategy=JitterStrategy.FULL,
            )
        )

    @staticmethod
    def transient() -> RetryStrategy:
        """Quick retries for transient errors: 3 attempts, half jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(max_attempts=3, backoff_rate=2, jitter_strategy=JitterStrategy.HALF)
        )

    @staticmethod
    def resource_availability() -> RetryStrategy:
        """Longer retries while a resource comes up: 5 attempts, 5 s, x2, 5 min cap."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=5, initial_delay=Duration(5), max_delay=Duration(300), backoff_rate=2
            )
        )

    @staticmethod
    def critical() -> RetryStrategy:
        """Aggressive retries: 10 attempts, 1 s, x1.5, 60 s cap, no jitter."""
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=10,
                initial_delay=Duration(1),
                max_delay=Duration(60),
                backoff_rate=1.5,
                jitter_strategy=JitterStrategy.NONE,
            )
        )

    @staticmethod
    def linear() -> RetryStrategy:
        """1 s, 2 s, 3 s, ... for 6 attempts, no jitter."""
        return create_linear_retry_strategy(
            LinearRetryStrategyConfig(jitter_strategy=JitterStrategy.NONE)
        )

    @staticmethod
    def fixed(interval: Duration | timedelta | float | None = None) -> RetryStrategy:
        """The same delay (default 5 s; a ``Duration``, ``timedelta`` or seconds), 5 attempts."""
        delay = Duration(5) if interval is None else to_duration(interval)
        return create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=5,
                initial_delay=delay,
                max_delay=delay,
                backoff_rate=1,
                jitter_strategy=JitterStrategy.NONE,
            )
        )
