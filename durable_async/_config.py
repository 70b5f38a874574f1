"""Per-operation configuration objects."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import attrs

from durable_async._retry import RetryStrategy
from durable_async._serdes import SerDes
from durable_async._validation import validate_sub_type


class StepSemantics(StrEnum):
    """How often one attempt of a step may run."""

    #: START is checkpointed in the background; a crash mid-attempt re-runs the attempt.
    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    #: START is persisted before the body runs; a crash mid-attempt is never re-run: the
    #: attempt fails as interrupted and the retry strategy decides what happens next.
    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"


def _check_sub_type(_: object, __: object, value: str | None) -> None:
    validate_sub_type(value)


@attrs.frozen
class StepConfig:
    """How a step retries, how often an attempt may run, and how its result is stored."""

    retry_strategy: RetryStrategy | None = None
    step_semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: SerDes[Any] | None = None
    sub_type: str | None = attrs.field(default=None, validator=_check_sub_type, kw_only=True)
