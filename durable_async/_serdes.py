"""Payload encodings: AWS's extended-type envelope (the default), plain JSON, pass-through.

The default encoding reads and writes exactly what AWS's Python SDK stores for step
results, so histories move between the two SDKs: primitives and lists of primitives are
plain JSON; anything else is an envelope ``{"t": tag, "v": value}`` whose containers hold
envelopes for every element (a ``BatchResult`` is the ``br`` envelope of its dict form).
"""

from __future__ import annotations

import base64
import inspect
import json
import uuid
from collections.abc import Awaitable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from durable_async._errors import PayloadTooLargeError, SerDesError

T = TypeVar("T")

#: The service stores at most this many bytes of UTF-8 per operation payload.
PAYLOAD_LIMIT_BYTES = 256 * 1024
#: A chained invocation's input (and its target's result) may be larger: up to 1 MiB.
INVOKE_PAYLOAD_LIMIT_BYTES = 1024 * 1024


@attrs.frozen
class SerDesContext:
    """Where a value is being (de)serialized, for serdes that need to know."""

    operation_id: str = ""
    durable_execution_arn: str = ""


@runtime_checkable
class SerDes(Protocol[T]):
    """Turns values into payload strings and back; either method may be ``async``."""

    def serialize(self, value: T, context: SerDesContext) -> str | Awaitable[str | None] | None:
        """Encode ``value``; ``None`` stores no payload."""

    def deserialize(self, data: str, context: SerDesContext) -> T | Awaitable[T]:
        """Decode a stored payload."""


class JsonSerDes(Generic[T]):
    """Plain ``json`` (default separators, as AWS's SDK writes it): invoke payloads/results."""

    def serialize(self, value: T, context: SerDesContext) -> str:
        """Encode as JSON."""
        return json.dumps(value)

    def deserialize(self, data: str, context: SerDesContext) -> T:
        """Decode JSON."""
        return json.loads(data)  # type: ignore[no-any-return]


class PassThroughSerDes:
    """Stores strings as they are; AWS's default for callback results."""

    def serialize(self, value: str | None, context: SerDesContext) -> str | None:
        """Return the string unchanged."""
        return value

    def deserialize(self, data: str, context: SerDesContext) -> str:
        """Return the stored string unchanged."""
        return data


_PRIMITIVES = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _PRIMITIVES):
        return True
    if type(value) is list:
        return all(_is_plain(item) for item in value)
    return False


def _encode(value: Any) -> dict[str, Any]:
    match value:
        case None:
            return {"t": "n", "v": None}
        case str():
            return {"t": "s", "v": value}
        case bool():
            return {"t": "b", "v": value}
        case int():
            return {"t": "i", "v": value}
        case float():
            return {"t": "f", "v": value}
        case bytes() | bytearray() | memoryview():
            return {"t": "B", "v": base64.b64encode(bytes(value)).decode("ascii")}
        case uuid.UUID():
            return {"t": "u", "v": str(value)}
        case Decimal():
            return {"t": "d", "v": str(value)}
        case datetime():
            return {"t": "dt", "v": value.isoformat()}
        case date():
            return {"t": "D", "v": value.isoformat()}
        case list():
            return {"t": "l", "v": [_encode(item) for item in value]}
        case tuple():
            return {"t": "t", "v": [_encode(item) for item in value]}
        case dict():
            if any(not isinstance(key, str) for key in value):
                msg = "dict keys must be strings to be stored"
                raise SerDesError(msg)
            return {"t": "m", "v": {key: _encode(item) for key, item in value.items()}}
        case _:
            # Checked last, so a value of any other type never imports the batch module.
            from durable_async._batch import BatchResult

            if isinstance(value, BatchResult):
                fields = value.to_dict()
                return {"t": "br", "v": {key: _encode(item) for key, item in fields.items()}}
            msg = f"cannot store a value of type {type(value).__qualname__}; pass a serdes"
            raise SerDesError(msg)


def _decode(tag: str, value: Any) -> Any:
    match tag:
        case "n":
            return None
        case "s":
            return str(value)
        case "b":
            return bool(value)
        case "i":
            return int(value)
        case "f":
            return float(value)
        case "B":
            return base64.b64decode(value)
        case "u":
            return uuid.UUID(value)
        case "d":
            return Decimal(value)
        case "dt":
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        case "D":
            return date.fromisoformat(value)
        case "l":
            return [_unwrap(item) for item in value]
        case "t":
            return tuple(_unwrap(item) for item in value)
        case "m":
            return {key: _unwrap(item) for key, item in value.items()}
        case "br":
            from durable_async._batch import BatchResult

            return BatchResult.from_dict({key: _unwrap(item) for key, item in value.items()})
        case _:
            msg = f"unknown type tag {tag!r} in stored payload"
            raise SerDesError(msg)


def _unwrap(item: Any) -> Any:
    if isinstance(item, dict) and "t" in item and "v" in item:
        return _decode(item["t"], item["v"])
    return item


class ExtendedTypeSerDes:
    """The default: JSON for plain values, typed envelopes for everything else."""

    def serialize(self, value: Any, context: SerDesContext) -> str:
        """Encode ``value`` in AWS's wire format."""
        if _is_plain(value):
            return json.dumps(value, separators=(",", ":"))
        return json.dumps(_encode(value), separators=(",", ":"))

    def deserialize(self, data: str, context: SerDesContext) -> Any:
        """Decode a payload written by this SDK or by AWS's."""
        return _decode_payload(data)


#: The C scanner behind ``json.loads``, called directly: replay decodes one small payload
#: per recorded operation, and ``json.loads``' own checks and regex passes cost twice the
#: parse. Anything but exactly one JSON value from the first character to the last takes
#: the ordinary way, so results and errors stay those of ``json.loads``.
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _decode_payload(data: str) -> Any:
    try:
        obj, end = _scan(data, 0)
        if end != len(data):
            raise ValueError(end)
    except Exception:
        obj = json.loads(data)
    if obj.__class__ in _SCALARS or _is_plain(obj):
        return obj
    if isinstance(obj, dict) and "t" in obj and "v" in obj:
        return _decode(obj["t"], obj["v"])
    msg = 'stored payload is neither plain JSON nor a {"t", "v"} envelope'
    raise SerDesError(msg)


EXTENDED = ExtendedTypeSerDes()
JSON: JsonSerDes[Any] = JsonSerDes()


async def serialize(serdes: SerDes[Any] | None, value: Any, context: SerDesContext) -> str | None:
    """Serialize with ``serdes`` (default: extended types), translating failures."""
    if serdes is None and isinstance(value, str | int | bool | type(None)):
        # Fast path: ``json.dumps`` of these cannot fail.
        return json.dumps(value)
    try:
        data = (serdes or EXTENDED).serialize(value, context)
        if inspect.isawaitable(data):
            data = await data
    except SerDesError:
        raise
    except Exception as exc:
        msg = f"serialization failed for operation {context.operation_id}: {exc}"
        raise SerDesError(msg) from exc
    if data is not None and not isinstance(data, str):
        msg = f"serdes returned {type(data).__qualname__}, expected str or None"
        raise SerDesError(msg)
    return data


async def deserialize(serdes: SerDes[Any] | None, data: str, context: SerDesContext) -> Any:
    """Deserialize with ``serdes`` (default: extended types), translating failures."""
    if serdes is None:
        return deserialize_default(data, context)
    try:
        value = (serdes or EXTENDED).deserialize(data, context)
        if inspect.isawaitable(value):
            value = await value
    except SerDesError:
        raise
    except Exception as exc:
        msg = f"deserialization failed for operation {context.operation_id}: {exc}"
        raise SerDesError(msg) from exc
    return value


def deserialize_default(data: str, context: SerDesContext | str) -> Any:
    """Decode a payload in the default encoding, without a coroutine (the replay hot path)."""
    try:
        return _decode_payload(data)
    except SerDesError:
        raise
    except Exception as exc:
        operation = context if isinstance(context, str) else context.operation_id
        msg = f"deserialization failed for operation {operation}: {exc}"
        raise SerDesError(msg) from exc


def check_payload_size(what: str, data: str | None, limit: int = PAYLOAD_LIMIT_BYTES) -> None:
    """Raise ``PayloadTooLargeError`` when ``data`` exceeds ``limit`` bytes of UTF-8."""
    if data is None or len(data) * 4 <= limit:
        return
    size = len(data.encode("utf-8"))
    if size > limit:
        raise PayloadTooLargeError(what, size, limit)
