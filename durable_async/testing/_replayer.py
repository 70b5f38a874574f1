"""``replay``: run recorded executions against the current code, with no service.

Before deploying a change, replay real histories (``durable-async show --json``, the API's
``GetDurableExecutionHistory``) against it: every operation the code issues must be the
one recorded at that position, as Temporal's Replayer checks commands against events.
The replay stops at the first difference, or at the first operation past the recording
(the execution was still running when recorded, or the code now does more). Step bodies
already recorded never run; a step new to the history may start before the replayer
sees its first checkpoint, as the SDK sends that alongside the body.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

from durable_async._entry import DurableHandler
from durable_async._errors import CheckpointError
from durable_async._replay import replay_observer
from durable_async._wire.enums import InvocationStatus, OperationStatus, OperationType
from durable_async._wire.models import CheckpointRequest, CheckpointResponse, Operation
from durable_async.testing._history import History, HistoryOperation
from durable_async.testing._memory import MemoryBackend

_NEW_OPERATION = "ReplayReachedNewOperation"


@attrs.frozen
class ReplayOutcome:
    """What a replay found: ``ok`` unless the code no longer matches the history."""

    ok: bool
    #: Why not, naming the first operation that differs.
    problem: str | None = None
    #: How far it got: recorded operations the replay went past without a difference.
    replayed: int = 0
    #: True when the replay reached the end of the recording (the execution ran on).
    reached_end: bool = False

    def __str__(self) -> str:
        if not self.ok:
            return f"NON-DETERMINISTIC: {self.problem}"
        where = "up to the end of the recording" if self.reached_end else "to the same outcome"
        return f"OK: the code replays the history {where}"


class _ReplayBackend(MemoryBackend):
    """Answers only from the recording; the first update past it stops the replay."""

    def __init__(self, recorded: dict[str, Operation]) -> None:
        super().__init__()
        self.recorded = recorded
        self.new: list[str] = []

    async def checkpoint(
        self, params: CheckpointRequest, logger: logging.Logger
    ) -> CheckpointResponse:
        for update in params.updates:
            if update.type is OperationType.EXECUTION:
                continue
            recorded = self.recorded.get(update.id)
            if recorded is None:
                what = f"{update.type.value} {update.name!r}" if update.name else update.type.value
                self.new.append(f"{what} (id {update.id})")
                raise CheckpointError(
                    f"replay reached {what}, which the history does not have",
                    retryable=False,
                    code=_NEW_OPERATION,
                )
        return await super().checkpoint(params, logger)


async def replay(handler: DurableHandler[Any], history: History) -> ReplayOutcome:
    """Replay ``history`` against ``handler``; the first non-deterministic operation, if any."""
    from durable_async.testing._runner import LocalRunner

    recorded = {op.id: op for op in history.operations}
    execution = history.execution
    input_payload = (
        execution.operation.execution_details.input_payload
        if execution is not None and execution.operation.execution_details
        else None
    )
    backend = _ReplayBackend(recorded)
    arn = backend.start_execution(input_payload, arn=history.arn)
    state = backend.executions[arn]
    for op in history:  # the recording as the service would hand it to a new invocation
        state.operations[op.id] = op.operation
    reached: set[str] = set()
    runner = LocalRunner(handler, backend, max_invocations=1)
    token = replay_observer.set(lambda op: reached.add(op.id))
    try:
        result = await runner.resume(arn, skip_time=False)
    finally:
        replay_observer.reset(token)
    replayed = len(history)
    error = result.error
    if error is not None and error.type and "NonDeterministicExecutionError" in error.type:
        return ReplayOutcome(False, error.message, replayed)
    if backend.new:
        if execution is not None and execution.status.is_terminal:
            problem = (
                f"the code now issues {backend.new[0]} where the recorded execution had "
                f"already ended {execution.status.value}"
            )
            return ReplayOutcome(False, problem, replayed)
        return ReplayOutcome(True, replayed=replayed, reached_end=True)
    if result.status is InvocationStatus.PENDING:
        return ReplayOutcome(True, replayed=replayed, reached_end=True)
    skipped = _first_skipped(history, reached)
    if skipped is not None:
        problem = (
            f"the code now ends {result.status.value} without reaching the recorded "
            f"{skipped.type.value} {skipped.name!r} (id {skipped.id})"
            + (f"; it failed with {error.type}: {error.message}" if error is not None else "")
        )
        return ReplayOutcome(False, problem, replayed)
    if execution is not None and execution.status.is_terminal:
        expected = (
            InvocationStatus.SUCCEEDED
            if execution.status is OperationStatus.SUCCEEDED
            else InvocationStatus.FAILED
        )
        if result.status is not expected:
            problem = (
                f"the recorded execution ended {execution.status.value} but the code now ends "
                f"{result.status.value}"
                + (f" ({error.type}: {error.message})" if error is not None else "")
            )
            return ReplayOutcome(False, problem, replayed)
    elif execution is not None:
        problem = f"the code now ends {result.status.value} where the recording was still running"
        return ReplayOutcome(False, problem, replayed)
    return ReplayOutcome(True, replayed=replayed)


def _first_skipped(history: History, reached: set[str]) -> HistoryOperation | None:
    """A recorded operation the finished code never issued, where it had to.

    Children of a finished context that was not re-run are skipped legitimately (the
    SDK returns the context's stored result); top-level operations, and children of
    contexts the code re-entered and left unfinished, are not.
    """
    for node in history:
        if node.id in reached:
            continue
        parent = node.operation.parent_id
        if parent is None:
            return node
        if parent in reached and not history.by_id(parent).status.is_terminal:
            return node
    return None
