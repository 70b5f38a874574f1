"""What checkpoint responses change, told to plugins as the service reports it.

``on_operation_change`` gets the operations whose status a response changed and the full
operation map; ``on_operation_end`` gets the operations a response shows ended by another
party (a wait that elapsed, a callback answered, a chained invoke that finished), since no
code of this invocation ends them. The batcher feeds a ``MergeWatcher`` only when a plugin
defines one of the two hooks; the full map builds each info only when a plugin reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from durable_async._plugin_types import OperationChangeInfo, OperationEndInfo, OperationInfo
from durable_async._plugins import PluginDispatcher
from durable_async._replay import OperationLog
from durable_async._wire.enums import OperationAction, OperationStatus, OperationType
from durable_async._wire.models import Operation, OperationUpdate


class OperationInfos(Mapping[str, OperationInfo]):
    """Operation infos by ID over a snapshot of operations, each built when first read.

    The full map of a large execution is read rarely and changes by a few operations per
    checkpoint, so building every info for every response would cost more than the hook.
    """

    __slots__ = ("_built", "_operations")

    def __init__(self, operations: Mapping[str, Operation]) -> None:
        self._operations = operations
        self._built: dict[str, OperationInfo] = {}

    def __getitem__(self, operation_id: str) -> OperationInfo:
        info = self._built.get(operation_id)
        if info is None:
            info = OperationInfo.from_operation(self._operations[operation_id])
            self._built[operation_id] = info
        return info

    def __contains__(self, operation_id: object) -> bool:
        return operation_id in self._operations

    def __iter__(self) -> Iterator[str]:
        return iter(self._operations)

    def __len__(self) -> int:
        return len(self._operations)

    def __repr__(self) -> str:
        return f"OperationInfos({len(self)} operations)"


#: Actions that end an operation: what one of them in the same call ended, this invocation
#: ended (and reports where it does so).
_TERMINAL_ACTIONS = frozenset(
    {OperationAction.SUCCEED, OperationAction.FAIL, OperationAction.CANCEL}
)


class MergeWatcher:
    """Collects what one checkpoint call's response changes, then tells the plugins.

    The batcher shows it each set of operations before recording them (the response's,
    then any further state pages'), and calls ``merged`` once the call is settled (in the
    flush task: the next call waits for the hooks).
    """

    __slots__ = ("_dispatcher", "_log", "_previous", "_returned")

    def __init__(self, dispatcher: PluginDispatcher, log: OperationLog) -> None:
        self._dispatcher = dispatcher
        self._log = log
        #: Status before the call of each operation returned (None: not known before).
        self._previous: dict[str, OperationStatus | None] = {}
        #: The newest view of each operation returned.
        self._returned: dict[str, Operation] = {}

    def before_merge(self, operations: Iterable[Operation]) -> None:
        """Note the status the log holds for ``operations`` before it records them."""
        previous, returned, log = self._previous, self._returned, self._log
        for op in operations:
            if op.id not in previous:
                known = log.get(op.id)
                previous[op.id] = known.status if known is not None else None
            returned[op.id] = op

    async def merged(self, updates: Sequence[OperationUpdate]) -> None:
        """Report the operations whose status the call changed, then forget them."""
        previous, returned = self._previous, self._returned
        if not returned:
            return
        self._previous, self._returned = {}, {}
        changed = [op for op in returned.values() if previous[op.id] is not op.status]
        if not changed:
            return
        plugins = self._dispatcher
        if plugins.wants("on_operation_end"):
            own = {u.id for u in updates if u.action in _TERMINAL_ACTIONS}
            for op in changed:
                if (
                    op.status.is_terminal
                    and op.id not in own
                    and op.type is not OperationType.EXECUTION
                ):
                    plugins.take_update(op.id)  # reported now: not again when replay reaches it
                    await plugins.emit("on_operation_end", OperationEndInfo.from_operation(op))
        if plugins.wants("on_operation_change"):
            info = OperationChangeInfo(
                execution_arn=plugins.start_info.execution_arn,
                updated_operations={op.id: OperationInfo.from_operation(op) for op in changed},
                operations=OperationInfos(self._log.snapshot()),
            )
            await plugins.emit("on_operation_change", info)


__all__ = ["MergeWatcher", "OperationInfos"]
