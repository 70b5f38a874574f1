"""Operation identity: deterministic IDs, allocated synchronously, in call order.

IDs are the ones AWS's Python SDK computes, so histories are interchangeable: the n-th
operation (1-based) of a context whose own operation ID is ``prefix`` gets
``blake2b(f"{prefix}-{n}")`` (``blake2b(str(n))`` at the root), as 64 hex characters.
"""

from __future__ import annotations

import threading
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
    if not base and position >= 0:
        try:
            return _ROOT_IDS[position]
        except IndexError:
            if position < _ROOT_LIMIT:
                return _root_ids_to(position)
    return blake2b(base + b"%d" % position).digest()[:32].hex()


def _root_ids_to(position: int) -> str:
    """Hash the root's IDs up to ``position``, once per process.

    Appended in order under a lock, so an index is read only once its ID is there.
    """
    with _ROOT_LOCK:
        while len(_ROOT_IDS) <= position:
            _ROOT_IDS.append(blake2b(b"%d" % len(_ROOT_IDS)).digest()[:32].hex())
    return _ROOT_IDS[position]


#: The root's IDs by position. They are the same in every execution, so a
#: warm process that replays executions hashes each only once; at most ``_ROOT_LIMIT`` of
#: them are kept (about 120 bytes each), up to the highest position reached.
_ROOT_IDS: list[str] = []
_ROOT_LIMIT = 10_000
_ROOT_LOCK = threading.Lock()


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
