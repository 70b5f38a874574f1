r"""The one place that knows the wire shape: PascalCase keys, omitted ``None``s, timestamps.

Models stay plain attrs classes; this module turns them into the dicts botocore sends and
back. Unknown keys from the service are ignored so a newer service never breaks an older SDK.
Timestamps arrive in two forms: epoch milliseconds in the invocation event (Lambda's JSON) and
``datetime`` objects from botocore's parsed responses; both become aware ``datetime``\\ s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import UnionType
from typing import Any, TypeVar

import attrs
from cattrs import Converter
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from durable_async._wire.enums import (
    InvocationStatus,
    OperationAction,
    OperationStatus,
    OperationType,
)
from durable_async._wire.models import (
    CallbackDetails,
    ChainedInvokeDetails,
    CheckpointRequest,
    CheckpointResponse,
    ContextDetails,
    ErrorObject,
    ExecutionDetails,
    ExecutionStatePage,
    GetExecutionStateRequest,
    InvocationInput,
    InvocationOutput,
    Operation,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)

T = TypeVar("T")

_ERROR_KEYS = {
    "message": "ErrorMessage",
    "type": "ErrorType",
    "data": "ErrorData",
    "stack_trace": "StackTrace",
}


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _wire_key(cls: type, name: str) -> str:
    if cls is ErrorObject:
        return _ERROR_KEYS[name]
    return _pascal(name)


def _to_datetime(value: Any, _: type) -> datetime:
    if type(value) is int:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, datetime):
        tz = value.tzinfo
        if tz is UTC:
            return value
        # Any other zone (botocore's default gives each timestamp its own ``tzlocal()``)
        # becomes the shared UTC one: the same instant, without a zone object per value.
        return value.replace(tzinfo=UTC) if tz is None else value.astimezone(UTC)
    if isinstance(value, float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    msg = f"not a timestamp: {value!r}"
    raise TypeError(msg)


def _enum_hook(enum: type[Any]) -> Callable[[Any, Any], Any]:
    """Structure ``enum`` by value; an unknown value says what it is and where it came from."""
    by_value = dict(enum._value2member_map_)

    def structure(value: Any, _: Any) -> Any:
        try:
            return by_value[value]
        except (KeyError, TypeError):
            raise ValueError(_unknown(enum, value)) from None

    return structure


def _unknown(enum: type[Any], value: Any) -> str:
    if value is None:
        return f"no {enum.__name__}"
    return (
        f"unknown {enum.__name__} {value!r}: this version of durable_async does not know it "
        "(written by a newer service or SDK?)"
    )


def _make_converter() -> Converter:
    conv = Converter(detailed_validation=False)
    conv.register_structure_hook(datetime, _to_datetime)
    conv.register_unstructure_hook(datetime, lambda dt: dt)
    for enum in (OperationType, OperationStatus, OperationAction, InvocationStatus):
        conv.register_structure_hook(enum, _enum_hook(enum))
        conv.register_unstructure_hook(enum, lambda e: e._value_)

    def unstructure_factory(cls: type) -> Callable[[Any], dict[str, Any]]:
        overrides = {
            f.name: override(rename=_wire_key(cls, f.name), omit_if_default=f.default is None)
            for f in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **overrides)  # type: ignore[arg-type]

    def structure_factory(cls: type) -> Callable[[Any, Any], Any]:
        overrides = {f.name: override(rename=_wire_key(cls, f.name)) for f in attrs.fields(cls)}
        return make_dict_structure_fn(cls, conv, **overrides)  # type: ignore[arg-type]

    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    conv.register_structure_hook_factory(attrs.has, structure_factory)

    # ``X | None`` fields are most of every Operation; cattrs' generic Optional handling
    # dispatches per value, so give each one a direct hook (replay decodes thousands).
    def optional_factory(union: Any) -> Callable[[Any, Any], Any]:
        (inner,) = (arg for arg in union.__args__ if arg is not type(None))
        if inner in (str, int, bool):
            return lambda value, _: value
        inner_hook = conv.get_structure_hook(inner)
        return lambda value, _: None if value is None else inner_hook(value, inner)

    conv.register_structure_hook_factory(_is_simple_optional, optional_factory)

    # Replay decodes every recorded operation of the execution: these two, by far the most
    # common, get hand-written hooks (same result as the generated ones, half the cost).
    def nested(cls: type[T]) -> Callable[[Any], T | None]:
        hook = conv.get_structure_hook(cls)
        return lambda value: None if value is None else hook(value, cls)

    error_object = nested(ErrorObject)
    execution_details = nested(ExecutionDetails)
    context_details = nested(ContextDetails)
    wait_details = nested(WaitDetails)
    callback_details = nested(CallbackDetails)
    chained_invoke_details = nested(ChainedInvokeDetails)
    types = dict(OperationType._value2member_map_)
    statuses = dict(OperationStatus._value2member_map_)

    def timestamp(value: Any) -> datetime | None:
        return None if value is None else _to_datetime(value, datetime)

    def structure_step_details(d: Any, _: Any) -> StepDetails:
        get = d.get
        return StepDetails(
            get("Attempt") or 0,
            timestamp(get("NextAttemptTimestamp")),
            get("Result"),
            error_object(get("Error")),
        )

    def unknown_kind(o: Any) -> ValueError:
        for key, enum, known in (
            ("Type", OperationType, types),
            ("Status", OperationStatus, statuses),
        ):
            value = o.get(key)
            if not isinstance(value, str) or value not in known:
                return ValueError(f"operation {o.get('Id')!r}: {_unknown(enum, value)}")
        return ValueError(f"an operation has no Id (keys: {sorted(o)[:10]})")

    def structure_operation(o: Any, _: Any) -> Operation:
        get = o.get
        try:
            kind, status = types[o["Type"]], statuses[o["Status"]]
            op_id = o["Id"]
        except (KeyError, TypeError):
            raise unknown_kind(o) from None
        step_details = get("StepDetails")
        return Operation(
            op_id,
            kind,
            status,
            get("ParentId"),
            get("Name"),
            get("SubType"),
            timestamp(get("StartTimestamp")),
            timestamp(get("EndTimestamp")),
            execution_details(get("ExecutionDetails")),
            context_details(get("ContextDetails")),
            None if step_details is None else structure_step_details(step_details, StepDetails),
            wait_details(get("WaitDetails")),
            callback_details(get("CallbackDetails")),
            chained_invoke_details(get("ChainedInvokeDetails")),
        )

    conv.register_structure_hook(StepDetails, structure_step_details)
    conv.register_structure_hook(Operation, structure_operation)
    return conv


def _is_simple_optional(type_: Any) -> bool:
    args = getattr(type_, "__args__", None)
    return (
        isinstance(type_, UnionType) and args is not None and len(args) == 2 and type(None) in args
    )


converter = _make_converter()


def to_wire(value: Any) -> Any:
    """Unstructure a model into the dict botocore or Lambda expects."""
    return converter.unstructure(value)


def from_wire(data: Any, cls: type[T]) -> T:
    """Structure a service dict into a model; unknown keys are ignored."""
    return converter.structure(data, cls)


#: Epoch milliseconds ``datetime.fromtimestamp`` takes on every platform (1970 to 9999).
_LATEST_MILLIS = 253_402_300_799_000
_LAZY_TYPES = frozenset(OperationType._value2member_map_) - {OperationType.EXECUTION.value}
_STATUSES = frozenset(OperationStatus._value2member_map_)
#: Details ``structure_operation`` converts field by field (the others it copies or the
#: checks below cover): an operation with any of them is decoded at once.
_CONVERTED_DETAILS = (
    "ExecutionDetails",
    "ContextDetails",
    "WaitDetails",
    "CallbackDetails",
    "ChainedInvokeDetails",
)


def _plain_header(raw: dict[str, Any], types: frozenset[str]) -> bool:
    """Whether the fields every operation has decode cleanly in ``raw``.

    Its type is one of ``types``, its status known, its ID a string and its timestamps
    epoch milliseconds.
    """
    get = raw.get
    try:
        if get("Type") not in types or get("Status") not in _STATUSES:
            return False
    except TypeError:  # unhashable
        return False
    if get("Id").__class__ is not str:
        return False
    start = get("StartTimestamp")
    if start is not None and not (start.__class__ is int and 0 <= start <= _LATEST_MILLIS):
        return False
    end = get("EndTimestamp")
    return end is None or (end.__class__ is int and 0 <= end <= _LATEST_MILLIS)


def decodes_cleanly(raw: dict[str, Any]) -> bool:
    """Whether structuring the service dict ``raw`` into an ``Operation`` cannot fail.

    True for the common shape of a recorded operation (a string ID, a known type and
    status other than EXECUTION, epoch-millisecond timestamps, step details without an
    error): replay may then decode it when it reaches it, or never, and still know that the
    event was well formed. Anything else is decoded at once, so its errors surface as before.
    """
    if not _plain_header(raw, _LAZY_TYPES):
        return False
    details = raw.get("StepDetails")
    if details is not None and (
        details.__class__ is not dict
        or details.get("Error") is not None
        or details.get("NextAttemptTimestamp") is not None
    ):
        return False
    # Every other detail is converted field by field: those operations are decoded at once.
    # (Five lookups, not a key-set comparison: replay checks thousands of operations.)
    if (
        "ExecutionDetails" in raw
        or "ContextDetails" in raw
        or "WaitDetails" in raw
        or "CallbackDetails" in raw
        or "ChainedInvokeDetails" in raw
    ):
        return all(raw.get(key) is None for key in _CONVERTED_DETAILS)
    return True


_EXECUTION_TYPE = frozenset({OperationType.EXECUTION.value})
_OTHER_DETAILS = ("StepDetails", *_CONVERTED_DETAILS[1:])


def execution_decodes_cleanly(raw: dict[str, Any]) -> bool:
    """Whether the EXECUTION operation ``raw`` may stay a dict until something reads it.

    True when structuring it cannot fail and its input is a plain string (or absent), so
    the input can be read from the dict as the model would hold it: most invocations read
    nothing else of it.
    """
    if not _plain_header(raw, _EXECUTION_TYPE):
        return False
    details = raw.get("ExecutionDetails")
    if details is not None:
        if details.__class__ is not dict or details.keys() - {"InputPayload"}:
            return False
        payload = details.get("InputPayload")
        if payload is not None and payload.__class__ is not str:
            return False
    return all(raw.get(key) is None for key in _OTHER_DETAILS)


def operation_from_wire() -> Callable[[Any], Operation]:
    """The bare structure function for ``Operation``: the replay hot path skips dispatch."""
    hook = converter.get_structure_hook(Operation)
    return lambda data: hook(data, Operation)


__all__ = [
    "CheckpointRequest",
    "CheckpointResponse",
    "ExecutionStatePage",
    "GetExecutionStateRequest",
    "InvocationInput",
    "InvocationOutput",
    "Operation",
    "OperationUpdate",
    "converter",
    "decodes_cleanly",
    "execution_decodes_cleanly",
    "from_wire",
    "to_wire",
]
