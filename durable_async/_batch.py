"""What ``ctx.map`` and ``ctx.parallel`` return (the policy that ends them: ``_completion``).

``BatchResult`` holds one ``BatchItem`` per branch that was started, in index order; the
branches a completion policy never started are absent, those it cut off while running
are ``STARTED``. Its wire form (the default encoding's ``br`` envelope, and the summary
stored instead when it is too large) is AWS's, so histories move between the two SDKs.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import attrs

from durable_async._completion import CompletionReason
from durable_async._errors import BatchCompletionError, ChildContextError, DurableOperationError
from durable_async._wire.models import ErrorObject


class BatchItemStatus(StrEnum):
    """How one branch of a batch ended (``STARTED``: cut off by the completion policy)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


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
