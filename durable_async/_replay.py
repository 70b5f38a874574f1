"""The operation log: what the service has recorded, and the replay identity check."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from enum import Enum
from typing import Any, Final

from durable_async._errors import NonDeterministicExecutionError
from durable_async._identity import OperationIdentity
from durable_async._wire.converter import (
    decodes_cleanly,
    execution_decodes_cleanly,
    operation_from_wire,
)
from durable_async._wire.enums import OperationType
from durable_async._wire.models import Operation

_structure_operation = operation_from_wire()

#: Told of each recorded operation the code reaches; ``durable_async.testing.replay``
#: sets it to find recorded operations the current code no longer issues.
replay_observer: ContextVar[Callable[[Operation], None] | None] = ContextVar(
    "durable_async_replay_observer", default=None
)


class NotReplayed(Enum):
    """``OperationLog.replayed_success`` found no plain recorded success: take the long way."""

    NOT_REPLAYED = 0


NOT_REPLAYED: Final = NotReplayed.NOT_REPLAYED


class OperationLog:
    """Operations by ID, as of the latest state the service returned.

    Filled from the invocation's initial state and refreshed from every checkpoint
    response, so an operation's entry is always the service's newest view of it.

    The event's operations are kept as the service's dicts and turned into models only when
    something reads them: replay reaches most of them once, if at all (a finished step's
    result is read straight from its dict), and building thousands of models up front was
    most of the cost of a long replay. Only dicts that cannot fail to decode wait (see
    ``decodes_cleanly``); a malformed event is still refused before anything runs.
    """

    __slots__ = ("_execution", "_ops")

    def __init__(self) -> None:
        #: A service dict until first read, then the ``Operation`` built from it.
        self._ops: dict[str, Operation | dict[str, Any]] = {}
        #: The EXECUTION operation; a service dict until read (most read only its input).
        self._execution: Operation | dict[str, Any] | None = None

    def apply(self, operations: Iterable[Operation]) -> None:
        """Record operations, replacing older views of the same IDs."""
        ops = self._ops
        for op in operations:
            ops[op.id] = op
            if op.type is OperationType.EXECUTION:
                self._execution = op

    def apply_raw(self, operations: Iterable[dict[str, Any]]) -> None:
        """Record operations given as service dicts (the invocation event's form)."""
        ops = self._ops
        for raw in operations:
            if raw.__class__ is dict and decodes_cleanly(raw):
                ops[raw["Id"]] = raw
            elif raw.__class__ is dict and execution_decodes_cleanly(raw):
                ops[raw["Id"]] = self._execution = raw
            else:
                self.apply((_structure_operation(raw),))

    def get(self, operation_id: str) -> Operation | None:
        """The recorded operation with this ID, if any."""
        op = self._ops.get(operation_id)
        if op.__class__ is dict:
            op = self._ops[operation_id] = _structure_operation(op)
        return op  # type: ignore[return-value]

    def __contains__(self, operation_id: str) -> bool:
        return operation_id in self._ops

    def __len__(self) -> int:
        return len(self._ops)

    def snapshot(self) -> dict[str, Operation]:
        """A copy of the operations by ID (safe to iterate while the log is refreshed)."""
        return {op_id: self.get(op_id) for op_id in list(self._ops)}  # type: ignore[misc]

    @property
    def execution(self) -> Operation | None:
        """The EXECUTION operation, which carries the input payload."""
        execution = self._execution
        if execution.__class__ is dict:
            execution = self._execution = self.get(execution["Id"])
        return execution  # type: ignore[return-value]

    @property
    def input_payload(self) -> str | None:
        """The execution's input payload, read without decoding the operation."""
        execution = self._execution
        if execution is None:
            return None
        if isinstance(execution, dict):
            details = execution.get("ExecutionDetails")
            return None if details is None else details.get("InputPayload")
        return (
            None
            if execution.execution_details is None
            else execution.execution_details.input_payload
        )

    @property
    def has_history(self) -> bool:
        """Whether any operation besides the execution itself was recorded."""
        return len(self._ops) > (1 if self._execution is not None else 0)

    def match(self, identity: OperationIdentity) -> Operation | None:
        """The recorded operation for ``identity``; raises if it is a different operation."""
        recorded = self.get(identity.id)
        if recorded is None:
            return None
        if (
            recorded.type is not identity.type
            or (recorded.sub_type or None) != (identity.sub_type or None)
            or (recorded.name or None) != (identity.name or None)
            or (recorded.parent_id or None) != (identity.parent_id or None)
        ):
            raise NonDeterministicExecutionError(
                _describe_mismatch(recorded, identity), identity.id
            )
        observe = replay_observer.get()
        if observe is not None:
            observe(recorded)
        return recorded

    def replayed_success(
        self, operation_id: str, sub_type: str, name: str | None, parent_id: str | None
    ) -> str | NotReplayed | None:
        """The result payload of a step recorded as succeeded, read as the service sent it.

        The replay fast path: no model is built for it. ``NOT_REPLAYED`` unless the step is
        recorded as ``SUCCEEDED`` with exactly this identity and no replay observer is set;
        then ``match`` (the long way) decides, and raises on a mismatch, described in full.
        """
        recorded = self._ops.get(operation_id)
        if recorded.__class__ is not dict or replay_observer.get() is not None:
            # Absent, or already a model (read before, or from a checkpoint response):
            # ``match`` handles it.
            return NOT_REPLAYED
        get = recorded.get
        # Equal as they stand in the common case; else compared as ``match`` does.
        if (
            get("Status") != "SUCCEEDED"
            or get("Type") != "STEP"
            or (get("SubType") != sub_type and (get("SubType") or None) != (sub_type or None))
            or (get("Name") != name and (get("Name") or None) != (name or None))
            or (get("ParentId") != parent_id and (get("ParentId") or None) != (parent_id or None))
        ):
            return NOT_REPLAYED
        details = get("StepDetails")
        return None if details is None else details.get("Result")


def _describe_mismatch(recorded: Operation, identity: OperationIdentity) -> str:
    def side(type_: str, sub_type: str | None, name: str | None, parent: str | None) -> str:
        return f"{type_}/{sub_type} name={name!r} parent={parent!r}"

    return (
        f"non-deterministic replay at operation {identity.id}: the history recorded "
        f"{side(recorded.type, recorded.sub_type, recorded.name, recorded.parent_id)} but the "
        f"code now issues "
        f"{side(identity.type, identity.sub_type, identity.name, identity.parent_id)}; "
        "durable handlers must issue the same operations in the same order on every replay"
    )


class ExecutionStateView:
    """Read-only ``DurableContext.state``: what AWS Lambda Powertools reads of AWS's one.

    Powertools treats ``len(ctx.state.operations) > 1`` as "this invocation replays"; AWS's
    SDK counts the EXECUTION operation too, and so does this view.
    """

    __slots__ = ("_log",)

    def __init__(self, log: OperationLog) -> None:
        self._log = log

    @property
    def operations(self) -> dict[str, Operation]:
        """A copy of the operations known so far (history and this invocation's), by ID."""
        return self._log.snapshot()
