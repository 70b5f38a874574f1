"""Operation identity: deterministic IDs, allocated synchronously, in call order.

IDs are the ones AWS's Python SDK computes, so histories are interchangeable: the n-th
operation (1-based) of a context whose own operation ID is ``prefix`` gets
``blake2b(f"{prefix}-{n}")`` (``blake2b(str(n))`` at the root), as 64 hex characters.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import NamedTuple

from durable_async._wire.enums import OperationType


def operation_id(prefix: str | None, position: int) -> str:
    """The ID of the ``position``-th operation of the context named by ``prefix``."""
    return id_at(id_base(prefix), position)


def id_base(prefix: str | None) -> bytes:
    """What the IDs of the context named by ``prefix`` hash before their position."""
    return f"{prefix}-".encode() if prefix else b""


def id_at(base: bytes, position: int) -> str:
    """``operation_id`` with the context's part encoded once (replay derives thousands)."""
    if base:
        return blake2b(base + b"%d" % position).digest()[:32].hex()
    op_id = _ROOT_IDS.get(position)
    if op_id is None:
        op_id = blake2b(b"%d" % position).digest()[:32].hex()
        if len(_ROOT_IDS) < _ROOT_LIMIT:
            _ROOT_IDS[position] = op_id  # the same value whichever thread writes it
    return op_id


#: The root's IDs by position. They are the same in every execution, so a warm process
#: that replays executions hashes each only once; at most ``_ROOT_LIMIT`` of them are kept
#: (under 200 bytes each).
_ROOT_IDS: dict[int, str] = {}
_ROOT_LIMIT = 10_000


#: An ``OperationIdentity``'s fields in a plain tuple.
IdentityFields = tuple[str, OperationType, str, str | None, str | None]


class OperationIdentity(NamedTuple):
    """What replay compares: an operation's ID, kind, subtype, name and parent.

    A named tuple rather than a frozen attrs class: as immutable, and every operation
    called (every replayed one too) builds one, at a fifth of the cost.
    """

    id: str
    type: OperationType
    sub_type: str
    name: str | None
    parent_id: str | None
