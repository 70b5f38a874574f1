"""``ctx.race``, ``ctx.any`` and ``ctx.all_settled``: combinators decided once and recorded.

``asyncio.wait(..., return_when=FIRST_COMPLETED)`` over operations is not replay-safe: on
replay every recorded operation is already done, so "first" can come out differently.
These run the operations in a child context (subtype ``Race`` / ``Any``) whose result is
the winner's, so replay returns the recorded winner and never runs the race again. The
operations are called (and get their IDs) in the caller's context, as anywhere else.

Among operations that are already finished when the race looks at them (on a resumed
race, say), the one given first wins: the decision never depends on scheduling.

``all_settled`` decides nothing by order, but it is recorded the same way so that a replay
returns the stored outcomes without re-running the operations, and, unlike
``gather(..., return_exceptions=True)``, it never hands the suspension signal back as a value.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from durable_async._batch import BatchItem, BatchItemStatus, BatchResult
from durable_async._completion import CompletionReason
from durable_async._config import ChildConfig
from durable_async._errors import ValidationError
from durable_async._identity import OperationIdentity
from durable_async._operations.batch import branch_error
from durable_async._operations.child import run_child
from durable_async._tasks import cancel_and_settle, collect_outcome
from durable_async._wire.models import Operation

if TYPE_CHECKING:
    from durable_async._context import DurableContext


class RaceKind(StrEnum):
    """Which outcome wins: the first to finish, or the first to succeed."""

    RACE = "Race"
    ANY = "Any"
    ALL_SETTLED = "AllSettled"


def check_operations(kind: RaceKind, operations: Sequence[object]) -> None:
    """Refuse, at the call, a race with no operations or with one that cannot be awaited.

    Raised before the race takes an ID (as other refused calls), with every operation given
    closed: those already called are not reported as never awaited, and no coroutine warns.
    """
    what = f"ctx.{_METHODS[kind]}"
    if not operations:
        msg = f"{what} needs at least one operation"
        raise ValidationError(msg)
    bad = next((i for i, op in enumerate(operations) if not inspect.isawaitable(op)), None)
    if bad is None:
        return
    close_operations(operations)
    got = type(operations[bad]).__name__
    msg = (
        f"{what} needs operations (awaitables such as ctx.step(f), ctx.wait(10) or a task "
        f"running one), got {got} at position {bad}"
    )
    raise ValidationError(msg)


def close_operations(operations: Sequence[object]) -> None:
    """Discard a race's operations: those not started are closed, tasks running them cancelled.

    For a refused race, and for one decided in an earlier invocation (not run again).
    """
    for op in operations:
        if inspect.iscoroutine(op):
            if inspect.getcoroutinestate(op) == inspect.CORO_CREATED:
                op.close()
        elif isinstance(op, asyncio.Future):
            op.cancel()


async def run_race(
    ctx: DurableContext,
    identity: OperationIdentity,
    recorded: Operation | None,
    kind: RaceKind,
    operations: Sequence[Awaitable[Any]],
) -> Any:
    """Replay or run a race over ``operations``."""
    if recorded is not None and recorded.status.is_terminal:
        # Decided in an earlier invocation: the operations are not run again.
        close_operations(operations)

    async def decide(child: DurableContext) -> Any:
        tasks: list[asyncio.Future[Any]] = [asyncio.ensure_future(op) for op in operations]
        for task in tasks:
            task.add_done_callback(collect_outcome)  # the race owns every outcome
        try:
            if kind is RaceKind.ALL_SETTLED:
                return await _settle(tasks)
            return await _first(tasks, kind)
        finally:
            await cancel_and_settle(tasks)  # the race has decided without them

    return await run_child(ctx._rt, identity, recorded, ctx, decide, (), _CONFIG)


async def _first(tasks: list[asyncio.Future[Any]], kind: RaceKind) -> Any:
    pending = set(tasks)
    while pending:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:  # in the order given: scheduling never picks the winner
            if task not in pending or not task.done():
                continue
            pending.discard(task)
            error = task.exception()
            if error is not None and not isinstance(error, Exception):
                raise error  # suspension and kin are not an outcome
            if kind is RaceKind.RACE or error is None:
                return task.result()
    # Every operation failed: the race fails as the first of them (in the order given)
    # did, so its error is what the child records and what ``ChildContextError`` is
    # caused by, on this run and on replay.
    first = tasks[0].exception()
    assert first is not None  # the loop ended: every task failed
    raise first


async def _settle(tasks: list[asyncio.Future[Any]]) -> BatchResult:
    await asyncio.wait(tasks)
    items: list[BatchItem] = []
    for index, task in enumerate(tasks):
        error = task.exception()
        if error is None:
            items.append(BatchItem(index, BatchItemStatus.SUCCEEDED, task.result()))
        elif not isinstance(error, Exception):
            raise error  # suspension and kin are not an outcome
        else:
            items.append(BatchItem(index, BatchItemStatus.FAILED, error=branch_error(error)))
    return BatchResult(tuple(items), CompletionReason.ALL_COMPLETED)


_CONFIG = ChildConfig()
_METHODS = {RaceKind.RACE: "race", RaceKind.ANY: "any", RaceKind.ALL_SETTLED: "all_settled"}
