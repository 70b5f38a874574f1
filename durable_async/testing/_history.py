"""What an execution did, to look up in tests and to read as a tree.

``History`` is built from the operations the service recorded plus, for local runs, a
record of each invocation (what woke it, where it suspended). The same view serves tests
(``result.history.get("charge")``), the CLI's tree, and saved JSON: a history written by
``to_json`` reads back with ``History.from_json``, as do the Lambda API's
``GetDurableExecutionState`` (an ``Operations`` list) and ``GetDurableExecutionHistory``
(an ``Events`` list) responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from durable_async._errors import SerDesError
from durable_async._serdes import deserialize_default
from durable_async._wire.converter import from_wire, to_wire
from durable_async._wire.enums import InvocationStatus, OperationStatus, OperationType
from durable_async._wire.models import ErrorObject, Operation


@attrs.frozen
class InvocationRecord:
    """One invocation of a local run: when, how it ended, what woke it, where it stopped."""

    index: int
    started: datetime
    ended: datetime
    status: InvocationStatus
    #: Operations changed from outside (timer fired, callback answered) that it resumed on.
    resumed_by: tuple[str, ...] = ()
    #: Operations still waiting when it ended PENDING (waits, retries, callbacks, invokes).
    suspended_on: tuple[str, ...] = ()


@attrs.frozen
class HistoryOperation:
    """One operation with its place in the tree; ``operation`` is the service's record."""

    operation: Operation
    children: tuple[HistoryOperation, ...] = ()

    @property
    def id(self) -> str:
        """The operation's ID."""
        return self.operation.id

    @property
    def name(self) -> str | None:
        """The name the code gave it, if any."""
        return self.operation.name

    @property
    def type(self) -> OperationType:
        """STEP, WAIT, CONTEXT, CALLBACK, CHAINED_INVOKE or EXECUTION."""
        return self.operation.type

    @property
    def status(self) -> OperationStatus:
        """Where it stands now."""
        return self.operation.status

    @property
    def attempts(self) -> int:
        """Attempts a step has made so far (0 for other types)."""
        details = self.operation.step_details
        return details.attempt if details else 0

    @property
    def duration(self) -> timedelta | None:
        """From start to end, for an operation that has ended."""
        op = self.operation
        if op.start_timestamp is None or op.end_timestamp is None:
            return None
        return op.end_timestamp - op.start_timestamp

    @property
    def raw_result(self) -> str | None:
        """The serialized result, as checkpointed (decode it with a custom serdes here)."""
        return self.operation.recorded_result

    @property
    def result(self) -> Any:
        """The result as the handler got it without a serdes of its own, or ``None``.

        Steps (``wait_for_condition`` too) and child contexts (``map``, ``parallel``,
        ``wait_for_callback``) are decoded with the SDK's default encoding, which reads
        both what durable_async writes and what AWS's SDK writes: plain JSON for primitives
        and lists of them, typed envelopes for the rest, so a dict, tuple, ``datetime`` or
        ``BatchResult`` comes back as one. A chained invoke's result is plain JSON. A
        callback's is the string its sender sent, as ``callback.result()`` returns it
        without a serdes (``json.loads`` it for a JSON answer).

        A result stored with a custom serdes (``StepConfig(serdes=...)`` and the like)
        usually cannot be decoded this way: ``SerDesError`` is raised, and the test reads
        ``raw_result`` with that serdes. (A custom encoding that happens to be valid in the
        default one, such as a plain JSON list, is decoded as the default reads it.) So is
        it for a child context whose result was too large to store: ``raw_result`` holds
        the summary recorded instead.
        """
        raw = self.raw_result
        if raw is None:
            return None
        op = self.operation
        if op.type is OperationType.CALLBACK:
            return raw
        what = f"{op.type.value} {op.name or op.id}"
        if op.context_details is not None and op.context_details.replay_children:
            msg = (
                f"the result of {what} was too large to store: the service keeps a summary"
                " of it (raw_result), and the SDK rebuilds the result from its children"
            )
            raise SerDesError(msg)
        try:
            if op.type is OperationType.CHAINED_INVOKE:
                return json.loads(raw)
            return deserialize_default(raw, op.id)
        except (SerDesError, ValueError) as error:
            msg = (
                f"the result of {what} is not in the default encoding ({error}); if its"
                " code stored it with a custom serdes, decode raw_result with that serdes"
            )
            raise SerDesError(msg) from error

    @property
    def error(self) -> ErrorObject | None:
        """The recorded error of a failed (or retrying) operation."""
        return self.operation.recorded_error

    @property
    def callback_id(self) -> str | None:
        """A callback's ID (what an external system answers with)."""
        details = self.operation.callback_details
        return details.callback_id if details else None


class History:
    """The operations of one execution, by order, name and ID, and its invocations."""

    def __init__(
        self,
        operations: Sequence[Operation],
        invocations: Sequence[InvocationRecord] = (),
        *,
        arn: str | None = None,
    ) -> None:
        self.arn = arn
        self.invocations: tuple[InvocationRecord, ...] = tuple(invocations)
        by_parent: dict[str | None, list[Operation]] = {}
        execution = None
        for op in operations:
            if op.type is OperationType.EXECUTION:
                execution = op
            else:
                by_parent.setdefault(op.parent_id, []).append(op)
        known = {op.id for op in operations}

        def build(op: Operation) -> HistoryOperation:
            return HistoryOperation(op, tuple(build(c) for c in by_parent.get(op.id, ())))

        orphans = [
            op
            for parent, ops in by_parent.items()
            if parent is not None and parent not in known
            for op in ops
        ]
        self.roots: tuple[HistoryOperation, ...] = tuple(
            build(op) for op in [*by_parent.get(None, ()), *orphans]
        )
        self.execution: HistoryOperation | None = (
            HistoryOperation(execution) if execution is not None else None
        )
        self._all: list[HistoryOperation] = []

        def walk(nodes: Sequence[HistoryOperation]) -> None:
            for node in nodes:
                self._all.append(node)
                walk(node.children)

        walk(self.roots)
        self._by_id = {node.id: node for node in self._all}

    # -- lookups ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self) -> Iterator[HistoryOperation]:
        """Every operation but the EXECUTION one, depth first in the order they began."""
        return iter(self._all)

    def __getitem__(self, index: int) -> HistoryOperation:
        """The ``index``-th operation in ``iter`` order."""
        return self._all[index]

    def get(self, name: str, *, type: OperationType | str | None = None) -> HistoryOperation:
        """The first operation called ``name`` (optionally of ``type``); ``KeyError`` if none."""
        found = self.get_all(name, type=type)
        if not found:
            names = sorted({node.name for node in self._all if node.name})
            msg = f"no operation named {name!r} in the history (names: {', '.join(names)})"
            raise KeyError(msg)
        return found[0]

    def get_all(
        self, name: str, *, type: OperationType | str | None = None
    ) -> list[HistoryOperation]:
        """Every operation called ``name`` (a step retried in a loop, a map's items)."""
        return [
            node for node in self._all if node.name == name and (type is None or node.type == type)
        ]

    def by_id(self, operation_id: str) -> HistoryOperation:
        """The operation with this ID; ``KeyError`` if none."""
        try:
            return self._by_id[operation_id]
        except KeyError:
            msg = f"no operation with id {operation_id!r} in the history"
            raise KeyError(msg) from None

    def children(self, parent: HistoryOperation | str) -> tuple[HistoryOperation, ...]:
        """The direct children of a context, given as a node or its name."""
        node = parent if isinstance(parent, HistoryOperation) else self.get(parent)
        return node.children

    @property
    def operations(self) -> tuple[Operation, ...]:
        """The service's records, EXECUTION first, then in ``iter`` order."""
        head = (self.execution.operation,) if self.execution else ()
        return head + tuple(node.operation for node in self._all)

    # -- rendering ----------------------------------------------------------------------

    def render(self) -> str:
        """The indented tree of operations, then where each invocation resumed and stopped."""
        origin = _origin(self)
        lines: list[str] = []
        if self.execution is not None:
            lines.append(_line(self.execution, origin))
        for i, node in enumerate(self.roots):
            _tree(node, origin, "", i == len(self.roots) - 1, lines)
        if self.invocations:
            lines.append("invocations:")
            for record in self.invocations:
                lines.append("  " + _invocation_line(record, origin, self))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def print(self) -> None:
        """Write ``render()`` to standard output (handy in a failing test's output)."""
        print(self.render())

    # -- JSON ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: ``Operations`` as ``GetDurableExecutionState`` has them, plus invocations."""
        data: dict[str, Any] = {}
        if self.arn:
            data["DurableExecutionArn"] = self.arn
        data["Operations"] = [json_ready(to_wire(op)) for op in self.operations]
        if self.invocations:
            data["Invocations"] = [
                {
                    "Index": r.index,
                    "Started": r.started.isoformat(),
                    "Ended": r.ended.isoformat(),
                    "Status": r.status.value,
                    "ResumedBy": list(r.resumed_by),
                    "SuspendedOn": list(r.suspended_on),
                }
                for r in self.invocations
            ]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | Sequence[Any]) -> History:
        """Read ``to_json`` output, a ``GetDurableExecutionState`` or ``...History`` response."""
        if isinstance(data, list):
            data = {"Operations": data}
        if not isinstance(data, Mapping):
            msg = f"a history is a JSON object, got {type(data).__name__}"
            raise HistoryFormatError(msg)
        try:
            return cls._from_mapping(data)
        except HistoryFormatError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            msg = f"not a history the service or durable-async would write: {error!r}"
            raise HistoryFormatError(msg) from error

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any]) -> History:
        if "Operations" in data:
            operations = [from_wire(_timestamps(op), Operation) for op in data["Operations"]]
        elif "Events" in data:
            from durable_async.testing._events import operations_from_events

            operations = operations_from_events(data["Events"])
        else:
            msg = (
                "a history needs an 'Operations' list (GetDurableExecutionState) or an "
                f"'Events' list (GetDurableExecutionHistory); got keys {sorted(data)}"
            )
            raise HistoryFormatError(msg)
        invocations = [
            InvocationRecord(
                index=r["Index"],
                started=datetime.fromisoformat(r["Started"]),
                ended=datetime.fromisoformat(r["Ended"]),
                status=InvocationStatus(r["Status"]),
                resumed_by=tuple(r.get("ResumedBy", ())),
                suspended_on=tuple(r.get("SuspendedOn", ())),
            )
            for r in data.get("Invocations", ())
        ]
        return cls(operations, invocations, arn=data.get("DurableExecutionArn"))


class HistoryFormatError(ValueError):
    """A saved history that is not one of the shapes ``History.from_json`` reads."""


def _timestamps(op: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers as the API's JSON has them (epoch seconds) or Lambda's events (millis)."""

    def fix(value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1000) if value < 1e11 else int(value)
        return value

    out = dict(op)
    for key in ("StartTimestamp", "EndTimestamp"):
        if key in out:
            out[key] = fix(out[key])
    for holder, key in (
        ("StepDetails", "NextAttemptTimestamp"),
        ("WaitDetails", "ScheduledEndTimestamp"),
    ):
        if isinstance(out.get(holder), Mapping) and key in out[holder]:
            out[holder] = {**out[holder], key: fix(out[holder][key])}
    return out


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _origin(history: History) -> datetime | None:
    if history.execution is not None and history.execution.operation.start_timestamp:
        return history.execution.operation.start_timestamp
    starts = [n.operation.start_timestamp for n in history if n.operation.start_timestamp]
    return min(starts, default=None)


def _offset(when: datetime | None, origin: datetime | None) -> str:
    if when is None or origin is None:
        return "?"
    return "+" + _span(when - origin)


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _label(node: HistoryOperation) -> str:
    kind = node.type.value
    sub = node.operation.sub_type
    if sub and sub.lower() != kind.replace("_", "").lower():
        kind = f"{kind}/{sub}"
    return f"{kind} {node.name}" if node.name else kind


def _line(node: HistoryOperation, origin: datetime | None) -> str:
    op = node.operation
    parts = [_label(node), node.status.value]
    if node.type is OperationType.STEP:
        parts.append(f"attempts={node.attempts}")
    parts.append(_offset(op.start_timestamp, origin))
    if node.duration is not None:
        parts.append(f"took {_span(node.duration)}")
    if op.wait_details and op.wait_details.scheduled_end_timestamp and not op.status.is_terminal:
        parts.append(f"until {_offset(op.wait_details.scheduled_end_timestamp, origin)}")
    if op.step_details and op.step_details.next_attempt_timestamp and not op.status.is_terminal:
        parts.append(f"retry at {_offset(op.step_details.next_attempt_timestamp, origin)}")
    if node.callback_id and not op.status.is_terminal:
        parts.append(f"callback_id={node.callback_id}")
    error = node.error
    if error is not None:
        parts.append(f"error={error.type or 'Error'}: {error.message or ''}".rstrip())
    return "  ".join(parts)


def _tree(
    node: HistoryOperation, origin: datetime | None, prefix: str, last: bool, lines: list[str]
) -> None:
    lines.append(f"{prefix}{'└─ ' if last else '├─ '}{_line(node, origin)}")
    inner = prefix + ("   " if last else "│  ")
    for i, child in enumerate(node.children):
        _tree(child, origin, inner, i == len(node.children) - 1, lines)


def _describe(history: History, op_ids: Sequence[str]) -> str:
    names = []
    for op_id in op_ids:
        try:
            names.append(_label(history.by_id(op_id)))
        except KeyError:
            names.append(op_id)
    return ", ".join(names)


def _invocation_line(record: InvocationRecord, origin: datetime | None, history: History) -> str:
    text = f"#{record.index} at {_offset(record.started, origin)}"
    if record.resumed_by:
        text += f" resumed by {_describe(history, record.resumed_by)};"
    text += f" ended {record.status.value}"
    if record.suspended_on:
        text += f", suspended on {_describe(history, record.suspended_on)}"
    return text
