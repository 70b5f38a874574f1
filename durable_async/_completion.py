"""When a ``ctx.map`` or ``ctx.parallel`` ends: the completion policy and its custom rules.

``CompletionConfig`` holds AWS's thresholds (minimum successes, tolerated failures by count
or percentage) or a ``should_complete`` predicate of the user's; ``reason`` turns a batch's
progress into why it ends, or ``None`` while it goes on. What a batch returns is
``_batch.BatchResult``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import attrs

from durable_async._errors import ValidationError

if TYPE_CHECKING:
    from durable_async._batch import BatchItemStatus


class CompletionReason(StrEnum):
    """Why a batch ended."""

    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"
    CUSTOM_COMPLETION_SUCCEEDED = "CUSTOM_COMPLETION_SUCCEEDED"
    CUSTOM_COMPLETION_FAILED = "CUSTOM_COMPLETION_FAILED"


class CompletionOutcome(StrEnum):
    """Whether a ``should_complete`` predicate ends the batch as a success or a failure."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@attrs.frozen
class CompletionDecision:
    """What a ``should_complete`` predicate returns: go on, or end with an outcome.

    Build it with ``continue_batch()`` or ``complete_batch(outcome)``.
    """

    complete: bool
    outcome: CompletionOutcome | None = None

    def __attrs_post_init__(self) -> None:
        if self.complete != (self.outcome is not None):
            msg = "CompletionDecision needs an outcome exactly when complete is True"
            raise ValidationError(msg)


def continue_batch() -> CompletionDecision:
    """The predicate's answer while the batch should go on."""
    return CompletionDecision(complete=False)


def complete_batch(outcome: CompletionOutcome = CompletionOutcome.SUCCEEDED) -> CompletionDecision:
    """The predicate's answer to end the batch now (as a success unless told otherwise)."""
    return CompletionDecision(complete=True, outcome=outcome)


@attrs.frozen
class CompletionItemStatus:
    """One branch as a predicate sees it (``status`` is ``None`` until it starts)."""

    index: int
    name: str | None = None
    status: BatchItemStatus | None = None


@attrs.frozen
class CompletionStatus:
    """The batch's progress, handed to a ``should_complete`` predicate.

    ``items[i]`` is always branch ``i``, whatever order branches finish in, so a predicate
    can express quorums by index ("branch 0, or both 1 and 2").
    """

    success_count: int
    failure_count: int
    completed_count: int
    total_count: int
    items: tuple[CompletionItemStatus, ...] = ()


def _non_negative(name: str) -> Any:
    def check(_: object, __: object, value: int | float | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            msg = f"CompletionConfig.{name} must be a non-negative number, got {value!r}"
            raise ValidationError(msg)

    return check


def _check_min_successful(_: object, __: object, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        msg = f"CompletionConfig.min_successful must be at least 1, got {value!r}"
        raise ValidationError(msg)


def _check_percentage(_: object, __: object, value: float | None) -> None:
    _non_negative("tolerated_failure_percentage")(_, __, value)
    if value is not None and value > 100:
        msg = f"CompletionConfig.tolerated_failure_percentage must be at most 100, got {value!r}"
        raise ValidationError(msg)


@attrs.frozen
class CompletionConfig:
    """When a batch ends.

    With no field set, the first failure ends it. ``min_successful``: it ends once that many
    branches succeeded. ``tolerated_failure_count`` / ``tolerated_failure_percentage`` (of
    all branches): it ends once failures exceed them (strictly). Otherwise it ends when
    every branch has finished.
    """

    min_successful: int | None = attrs.field(default=None, validator=_check_min_successful)
    tolerated_failure_count: int | None = attrs.field(
        default=None, validator=_non_negative("tolerated_failure_count")
    )
    tolerated_failure_percentage: float | None = attrs.field(
        default=None, validator=_check_percentage
    )
    #: A custom rule instead of the thresholds: called with a ``CompletionStatus`` before
    #: any branch starts and after every branch finishes; it must be deterministic and
    #: monotonic (once it says complete, more progress must not say continue), because a
    #: resumed batch may show it the finished branches in a different grouping.
    should_complete: Callable[[CompletionStatus], CompletionDecision] | None = None

    def __attrs_post_init__(self) -> None:
        if self.should_complete is None:
            return
        if not callable(self.should_complete):
            msg = "CompletionConfig.should_complete must be callable"
            raise ValidationError(msg)
        thresholds = (
            self.min_successful,
            self.tolerated_failure_count,
            self.tolerated_failure_percentage,
        )
        if any(value is not None for value in thresholds):
            msg = (
                "CompletionConfig.should_complete cannot be combined with min_successful, "
                "tolerated_failure_count or tolerated_failure_percentage"
            )
            raise ValidationError(msg)

    @classmethod
    def all_successful(cls) -> CompletionConfig:
        """End at the first failure (every branch must succeed)."""
        return cls(tolerated_failure_count=0, tolerated_failure_percentage=0)

    @classmethod
    def all_completed(cls) -> CompletionConfig:
        """Run every branch, whatever fails."""
        return cls(tolerated_failure_percentage=100)

    @classmethod
    def first_successful(cls) -> CompletionConfig:
        """End as soon as one branch succeeds."""
        return cls(min_successful=1)

    def check_total(self, total: int) -> None:
        """Refuse a policy that cannot be met by ``total`` branches."""
        if self.min_successful is not None and self.min_successful > total:
            msg = (
                f"min_successful cannot be greater than total items: "
                f"{self.min_successful} > {total}"
            )
            raise ValidationError(msg)

    def tolerance_exceeded(self, failed: int, total: int) -> bool:
        """Whether ``failed`` failures out of ``total`` branches end the batch."""
        if self.should_complete is not None:
            return False  # the predicate alone decides
        count, percentage = self.tolerated_failure_count, self.tolerated_failure_percentage
        if self.min_successful is None and count is None and percentage is None:
            return failed > 0
        if count is not None and failed > count:
            return True
        return percentage is not None and total > 0 and failed / total * 100 > percentage

    def reason(
        self,
        succeeded: int,
        failed: int,
        total: int,
        items: Callable[[], tuple[CompletionItemStatus, ...]] = tuple,
    ) -> CompletionReason | None:
        """Why the batch ends with these counts, or ``None`` while it goes on.

        ``items`` builds the per-branch view for a ``should_complete`` predicate; it is
        only called when there is one.
        """
        if self.should_complete is not None:
            status = CompletionStatus(succeeded, failed, succeeded + failed, total, items())
            decision = self.should_complete(status)
            if not isinstance(decision, CompletionDecision):
                msg = (
                    "should_complete must return continue_batch() or complete_batch(...), "
                    f"got {decision!r}"
                )
                raise ValidationError(msg)
            if decision.complete:
                if decision.outcome is CompletionOutcome.FAILED:
                    return CompletionReason.CUSTOM_COMPLETION_FAILED
                return CompletionReason.CUSTOM_COMPLETION_SUCCEEDED
        elif self.tolerance_exceeded(failed, total):
            return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
        if succeeded + failed >= total:
            return CompletionReason.ALL_COMPLETED
        if self.min_successful is not None and succeeded >= self.min_successful:
            return CompletionReason.MIN_SUCCESSFUL_REACHED
        return None
