"""``ctx.map`` and ``ctx.parallel``: branches as tasks on one loop, under a completion policy.

The batch is a CONTEXT operation (subtype ``Map`` / ``Parallel``) whose body is the
coordinator below. Branch ``i`` is a child context (``MapIteration`` / ``ParallelBranch``)
whose ID derives from ``i`` (AWS's ``blake2b(f"{batch}-{i}")``), so IDs and results never
depend on completion order. The coordinator starts branches in index order, at most
``max_concurrency`` in flight (a parked branch keeps its slot), and reads outcomes that
arrive together in index order, so the completion policy sees the same sequence on replay
wherever it can. When the policy is met, branches not started never start and running
ones are cancelled (a cancellation records nothing), and are reported ``STARTED``.

Suspension needs nothing special: a parked branch is a parked task, the coordinator joins
its branches, and the invocation suspends once no branch can move.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, overload

import attrs

from durable_async._batch import (
    BatchItem,
    BatchItemStatus,
    BatchResult,
    CompletionRecord,
    summary_envelope,
)
from durable_async._completion import CompletionItemStatus, CompletionReason
from durable_async._config import (
    ChildConfig,
    MapConfig,
    NestingType,
    ParallelBranch,
    ParallelConfig,
)
from durable_async._error_wire import error_object
from durable_async._errors import (
    BackendError,
    DurableOperationError,
    NonDeterministicExecutionError,
    ValidationError,
)
from durable_async._identity import OperationIdentity, operation_id
from durable_async._operations._common import body_hooks
from durable_async._operations.child import run_child, start_body
from durable_async._serdes import SerDesContext, deserialize, serialize
from durable_async._tasks import cancel_and_settle, collect_outcome
from durable_async._validation import validate_name
from durable_async._wire.enums import OperationStatus, OperationSubType, OperationType
from durable_async._wire.models import ErrorObject, Operation

if TYPE_CHECKING:
    from durable_async._context import DurableContext

#: The name a batch branch's task goes by in task namespaces (see ``_tasks.TaskInfo``):
#: the name of the coroutine that ran branches before ``run_child`` ran them directly.
BRANCH_TASK_QUALNAME = "_Coordinator._run_branch"

#: Errors that end the whole invocation, not just a branch.
_FATAL = (NonDeterministicExecutionError, BackendError)


class BatchKind(Enum):
    """What the batch records: its subtype, its branches' subtype, its summary's type."""

    MAP = (OperationSubType.MAP, OperationSubType.MAP_ITERATION, "MapResult")
    PARALLEL = (OperationSubType.PARALLEL, OperationSubType.PARALLEL_BRANCH, "ParallelResult")

    @property
    def branch_sub_type(self) -> OperationSubType:
        """The subtype of each branch's CONTEXT operation."""
        return self.value[1]

    @property
    def summary_type(self) -> str:
        """The ``type`` of the summary stored for a result too large to store."""
        return self.value[2]


@attrs.frozen
class Branch:
    """One branch to run: its name, and ``func(branch_ctx, *args)``."""

    name: str
    func: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]


class MapBranches(Sequence[Branch]):
    """``ctx.map``'s branches: ``func(ctx, item, index, items)``, named by ``namer``.

    Each ``Branch`` is made when it is read, not one per item up front: with no concurrency
    bound every branch of a large map is alive at once, and each object it holds adds to
    the cyclic GC's work. The namer is called for every item when the plan is made (each
    time the batch body runs, never when a finished batch replays), as AWS's SDK calls it,
    and each name it gives is checked then (``ValidationError``).
    """

    __slots__ = ("_func", "_items", "_names", "_values")

    def __init__(
        self,
        items: Sequence[Any],
        func: Callable[..., Awaitable[Any]],
        namer: Callable[[Any, int], str] | None,
    ) -> None:
        self._items = items
        #: The items as they are now: a branch that changes ``items`` while the map runs
        #: must not change what a later branch receives (replay would not see the change).
        self._values = tuple(items)
        self._func = func
        self._names = (
            None if namer is None else [_item_name(namer, x, i) for i, x in enumerate(items)]
        )

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> Branch: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Branch]: ...

    def __getitem__(self, index: int | slice) -> Branch | Sequence[Branch]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        name = f"map-item-{index}" if self._names is None else self._names[index]
        return Branch(name, self._func, (self._values[index], index, self._items))


def _item_name(namer: Callable[[Any, int], str], item: Any, index: int) -> str:
    """The name ``namer`` gives item ``index``, if the service accepts it.

    ``None`` and ``""`` stay as they are: the branch records no name.
    """
    name = namer(item, index)
    if inspect.isawaitable(name):
        if inspect.iscoroutine(name):
            name.close()  # never awaited: no RuntimeWarning for it
        msg = (
            f"map item {index}: item_namer returned an awaitable ({type(name).__name__}); "
            "item_namer must be a plain function returning a str"
        )
        raise ValidationError(msg)
    try:
        validate_name(name)
    except ValidationError as error:
        raise ValidationError(f"map item {index}: item_namer gave {error}") from None
    return name


def parallel_branches(branches: Sequence[Any]) -> Sequence[Branch]:
    """``ctx.parallel``'s branches: functions or ``ParallelBranch`` with a name of their own."""
    planned = []
    for index, branch in enumerate(branches):
        name = f"parallel-branch-{index}"
        if isinstance(branch, ParallelBranch):
            try:
                validate_name(branch.name)
            except ValidationError as error:
                msg = f"parallel branch {index}: ParallelBranch(name=...) is an {error}"
                raise ValidationError(msg) from None
            planned.append(Branch(name if branch.name is None else branch.name, branch.func, ()))
        else:
            planned.append(Branch(name, branch, ()))
    return planned


async def run_batch(
    ctx: DurableContext,
    identity: OperationIdentity,
    recorded: Operation | None,
    kind: BatchKind,
    plan: Callable[[], Sequence[Branch]],
    config: MapConfig | ParallelConfig,
) -> BatchResult:
    """Replay or run a batch: a child context whose body coordinates the branches.

    The plan is made before the batch's child context starts, when its body is to run: a
    branch name the service would refuse raises ``ValidationError`` here, with nothing
    sent for the batch. Any other error making the plan fails the batch from its body, as
    it did when the body made the plan.
    """
    record = None
    body_runs = recorded is None or recorded.status is OperationStatus.STARTED
    if recorded is not None and recorded.status is OperationStatus.SUCCEEDED:
        details = recorded.context_details
        if details is not None and details.replay_children:
            body_runs = True
            record = CompletionRecord.parse(details.result)
    planned: Sequence[Branch] | None = None
    plan_error: Exception | None = None
    if body_runs:
        try:
            planned = plan()
        except ValidationError:
            raise
        except Exception as error:  # the namer's own error: the body raises it, as before
            plan_error = error
    user_summary = config.summary_generator

    def summarize(result: Any) -> str:
        extra = user_summary(result) if user_summary is not None else None
        return summary_envelope(kind.summary_type, result, extra)

    async def coordinate(batch_ctx: DurableContext) -> BatchResult:
        if plan_error is not None:
            raise plan_error
        assert planned is not None  # the body runs exactly when ``body_runs`` says
        coordinator = _Coordinator(batch_ctx, identity.id, kind, planned, config)
        if record is not None:
            return await coordinator.rebuild(record)
        return await coordinator.run()

    child_config = ChildConfig(serdes=config.serdes, summary_generator=summarize)
    result: BatchResult = await run_child(
        ctx._rt, identity, recorded, ctx, coordinate, (), child_config
    )
    return result


class _Coordinator:
    """Runs the branches of one batch and decides when it ends."""

    def __init__(
        self,
        batch_ctx: DurableContext,
        batch_id: str,
        kind: BatchKind,
        branches: Sequence[Branch],
        config: MapConfig | ParallelConfig,
    ) -> None:
        self._ctx = batch_ctx
        self._batch_id = batch_id
        self._kind = kind
        self._branches = branches
        self._config = config
        self._item_serdes = config.item_serdes or config.serdes
        #: Every branch's child config (frozen): one for the batch, not one per branch.
        self._branch_config = ChildConfig(serdes=self._item_serdes)
        #: Whether the branches run again only to rebuild a result too large to store.
        self._rebuilding = False

    async def run(self) -> BatchResult:
        """Run branches until the completion policy is met; report them in index order."""
        total = len(self._branches)
        policy = self._config.completion_config
        limit = self._config.max_concurrency or max(total, 1)
        items: dict[int, BatchItem] = {}
        running: dict[asyncio.Task[Any], int] = {}
        # Finished branches arrive here through their done callbacks: each completion costs
        # the same however many branches are in flight.
        finished: asyncio.Queue[asyncio.Task[Any]] = asyncio.Queue()
        succeeded = failed = 0
        started = 0

        def view() -> tuple[CompletionItemStatus, ...]:
            in_flight = set(running.values())
            return tuple(
                CompletionItemStatus(
                    index,
                    branch.name,
                    items[index].status
                    if index in items
                    else (BatchItemStatus.STARTED if index in in_flight else None),
                )
                for index, branch in enumerate(self._branches)
            )

        def branch_done(task: asyncio.Task[Any]) -> None:
            collect_outcome(task)  # the coordinator owns it
            finished.put_nowait(task)

        # Told by the invocation's task registry, from the one done callback it has on
        # every task (a callback waiting to run counts as the invocation's work).
        tasks = self._ctx._rt.tasks

        # A custom predicate is asked once before anything starts, as AWS's SDK does.
        reason = CompletionReason.ALL_COMPLETED if total == 0 else policy.reason(0, 0, total, view)
        try:
            while reason is None:
                while started < total and len(running) < limit:
                    task = asyncio.create_task(self._run_branch(started))
                    running[task] = started
                    tasks.when_done(task, branch_done)
                    started += 1
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                for task in sorted(done, key=running.__getitem__):
                    index = running.pop(task)
                    item = _outcome(index, task)
                    items[index] = item
                    if item.status is BatchItemStatus.SUCCEEDED:
                        succeeded += 1
                    else:
                        failed += 1
                    if reason is None:
                        reason = policy.reason(succeeded, failed, total, view)
        finally:
            await cancel_and_settle(running)  # their cancellation records nothing
        for index in running.values():
            items[index] = BatchItem(index, BatchItemStatus.STARTED)
        return BatchResult(tuple(items[i] for i in sorted(items)), reason)

    async def rebuild(self, record: CompletionRecord) -> BatchResult:
        """Rebuild a result too large to have been stored, from its branches' records."""
        self._rebuilding = True
        items = []
        for index in range(min(record.total_count, len(self._branches))):
            if index in record.started:
                items.append(BatchItem(index, BatchItemStatus.STARTED))
                continue
            task = asyncio.create_task(self._run_branch(index))
            await asyncio.wait((task,))
            items.append(_outcome(index, task))
        return BatchResult(tuple(items), record.completion_reason)

    def _run_branch(self, index: int) -> Coroutine[Any, Any, Any]:
        """Run branch ``index`` in its own (NESTED) or virtual (FLAT) child context.

        A NESTED branch's task runs ``run_child`` itself, which matches the branch against
        the history as its first act: no coroutine of the batch's own stays suspended
        under every branch of a large map.
        """
        branch = self._branches[index]
        identity = OperationIdentity(
            operation_id(self._batch_id, index),
            OperationType.CONTEXT,
            self._kind.branch_sub_type,
            branch.name or None,
            self._batch_id,
        )
        if self._config.nesting is NestingType.FLAT:
            coro = self._run_flat_branch(identity, branch.func, branch.args)
        else:
            ctx = self._ctx
            coro = run_child(
                ctx._rt,
                identity,
                None,
                ctx,
                branch.func,
                branch.args,
                self._branch_config,
                match=True,
            )
        # Tasks made inside the branch are named after its task's coroutine, and the IDs
        # of their operations derive from those names: they stay what earlier releases
        # recorded, so an execution started before an upgrade replays after it.
        coro.__qualname__ = BRANCH_TASK_QUALNAME  # type: ignore[attr-defined]  # a coroutine object
        return coro

    async def _run_flat_branch(
        self,
        identity: OperationIdentity,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> Any:
        """A FLAT branch: its body in a virtual context, with no operation of its own."""
        from durable_async._context import DurableContext

        rt = self._ctx._rt
        branch_id = identity.id
        # No operation of its own to say whether it ran before: its first one does.
        replayed = operation_id(branch_id, 1) in rt.log
        virtual = DurableContext(rt, parent_id=self._batch_id, prefix=branch_id, replaying=replayed)
        # User code all the same: its runs are reported as a nested branch's are
        # (attempt 1 on the first, None when it runs again).
        hooks = body_hooks(
            rt,
            identity,
            is_replayed=replayed,
            attempt=None if replayed else 1,
            replay_children=self._rebuilding,
        )
        async with hooks:
            virtual._bind()
            try:
                value = await start_body(identity, func, virtual, args)
            finally:
                virtual._unbind()
        context = SerDesContext(branch_id, rt.arn)
        payload = await serialize(self._item_serdes, value, context)
        return None if payload is None else await deserialize(self._item_serdes, payload, context)


def _outcome(index: int, task: asyncio.Task[Any]) -> BatchItem:
    """The item for a finished branch task; errors that end the invocation propagate."""
    error = task.exception()
    if error is None:
        return BatchItem(index, BatchItemStatus.SUCCEEDED, task.result())
    if isinstance(error, _FATAL) or not isinstance(error, Exception):
        raise error  # the suspension signal, a replay mismatch, the backend: not a branch's
    return BatchItem(index, BatchItemStatus.FAILED, error=branch_error(error))


def branch_error(error: Exception) -> ErrorObject:
    """What a failed branch records: the error its body raised (type and message)."""
    if isinstance(error, DurableOperationError):
        return ErrorObject(
            message=error.message,
            type=error.error_type,
            data=error.data,
            stack_trace=error.stack_trace,
        )
    return error_object(error)
