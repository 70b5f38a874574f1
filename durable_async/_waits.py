"""Wait strategies for ``wait_for_condition``, with the semantics of AWS's SDK."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

import attrs

from durable_async._duration import Duration, name_invalid_fields, to_duration
from durable_async._errors import WaitForConditionError
from durable_async._retry import JitterStrategy

T = TypeVar("T")


@attrs.frozen(field_transformer=name_invalid_fields)
class WaitForConditionDecision:
    """Whether to poll again, and after how long.

    ``delay`` takes a ``Duration``, a ``timedelta`` or seconds, rounded up to whole seconds;
    the next check waits at least the service's minimum of 1 s whatever the delay.
    """

    should_continue: bool
    delay: Duration = attrs.field(default=Duration(), converter=to_duration)

    @property
    def delay_seconds(self) -> int:
        """The delay in whole seconds."""
        return self.delay.seconds

    @classmethod
    def continue_waiting(cls, delay: Duration | timedelta | float) -> WaitForConditionDecision:
        """Poll again after ``delay``: a ``Duration``, a ``timedelta`` or seconds."""
        return cls(True, delay)

    @classmethod
    def stop_polling(cls) -> WaitForConditionDecision:
        """The condition holds: finish with the current state."""
        return cls(False)


WaitStrategy = Callable[[Any, int], WaitForConditionDecision]


@attrs.frozen(field_transformer=name_invalid_fields)
class WaitStrategyConfig(Generic[T]):
    """Backoff for polling: ``initial_delay * backoff_rate ** (attempt - 1)``, capped.

    ``should_continue_polling(state)`` decides from the latest state; after
    ``max_attempts`` checks without success the operation fails. The delays take a
    ``Duration``, a ``timedelta`` or seconds, with the rules of ``RetryStrategyConfig``
    (fractions round up; below 1 s means the service's minimum of 1 s).
    """

    should_continue_polling: Callable[[T], bool]
    max_attempts: int = 60
    initial_delay: Duration = attrs.field(default=Duration(5), converter=to_duration)
    max_delay: Duration = attrs.field(default=Duration(300), converter=to_duration)
    backoff_rate: float = 1.5
    jitter_strategy: JitterStrategy = JitterStrategy.FULL


def create_wait_strategy(config: WaitStrategyConfig[T]) -> WaitStrategy:
    """Build a wait strategy from ``config``."""

    def strategy(state: T, attempts_made: int) -> WaitForConditionDecision:
        if not config.should_continue_polling(state):
            return WaitForConditionDecision.stop_polling()
        if attempts_made >= config.max_attempts:
            msg = f"the condition was not met within {config.max_attempts} attempts"
            raise WaitForConditionError(msg)
        base = config.initial_delay.seconds * config.backoff_rate ** (attempts_made - 1)
        base = min(base, config.max_delay.seconds)
        return WaitForConditionDecision.continue_waiting(
            Duration(config.jitter_strategy.finalize(base))
        )

    return strategy
