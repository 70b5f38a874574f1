"""What ``ctx.map`` and ``ctx.parallel`` return, and the policy that decides when they end.

``BatchResult`` holds one ``BatchItem`` per branch that was started, in index order; the
branches a completion policy never started are absent, those it cut off while running
are ``STARTED``. Its wire form (the default encoding's ``br`` envelope, and the summary
stored instead when it is too large) is AWS's, so histories move between the two SDKs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import attrs

from durable_async._errors import (
    BatchCompletionError,
    ChildContextError,
    DurableOperationError,
    ValidationError,
)
from durable_async._wire.models import ErrorObject


class BatchItemStatus(StrEnum):
    """How one branch of a batch ended (``STARTED``: cut off by the completion policy)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


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


@attrs.frozen
class BatchItem:
    """One branch's outcome: its index, status, result (if it succeeded) or error."""

    index: int
    status: BatchItemStatus
    result: Any = None
    error: ErrorObject | None = None


def _error_dict(error: ErrorObject | None) -> dict[str, Any] | None:
    if error is None:
        return None
    fields = {
        "ErrorMessage": error.message,
        "ErrorType": error.type,
        "ErrorData": error.data,
        "StackTrace": list(error.stack_trace) if error.stack_trace is not None else None,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _error_from_dict(data: Any) -> ErrorObject | None:
    if not isinstance(data, dict):
        return None
    trace = data.get("StackTrace")
    return ErrorObject(
        message=data.get("ErrorMessage"),
        type=data.get("ErrorType"),
        data=data.get("ErrorData"),
        stack_trace=tuple(trace) if trace is not None else None,
    )


@attrs.frozen
class BatchResult:
    """The outcome of ``ctx.map`` or ``ctx.parallel``."""

    all: tuple[BatchItem, ...]
    completion_reason: CompletionReason

    def succeeded(self) -> list[BatchItem]:
        """The items whose branch succeeded."""
        return [item for item in self.all if item.status is BatchItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem]:
        """The items whose branch failed."""
        return [item for item in self.all if item.status is BatchItemStatus.FAILED]

    def started(self) -> list[BatchItem]:
        """The items whose branch was still running when the batch ended."""
        return [item for item in self.all if item.status is BatchItemStatus.STARTED]

    def get_results(self) -> list[Any]:
        """The results of the branches that succeeded, in index order."""
        return [item.result for item in self.succeeded()]

    def get_errors(self) -> list[ErrorObject | None]:
        """The errors of the branches that failed, in index order."""
        return [item.error for item in self.failed()]

    @property
    def success_count(self) -> int:
        """How many branches succeeded."""
        return len(self.succeeded())

    @property
    def failure_count(self) -> int:
        """How many branches failed."""
        return len(self.failed())

    @property
    def started_count(self) -> int:
        """How many branches were cut off while running."""
        return len(self.started())

    @property
    def total_count(self) -> int:
        """How many branches were started."""
        return len(self.all)

    @property
    def has_failure(self) -> bool:
        """Whether any branch failed."""
        return any(item.status is BatchItemStatus.FAILED for item in self.all)

    @property
    def status(self) -> BatchItemStatus:
        """``FAILED`` if any branch failed, else ``SUCCEEDED``; a custom outcome decides."""
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            return BatchItemStatus.FAILED
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_SUCCEEDED:
            return BatchItemStatus.SUCCEEDED
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    def throw_if_error(self) -> None:
        """Raise the first failure (in index order) as ``ChildContextError``.

        A batch a ``should_complete`` predicate ended as failed, with no failed branch,
        raises ``BatchCompletionError``.
        """
        for item in self.all:
            if item.status is BatchItemStatus.FAILED:
                error = item.error
                if error is None:
                    msg = f"Batch item {item.index} failed without an ErrorObject."
                    raise ChildContextError(msg)
                failure = ChildContextError(
                    error.message,
                    error_type=error.type,
                    data=error.data,
                    stack_trace=error.stack_trace,
                )
                raise failure from DurableOperationError.from_error_object(error)
        if self.completion_reason is CompletionReason.CUSTOM_COMPLETION_FAILED:
            msg = f"Batch completed as failed by should_complete ({self.completion_reason})"
            raise BatchCompletionError(msg)

    # -- the wire ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """AWS's dict form: ``all`` (index, status, result, error) and ``completionReason``."""
        return {
            "all": [
                {
                    "index": item.index,
                    "status": str(item.status),
                    "result": item.result,
                    "error": _error_dict(item.error),
                }
                for item in self.all
            ],
            "completionReason": str(self.completion_reason),
        }

    @classmethod
    def from_dict(cls, data: Any) -> BatchResult:
        """Read AWS's dict form back."""
        if not isinstance(data, dict) or not isinstance(data.get("all"), list):
            msg = "a stored batch result has no list of items"
            raise ValueError(msg)
        items = tuple(
            BatchItem(
                index=int(raw["index"]),
                status=BatchItemStatus(raw["status"]),
                result=raw.get("result"),
                error=_error_from_dict(raw.get("error")),
            )
            for raw in data["all"]
        )
        reason = data.get("completionReason")
        if reason is None:
            failed = any(item.status is BatchItemStatus.FAILED for item in items)
            reason = "FAILURE_TOLERANCE_EXCEEDED" if failed else "ALL_COMPLETED"
        return cls(items, CompletionReason(reason))


def summary_envelope(kind: str, result: BatchResult, user_summary: str | None) -> str:
    """What is stored instead of a result too large to store (AWS's summary record)."""
    started = [item.index for item in result.all if item.status is BatchItemStatus.STARTED]
    completed = [item.index for item in result.all if item.status is not BatchItemStatus.STARTED]
    record: dict[str, Any] = {
        "type": kind,
        "totalCount": result.total_count,
        "completionReason": str(result.completion_reason),
    }
    if len(completed) < len(started):
        record["completedIndexes"] = completed
    else:
        record["startedIndexes"] = started
    record["startedCount"] = len(started)
    record["successCount"] = result.success_count
    record["failureCount"] = result.failure_count
    record["status"] = str(result.status)
    if user_summary is not None:
        record["summary"] = user_summary
    return json.dumps(record)


@attrs.frozen
class CompletionRecord:
    """The summary record read back: enough to rebuild a batch from its branches."""

    total_count: int
    completion_reason: CompletionReason
    started: frozenset[int]

    @classmethod
    def parse(cls, payload: str | None) -> CompletionRecord | None:
        """The record in ``payload``, or ``None`` if it is not one."""
        try:
            data = json.loads(payload or "")
            total = int(data["totalCount"])
            reason = CompletionReason(data["completionReason"])
            if "startedIndexes" in data:
                started = frozenset(int(i) for i in data["startedIndexes"])
            else:
                completed = {int(i) for i in data["completedIndexes"]}
                started = frozenset(set(range(total)) - completed)
        except (ValueError, KeyError, TypeError):
            return None
        return cls(total, reason, started)
